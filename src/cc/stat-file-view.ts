// orion cc's file view for the compile-cache protocol: the real file system under the call's cwd, hashed through the agent's stat cache.
import type { BigIntStats } from "node:fs";
import { statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { posix, resolve } from "node:path";
import type { Digest } from "../core/index.js";
import { CHANGING, type FileView, type ReadDigest } from "../cache/index.js";
import type { StatCache } from "../merkle/index.js";

/**
 * Key paths are the paths as the compiler spelled them, normalized: relative ones relative to the call's cwd (as the
 * compiler resolved them), absolute ones absolute.
 */
export class StatFileView implements FileView {
  /** The stat each file had when digestOf hashed it, by absolute path (a source is checked against it after the compile). */
  readonly hashed = new Map<string, BigIntStats>();

  constructor(
    private readonly cwd: string,
    /** The stat cache, asked for only once a file is there to hash (a call whose source is missing opens no store). */
    private readonly statCache: () => StatCache,
    /**
     * When the compiler was started (ns, less a margin): a header changed at or after it may have changed while the
     * compiler read it (ccache's "file too new"), so readDigestOf calls it CHANGING. Absent: nothing is read as changing.
     */
    private readonly compileStartNs?: bigint,
  ) {}

  keyPath(spelled: string): string {
    const n = posix.normalize(spelled);
    return n === "" ? "." : n;
  }

  digestOf(keyPath: string): Promise<Digest | undefined> | undefined {
    // A synchronous stat: ~100 headers per look-up, and a thread-pool round trip each costs more than the stat.
    const abs = resolve(this.cwd, keyPath);
    const st = statOrUndefined(abs);
    if (!st?.isFile()) return undefined;
    this.hashed.set(abs, st);
    return this.statCache().digestOf(abs, st).catch(() => undefined);
  }

  async readDigestOf(keyPath: string): Promise<ReadDigest> {
    const abs = resolve(this.cwd, keyPath);
    const st = await stat(abs, { bigint: true }).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    if (this.compileStartNs !== undefined && changedSince(st, this.compileStartNs)) return CHANGING;
    return this.statCache().digestOf(abs, st);
  }

  exists(keyPath: string): boolean {
    return statOrUndefined(resolve(this.cwd, keyPath)) !== undefined;
  }
}

/** A file whose mtime or ctime is at or after `ns`. */
export function changedSince(st: BigIntStats, ns: bigint): boolean {
  return st.mtimeNs >= ns || st.ctimeNs >= ns;
}

function statOrUndefined(abs: string): BigIntStats | undefined {
  try {
    return statSync(abs, { bigint: true, throwIfNoEntry: false });
  } catch {
    return undefined; // ENOTDIR, EACCES: not a header the compiler could read either
  }
}
