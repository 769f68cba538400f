// DirListings: "does this path exist?" answered from cached directory listings, for the thousands of shadow probes
// a compile look-up makes — one readdir per directory instead of one stat per probe, kept across calls while the
// directory's mtime says nothing was added or removed — and snapshots that tell whether a whole set of answers
// still holds with one stat per directory.
import { type BigIntStats, existsSync, readdirSync, statSync } from "node:fs";

interface Listing {
  mtimeNs: bigint;
  ino: bigint;
  /** Names of entries that are not symlinks. */
  names: Set<string>;
  /** Symlinks: whether they resolve is asked of the file system each time (a dangling one does not exist). */
  links: Set<string>;
  /** True when the listing was read too soon after the directory changed to be trusted later (see RACY_NS). */
  racy: boolean;
}

/** One directory as a probe session saw it: absent (mtimeNs -1) or present with this mtime and inode, and the answers drawn from it. */
export interface DirState {
  dir: string;
  mtimeNs: bigint;
  ino: bigint;
  /** Name → whether it existed. */
  asked: Map<string, boolean>;
}

export interface ProbeSession {
  exists(absPath: string): boolean;
  /**
   * The directories the answers depend on, or undefined when they cannot be summed up that way (a symlink was
   * asked about, a directory changed too recently, a path was checked by other means).
   */
  snapshot(): DirState[] | undefined;
}

/**
 * A directory changed this close to when it was read may change again within the same timestamp tick, leaving
 * its mtime unchanged; such a listing is re-read next time instead of trusted.
 */
const RACY_NS = 50_000_000n;
const MAX_DIRS = 4096;
const ABSENT = -1n;

function statDir(dir: string): BigIntStats | undefined {
  try {
    const st = statSync(dir, { bigint: true, throwIfNoEntry: false });
    return st?.isDirectory() ? st : undefined;
  } catch {
    return undefined; // ENOTDIR on the way, EACCES: nothing can be found under it
  }
}

export class DirListings {
  private readonly listings = new Map<string, Listing>();

  /** A probe session: directories are stat-ed at most once per session, so a session describes one moment. */
  session(): ProbeSession {
    const seen = new Map<string, { listing: Listing | null; state: DirState }>();
    const states: DirState[] = [];
    let summable = true;
    const exists = (absPath: string): boolean => {
      const slash = absPath.lastIndexOf("/");
      const name = absPath.slice(slash + 1);
      if (slash <= 0 || name === "" || name === "." || name === ".." || absPath.includes("/./") || absPath.includes("/../")) {
        summable = false;
        return existsSync(absPath);
      }
      const dir = absPath.slice(0, slash);
      let entry = seen.get(dir);
      if (entry === undefined) {
        const st = statDir(dir);
        const listing = st ? this.listing(dir, st) : null;
        entry = { listing, state: { dir, mtimeNs: listing?.mtimeNs ?? ABSENT, ino: listing?.ino ?? 0n, asked: new Map() } };
        seen.set(dir, entry);
        states.push(entry.state);
      }
      const { listing, state } = entry;
      if (listing === null) return false;
      let found = listing.names.has(name);
      if (!found && listing.links.has(name)) {
        summable = false;
        found = existsSync(absPath);
      }
      state.asked.set(name, found);
      return found;
    };
    return { exists, snapshot: () => (summable ? states : undefined) };
  }

  /**
   * True when every answer in the snapshot still holds: a directory whose mtime and inode are unchanged (and settled)
   * holds the same names; one that changed since is re-read and the names asked of it compared one by one.
   */
  unchanged(states: readonly DirState[]): boolean {
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    for (const s of states) {
      const st = statDir(s.dir);
      if (!st) {
        if (s.mtimeNs !== ABSENT) return false;
        continue;
      }
      if (s.mtimeNs === ABSENT) return false;
      if (st.mtimeNs === s.mtimeNs && st.ino === s.ino && nowNs - st.mtimeNs >= RACY_NS) continue;
      const listing = this.listing(s.dir, st);
      if (!listing) return false;
      for (const [name, found] of s.asked) {
        if (listing.links.has(name) || listing.names.has(name) !== found) return false;
      }
    }
    return true;
  }

  private listing(dir: string, st: BigIntStats): Listing | null {
    const cached = this.listings.get(dir);
    if (cached && !cached.racy && cached.mtimeNs === st.mtimeNs && cached.ino === st.ino) return cached;
    const readAtNs = BigInt(Date.now()) * 1_000_000n;
    const names = new Set<string>();
    const links = new Set<string>();
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) (e.isSymbolicLink() ? links : names).add(e.name);
    } catch {
      return null;
    }
    const listing: Listing = { mtimeNs: st.mtimeNs, ino: st.ino, names, links, racy: readAtNs - st.mtimeNs < RACY_NS };
    if (this.listings.size >= MAX_DIRS) this.listings.clear();
    this.listings.set(dir, listing);
    return listing;
  }
}
