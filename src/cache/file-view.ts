// The small view of files the compile-cache protocol reads through: digests by key path, now and as a compile read them, and existence for shadow probes.
import type { Digest } from "../core/digest.js";

/** What a view answers for a file as a finished compile read it: its digest, undefined (not a readable file), or CHANGING. */
export const CHANGING = "changing";
export type ReadDigest = Digest | undefined | typeof CHANGING;

/**
 * One compile's view of the files it names. A key path is how a manifest names a file: relative (to the build's tree on
 * the head, to the call's cwd in `orion cc`) or absolute. The head's view is the build's hashed tree (its ContextIndex,
 * the outputs its actions produced, and externalDigest for files outside the tree); `orion cc`'s is the agent's stat
 * cache over the real file system.
 */
export interface FileView {
  /** A path as the compiler spelled it (relative to the compile's cwd, or absolute) → its key path. */
  keyPath(spelled: string): string;
  /** A file's digest now (key time, look-up time); undefined when it is not a readable file. */
  digestOf(keyPath: string): Digest | undefined | Promise<Digest | undefined>;
  /**
   * A file's digest as the compile that just finished read it (record time); CHANGING when it may have changed while
   * the compile ran, so what was read cannot be named.
   */
  readDigestOf(keyPath: string): ReadDigest | Promise<ReadDigest>;
  /** Whether anything exists at a key path (shadow probes ask hundreds of these per look-up: keep it synchronous). */
  exists(keyPath: string): boolean;
}
