// Which tool an argv[0] names (a gcc/clang driver, ar, ranlib, ld), by its file name.
import { posix } from "node:path";

export type ToolFamily = "driver" | "ar" | "ranlib" | "ld";

const DRIVER = /(^|-)(gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(-[0-9.]+)?$/;
const CXX_DRIVER = /(g\+\+|c\+\+|clang\+\+)(-[0-9.]+)?$/;

/** The kind of tool argv[0] names, by its file name; undefined for anything else (a shell, a script). */
export function toolFamily(argv0: string | undefined): ToolFamily | undefined {
  const base = posix.basename(argv0 ?? "");
  if (DRIVER.test(base)) return "driver";
  if (/(^|-)ar$/.test(base) || /(^|-)gcc-ar(-[0-9.]+)?$/.test(base)) return "ar";
  if (/(^|-)ranlib$/.test(base) || /(^|-)gcc-ranlib(-[0-9.]+)?$/.test(base)) return "ranlib";
  if (/(^|-)ld(\.(bfd|gold|lld|mold))?$/.test(base)) return "ld";
  return undefined;
}

/** True when argv[0] names a gcc/clang driver (gcc, cc, g++, clang-15, x86_64-linux-gnu-gcc-12…). */
export function isCompilerDriver(argv0: string): boolean {
  return DRIVER.test(posix.basename(argv0));
}

/** True when the driver is a C++ one (g++, c++, clang++). */
export function isCxxDriver(argv0: string): boolean {
  return CXX_DRIVER.test(posix.basename(argv0));
}
