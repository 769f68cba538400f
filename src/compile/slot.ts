// Where the paths of a command line sit (argument, characters, read or written), and the refusals found on the way: the shape every argv reader of src/compile answers in.
import type { OptionRefusal } from "./options.js";

/** A read path may lie in the project or the toolchain's directories; a write path only in the project. */
export type PathRole = "read" | "write";

/** One place in argv a path sits: arg `index`, characters [start, end). */
export interface PathSlot {
  index: number;
  start: number;
  end: number;
  role: PathRole;
  /** The option it belongs to, for messages ("-I", "-Wl,-T", "operand"). */
  option: string;
}

/** A path slot, or an option refused whatever its value. */
export type Found = { slot: PathSlot } | { refuse: OptionRefusal };

/** Places a path slot within one argument. */
export type At = (role: PathRole, option: string, start: number, end: number) => Found;

export function refuse(option: string, message: string): Found {
  return { refuse: { option, message } };
}

/** `-l:../../etc/x` would climb out of every library directory; a library name with a path in it is not one. */
export function libraryName(option: string, value: string, out: Found[]): void {
  if ((option === "-l" || option === "--library") && (value.startsWith("/") || value.split("/").includes(".."))) {
    out.push(refuse(option, `library name ${value} is a path`));
  }
}

/** Absolute, or climbing with `..`: worth checking even where Orion does not know the option's meaning. */
export function isPathLike(v: string): boolean {
  return v.startsWith("/") || v.split("/").includes("..");
}
