// Whole trees as one tar stream (tar-stream): the head packs a source context for a node's first
// provisioning, and the node extracts it into its CAS — every file checked against the digest its tree
// names, and any entry that would leave the tree (an absolute path, "..", a link pointing out) refused.
// Extraction writes blobs into the store only, never a path taken from the archive.
import { posix } from "node:path";
import { extract as tarExtract, pack as tarPack, type Header } from "tar-stream";
import type { BlobStore } from "../cas/index.js";
import { CorruptBlobError, type Digest, OrionError, Status, digestKey, errorMessage, onceAny } from "../core/index.js";
import { loadTree, type TreeEntry } from "./tree.js";

/** Files above this size stay out of a tree's tar stream: each travels as its own chunked blob stream. */
export const TAR_MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Blobs read ahead of the one being packed, so the store's latency hides behind the stream. */
const READ_AHEAD = 8;
/** Verified blobs stored at once while extracting. */
const PUT_CONCURRENCY = 64;
/** Every entry's mtime: the stream's bytes depend on the tree alone. */
const EPOCH = new Date(0);

/**
 * The tar stream of the tree under `root` in `store`, in chunks of at most `chunkBytes` (small entries
 * coalesced, large ones split). Directories come first, then files in path order; a file whose bytes an
 * earlier entry already carried is a hard link to it. Symlinks are left out: the tree names them, and a
 * node makes them from there. Blobs the store lacks or that exceed TAR_MAX_FILE_BYTES are left out too
 * (the node fetches those one by one, and names any that is missing).
 */
export async function* packTreeTar(store: BlobStore, root: Digest, chunkBytes: number): AsyncGenerator<Buffer> {
  const tree = await loadTree(store, root);
  const pack = tarPack();
  const entry = (header: Header | (Partial<Header> & { name: string }), data?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (data) pack.entry(header, data, done);
      else pack.entry(header, done);
    });
  const producing = (async () => {
    for (const dir of [...tree.dirDigests.keys()].filter((p) => p !== "").sort()) {
      await entry({ name: `${dir}/`, type: "directory", mode: 0o755, mtime: EPOCH });
    }
    // The plan: each distinct blob once, at its first path; later paths with the same bytes link there.
    const plan: { path: string; entry: TreeEntry; key: string; linkTo?: string }[] = [];
    const firstPath = new Map<string, string>();
    for (const [path, f] of [...tree.files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (f.digest.sizeBytes > TAR_MAX_FILE_BYTES) continue;
      const key = digestKey(f.digest);
      plan.push({ path, entry: f, key, linkTo: firstPath.get(key) });
      if (!firstPath.has(key)) firstPath.set(key, path);
    }
    const reads: (Promise<Buffer | undefined> | undefined)[] = [];
    const startRead = (i: number) => {
      const p = plan[i];
      if (!p || p.linkTo !== undefined || reads[i]) return;
      const read = store.get(p.entry.digest);
      read.catch(() => undefined); // awaited below; a failure read ahead must not count as unhandled meanwhile
      reads[i] = read;
    };
    /** Blobs the store lacks: left out, and so are the links to them. */
    const absent = new Set<string>();
    for (let i = 0; i < plan.length; i++) {
      for (let j = i; j < i + READ_AHEAD; j++) startRead(j);
      const p = plan[i]!;
      const mode = p.entry.executable ? 0o755 : 0o644;
      if (p.linkTo !== undefined) {
        if (!absent.has(p.key)) await entry({ name: p.path, type: "link", linkname: p.linkTo, mode, mtime: EPOCH });
        continue;
      }
      const data = await reads[i]!;
      reads[i] = undefined;
      if (!data) {
        absent.add(p.key);
        continue;
      }
      await entry({ name: p.path, type: "file", size: data.length, mode, mtime: EPOCH }, data);
    }
    pack.finalize();
  })();
  // A failure while packing ends the stream with that error (the consumer's loop would otherwise wait forever).
  producing.catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(errorMessage(err))));
  let finished = false;
  try {
    let parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of pack as AsyncIterable<Buffer>) {
      let rest = chunk;
      while (rest.length > 0) {
        const take = Math.min(rest.length, chunkBytes - size);
        parts.push(rest.subarray(0, take));
        size += take;
        rest = rest.subarray(take);
        if (size === chunkBytes) {
          yield Buffer.concat(parts, size);
          parts = [];
          size = 0;
        }
      }
    }
    if (size > 0) yield Buffer.concat(parts, size);
    await producing;
    finished = true;
  } finally {
    // The consumer went away early (a cancelled call): stop packing.
    if (!finished) pack.destroy();
    await producing.catch(() => undefined);
  }
}

export interface TarExtractOptions {
  /** The tree's files by path: the only file entries accepted, each checked against its digest. */
  files: ReadonlyMap<string, Pick<TreeEntry, "digest">>;
  /** Where verified blobs go. */
  store: BlobStore;
}

export interface TarExtractStats {
  /** File entries verified and stored. */
  files: number;
  bytes: number;
  /** Hard-link entries accepted (their bytes were an earlier entry's). */
  links: number;
}

/** An entry that would leave its folder: a request to break out, refused outright. */
function escapes(name: string, why: string): OrionError {
  return new OrionError(`tar entry ${JSON.stringify(name)} ${why}; refused: nothing outside the tree is written`, { code: Status.PERMISSION_DENIED });
}

/** The tree path an entry names ("" for the root), or a refusal when it is absolute or climbs out with "..". */
function entryPath(name: string): string {
  if (name.includes("\0")) throw escapes(name, "holds a NUL byte");
  if (posix.isAbsolute(name)) throw escapes(name, "is an absolute path");
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw escapes(name, 'climbs out with ".."');
  return parts.join("/");
}

