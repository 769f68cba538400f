// The file names a compile writes without being told: gcc's default object and depfile names, and the argv that spells the implied `-o` out.
import { basename, dirname, extname, join } from "node:path";
import type { DriverCall } from "./driver.js";

/** `out/foo.o` → `out/foo.d`: the file-name suffix replaced, as gcc derives the `-MD` depfile and the default object names. */
export function withExtension(path: string, ext: string): string {
  const base = basename(path);
  const stem = extname(base) ? base.slice(0, -extname(base).length) : base;
  const dir = dirname(path);
  return dir === "." && !path.startsWith("./") ? stem + ext : join(dir, stem + ext);
}

/**
 * The argv with a compile's implied object named (`cc -c net.c` → `cc -c net.c -o net.o`, what the driver does anyway): a
 * sandboxed compile writes into a private folder and must say where. Unchanged when the call has no implied output.
 */
export function withExplicitOutput(argv: readonly string[], call: Pick<DriverCall, "output">): string[] {
  return call.output?.implied ? [...argv, "-o", call.output.path] : [...argv];
}

/**
 * Files a compile never reads: objects, archives and depfiles. A build writes them into its tree (jemalloc's make leaves
 * ~65 MB in Redis's) while other compiles run, so the source context a compile runs against leaves them out — on the farm
 * and for `orion cc` alike (a depfile written while the context was hashed sent Redis's src/ compiles back home).
 */
export function compileNeverReads(name: string): boolean {
  return name.endsWith(".o") || name.endsWith(".a") || name.endsWith(".d");
}

/**
 * gcc's `%{o*:%.d%*}` spelled as gcc spells it: the object path with its file-name suffix replaced by ".d", nothing
 * normalized (`./o/x.o` → `./o/x.d`) — where a depfile is looked for beside an object already placed (a sandbox's private folder).
 */
export function defaultDepfilePath(objectPath: string): string {
  const slash = objectPath.lastIndexOf("/");
  const dot = objectPath.lastIndexOf(".");
  return (dot > slash + 1 ? objectPath.slice(0, dot) : objectPath) + ".d";
}
