// Where an action's output may be written on the client: inside the project tree, after normalization and after
// following every symlink already on the way — an output path comes from the farm, which the client does not trust.
import { lstat, realpath } from "node:fs/promises";
import { dirname, isAbsolute, join, posix, relative, sep } from "node:path";
import { ExitCode, OrionError, Status } from "../core/index.js";

/** An output path that would land outside the project: a farm-side fault or attack, so an infrastructure failure (exit 3). */
class OutputPathError extends OrionError {
  constructor(message: string) {
    super(message, { exitCode: ExitCode.INFRASTRUCTURE, code: Status.PERMISSION_DENIED });
    this.name = "OutputPathError";
  }
}

/** Checks output paths against one project root, whose real path is looked up once. */
export class OutputPathGuard {
  private rootReal?: Promise<string>;

  constructor(private readonly projectRoot: string) {}

  /**
   * The absolute path to write `path` (relative to `cwd`, itself relative to the project root) at, or an
   * OutputPathError naming it when it escapes: an absolute or `..` path, a symlinked directory on the way that leads
   * out, or a final symlink that points out (replacing it is fine, following it is not).
   */
  async resolve(cwd: string, path: string): Promise<string> {
    const name = posix.join(cwd || ".", path);
    const rel = posix.normalize(name);
    if (isAbsolute(path) || rel === ".." || rel.startsWith("../") || rel === "." || path.includes("\0")) {
      throw new OutputPathError(`refused to write output ${JSON.stringify(path)} (cwd ${JSON.stringify(cwd || ".")}): it is outside the project ${this.projectRoot}`);
    }
    const dest = join(this.projectRoot, rel);
    const root = await (this.rootReal ??= realpath(this.projectRoot));
    // The deepest folder on the way that exists, with every symlink in it followed: what mkdir and rename would reach.
    let dir = dirname(dest);
    for (;;) {
      const real = await realpath(dir).catch((err: NodeJS.ErrnoException) => (err.code === "ENOENT" || err.code === "ENOTDIR" ? undefined : Promise.reject(err)));
      if (real !== undefined) {
        if (!inside(root, real)) throw new OutputPathError(`refused to write output ${rel}: its folder ${relative(this.projectRoot, dir) || "."} leads outside the project (to ${real})`);
        break;
      }
      dir = dirname(dir);
    }
    const st = await lstat(dest).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      const target = await realpath(dest).catch(() => undefined);
      if (target === undefined || !inside(root, target)) {
        throw new OutputPathError(`refused to write output ${rel}: it is a symlink leading outside the project${target ? ` (to ${target})` : ""}`);
      }
    }
    return dest;
  }
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}