/** Whether a symlink at `path` pointing to `target` resolves inside the tree (lexically; the tar's symlinks are never made on disk). */
function symlinkStaysInside(path: string, target: string): boolean {
  if (target === "" || posix.isAbsolute(target) || target.includes("\0")) return false;
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  return resolved !== ".." && !resolved.startsWith("../");
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // Entries other than files carry no bytes worth keeping.
  }
}

/**
 * Reads a tree's tar stream into `store`. Each file entry must be a file of `files` with exactly the bytes
 * its digest names; the first entry that is not — or that escapes its folder, or is a device, FIFO or
 * other non-tree entry — ends the extraction with an error naming it. Whatever was stored is verified
 * (entries before it, and maybe a few after whose puts were already running); the refused entry is not
 * stored. Files of `files` the stream did not carry are simply not stored (the caller fetches them).
 */
export async function extractTreeTar(source: AsyncIterable<Uint8Array>, o: TarExtractOptions): Promise<TarExtractStats> {
  const ex = tarExtract();
  let stop = false;
  const feeding = feed(source, ex, () => stop);
  const x = new Extraction(o);
  try {
    for await (const entry of ex) await x.take(entry);
    await x.settle();
  } catch (err) {
    stop = true;
    ex.destroy();
    await Promise.all([feeding, x.settle().catch(() => undefined)]);
    throw err;
  }
  await feeding;
  return x.stats;
}

/** Writes `source` into the extractor until it ends, `stopped()` says so, or the extractor is destroyed; a read failure destroys it. */
async function feed(source: AsyncIterable<Uint8Array>, ex: ReturnType<typeof tarExtract>, stopped: () => boolean): Promise<void> {
  try {
    for await (const chunk of source) {
      if (stopped() || ex.destroying) break;
      // A destroyed extractor never drains: its close ends the wait too.
      if (!ex.write(chunk)) await onceAny(ex, ["drain", "close"]);
    }
    if (!stopped() && !ex.destroying) ex.end(null); // streamx types want an argument; null writes nothing more
  } catch (err) {
    ex.destroy(err instanceof Error ? err : new Error(errorMessage(err)));
  }
}

type TarEntry = AsyncIterable<unknown> & { header: Header };

/** One extraction's state: what it accepted so far, and the verified puts it has in flight. */
class Extraction {
  readonly stats: TarExtractStats = { files: 0, bytes: 0, links: 0 };
  /** Path → digestKey of each file entry accepted so far (hard links may name them; a failed put fails the whole extraction). */
  private readonly stored = new Map<string, string>();
  /** Puts in flight, and the first one's failure. */
  private readonly puts = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly o: TarExtractOptions) {}

  /** Accepts one entry, or throws the refusal naming it. */
  async take(entry: TarEntry): Promise<void> {
    const h = entry.header;
    const path = entryPath(h.name);
    switch (h.type) {
      case "directory":
        return drain(entry);
      case "file":
      case "contiguous-file":
        return this.file(path, entry);
      case "link":
        return this.link(path, entry);
      case "symlink":
        if (!symlinkStaysInside(path, h.linkname ?? "")) throw escapes(h.name, `is a symlink to ${JSON.stringify(h.linkname)}, outside its folder`);
        // The tree says which symlinks exist; materialization makes them from there.
        return drain(entry);
      default:
        throw new CorruptBlobError(`tar entry ${JSON.stringify(h.name)} is a ${h.type}: only files, directories and links belong in a tree; refused`);
    }
  }

  /** Waits for the puts in flight; throws the first one's failure. */
  async settle(): Promise<void> {
    await Promise.all(this.puts);
    if (this.failure !== undefined) throw this.failure;
  }

  private wanted(path: string, h: Header): Pick<TreeEntry, "digest"> {
    const want = this.o.files.get(path);
    if (path === "" || !want) throw new CorruptBlobError(`tar entry ${JSON.stringify(h.name)} is not a file of the tree; refused`);
    return want;
  }

  private async file(path: string, entry: TarEntry): Promise<void> {
    const h = entry.header;
    const want = this.wanted(path, h);
    if (h.size !== want.digest.sizeBytes) {
      throw new CorruptBlobError(`tar entry ${path} holds ${h.size} bytes, but the tree names ${digestKey(want.digest)}; refused, nothing stored`);
    }
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    // put hashes the bytes and stores nothing when they differ from the digest. Several run at once
    // while the stream goes on (one at a time, the store's latency would pace the whole stream).
    const put = this.o.store.put(Buffer.concat(chunks), want.digest).then(
      () => {
        this.stats.files++;
        this.stats.bytes += h.size;
      },
      (err: unknown) => {
        this.failure ??= err instanceof CorruptBlobError ? new CorruptBlobError(`tar entry ${path} does not match its digest (${errorMessage(err)}); refused, nothing stored`) : err;
      },
    );
    this.puts.add(put);
    void put.finally(() => this.puts.delete(put));
    this.stored.set(path, digestKey(want.digest));
    while (this.puts.size >= PUT_CONCURRENCY) await Promise.race(this.puts);
    if (this.failure !== undefined) throw this.failure;
  }

  private async link(path: string, entry: TarEntry): Promise<void> {
    const target = entryPath(entry.header.linkname ?? "");
    const want = this.wanted(path, entry.header);
    // A hard link's bytes are its target's, which must already be here and be the bytes this path names.
    if (this.stored.get(target) !== digestKey(want.digest)) {
      throw new CorruptBlobError(`hard link ${path} -> ${target} does not carry the bytes the tree names for ${path}; refused`);
    }
    await drain(entry);
    this.stats.links++;
  }
}
