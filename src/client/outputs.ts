// Writes action outputs into the project tree exactly where make would put them: atomically
// (temp file + rename, so an interrupted build never leaves a partial object), skipping files
// already in place with the same content, and giving each a fresh mtime as a rebuilt target has.
import { mkdir, stat, utimes } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type Digest, CorruptBlobError, digestKey } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { StatCache } from "../merkle/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";

export class OutputWriter {
  /** Writes run one after another, in the order results arrived (dependencies before dependents). */
  private chain: Promise<void> = Promise.resolve();
  private firstError?: unknown;

  constructor(
    private readonly store: BlobStore,
    private readonly statCache: StatCache,
    private readonly projectRoot: string,
  ) {}

  /** Queues the outputs of one action (cwd relative to the project root). */
  write(cwd: string, result: ActionResult): void {
    this.chain = this.chain.then(async () => {
      if (this.firstError) return;
      try {
        for (const of of result.outputFiles) await this.writeOne(join(this.projectRoot, cwd, of.path), of.digest!, of.isExecutable);
      } catch (err) {
        this.firstError = err;
      }
    });
  }

  /** Waits for every queued write; rethrows the first failure. */
  async flush(): Promise<void> {
    await this.chain;
    if (this.firstError) throw this.firstError;
  }

  private async writeOne(dest: string, digest: Digest, executable: boolean): Promise<void> {
    const now = new Date();
    const st = await stat(dest, { bigint: true }).catch(() => undefined);
    if (st?.isFile() && Number(st.size) === digest.sizeBytes) {
      const have = await this.statCache.digestOf(dest, st);
      if (digestKey(have) === digestKey(digest)) {
        await utimes(dest, now, now);
        return;
      }
    }
    await mkdir(dirname(dest), { recursive: true });
    if (!(await this.store.copyOut(digest, dest, executable))) {
      throw new CorruptBlobError(`output blob ${digestKey(digest)} for ${dest} is missing from the store`);
    }
  }
}
