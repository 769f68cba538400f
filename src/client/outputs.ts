// Writes action outputs into the project tree exactly where make would put them: atomically
// (temp file + rename, so an interrupted build never leaves a partial object), skipping files
// already in place with the same content, and giving each a fresh mtime as a rebuilt target has —
// independent actions in parallel, a dependent only after what it depends on.
import { mkdir, stat, utimes } from "node:fs/promises";
import { dirname } from "node:path";
import { type Digest, asDiskFull, CorruptBlobError, digestKey } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { StatCache } from "../merkle/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import { OutputPathGuard } from "./output-path.js";

export class OutputWriter {
  /** Each action's write, by action id: a dependent's files are written after its dependencies' (mtime order, as make expects). */
  private readonly written = new Map<string, Promise<void>>();
  private readonly pending: Promise<void>[] = [];
  private firstError?: unknown;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Output paths come from the farm: each is checked to stay inside the project before anything is written. */
  private readonly guard: OutputPathGuard;
  /** Actions someone waits for (whenWritten) before their outputs were queued: resolved with their write once queued. */
  private readonly awaited = new Map<string, { promise: Promise<void>; resolve(write: Promise<void>): void; reject(err: Error): void }>();
  /** Set once no more actions will be queued (the build's events ended): why a wait for an unqueued action fails. */
  private closed?: Error;
  /** Each output blob written into the tree so far, by digestKey: where it went (the head may ask for it again). */
  private readonly inTree = new Map<string, { dest: string; digest: Digest }>();

  constructor(
    private readonly store: BlobStore,
    private readonly statCache: StatCache,
    private readonly projectRoot: string,
    /** Actions written at once (independent ones only). */
    private readonly concurrency = 8,
  ) {
    this.guard = new OutputPathGuard(projectRoot);
  }

  /** Queues the outputs of one action (cwd relative to the project root), after those of `deps`. */
  write(id: string, deps: readonly string[], cwd: string, result: Promise<ActionResult | undefined>): void {
    const before = deps.map((d) => this.written.get(d)).filter((p): p is Promise<void> => !!p);
    const p = Promise.all([result, ...before]).then(([r]) =>
      this.limited(async () => {
        if (this.firstError || !r) return;
        try {
          for (const of of r.outputFiles) await this.writeOne(await this.guard.resolve(cwd, of.path), of.digest!, of.isExecutable);
        } catch (err) {
          // A full disk under the tree is named as such (a farm's store copies out as plain file writes).
          this.firstError ??= asDiskFull(err, "the build tree", this.projectRoot);
        }
      }),
    );
    this.written.set(id, p);
    this.pending.push(p);
    this.awaited.get(id)?.resolve(p);
    this.awaited.delete(id);
  }

  /**
   * Waits until the outputs of every action in `ids` are written into the tree — including actions whose
   * outputs are not queued yet (their event is still on its way while a host step's lease already came):
   * being reported done is not being in the tree. Rethrows the first failed write.
   */
  async whenWritten(ids: Iterable<string>): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const id of ids) {
      const queued = this.written.get(id);
      if (queued) {
        writes.push(queued);
        continue;
      }
      if (this.closed) throw this.closed;
      let w = this.awaited.get(id);
      if (!w) {
        let resolve!: (write: Promise<void>) => void;
        let reject!: (err: Error) => void;
        const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
        promise.catch(() => undefined); // a wait nobody awaits any more must not surface as unhandled
        w = { promise, resolve, reject };
        this.awaited.set(id, w);
      }
      writes.push(w.promise);
    }
    await Promise.all(writes);
    if (this.firstError) throw this.firstError;
  }

  /** No more actions will be queued: a wait for one that never was fails with `reason` instead of hanging. */
  close(reason: Error): void {
    this.closed ??= reason;
    for (const w of this.awaited.values()) w.reject(this.closed);
    this.awaited.clear();
  }

  /** How many actions' outputs were queued so far (a change means the tree may have changed). */
  get queued(): number {
    return this.pending.length;
  }

  /** Waits for every queued write; rethrows the first failure. */
  async flush(): Promise<void> {
    await Promise.all(this.pending);
    if (this.firstError) throw this.firstError;
  }

  /**
   * Where outputs with these digests (digestKey strings) were written into the tree, waiting up to `timeoutMs` for
   * writes still on their way (an action's result comes before its files land). Those never written are left out.
   */
  async writtenOutputs(keys: readonly string[], timeoutMs: number): Promise<Map<string, { dest: string; digest: Digest }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = new Map<string, { dest: string; digest: Digest }>();
      for (const k of keys) {
        const w = this.inTree.get(k);
        if (w) found.set(k, w);
      }
      if (found.size === keys.length || Date.now() >= deadline || this.firstError) return found;
      // Unref'd: a wait for an output that never comes must not keep a finished build's process alive.
      await new Promise<void>((r) => setTimeout(r, 50).unref());
    }
  }

  private async limited(f: () => Promise<void>): Promise<void> {
    while (this.active >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      await f();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  private async writeOne(dest: string, digest: Digest, executable: boolean): Promise<void> {
    const now = new Date();
    const st = await stat(dest, { bigint: true }).catch(() => undefined);
    if (st?.isFile() && Number(st.size) === digest.sizeBytes) {
      const have = await this.statCache.digestOf(dest, st);
      if (digestKey(have) === digestKey(digest)) {
        await utimes(dest, now, now);
        this.statCache.remember(dest, await stat(dest, { bigint: true }), digest);
        this.inTree.set(digestKey(digest), { dest, digest });
        return;
      }
    }
    await mkdir(dirname(dest), { recursive: true });
    if (!(await this.store.copyOut(digest, dest, executable))) {
      throw new CorruptBlobError(`output blob ${digestKey(digest)} for ${dest} is missing from the store`);
    }
    // Known content: the re-hash after the next host step need not read it back.
    this.statCache.remember(dest, await stat(dest, { bigint: true }), digest);
    this.inTree.set(digestKey(digest), { dest, digest });
  }
}
