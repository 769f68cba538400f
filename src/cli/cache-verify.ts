// `orion cache verify`: hashes every blob of a client's, a head's or a node's store, drops the rotten
// ones and repairs the index, then says what it found; exit 0 once the store is consistent.
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ExitCode, UsageError } from "../core/errors.js";

export async function cacheVerifyCommand(opts: { dataDir?: string; json?: boolean }, cacheDir: string): Promise<number> {
  // A head's or node's --data-dir and the client's cache dir keep their store in the same place: DIR/cas.
  let dir = cacheDir;
  if (opts.dataDir !== undefined) {
    dir = resolve(opts.dataDir);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--data-dir ${opts.dataDir}: no such directory`);
    if (!existsSync(join(dir, "cas", "cas.db"))) throw new UsageError(`--data-dir ${opts.dataDir}: holds no blob store (no cas/cas.db)`);
  }
  const casDir = join(dir, "cas");
  const { verifyBlobStore } = await import("../cas/index.js");
  const started = performance.now();
  const r = await verifyBlobStore(casDir);
  const ms = Math.round(performance.now() - started);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ store: casDir, ...r, ms }) + "\n");
    return ExitCode.OK;
  }
  const repairs = [
    r.rotten && `${r.rotten} rotten blob${r.rotten === 1 ? "" : "s"} dropped`,
    r.missing && `${r.missing} index row${r.missing === 1 ? "" : "s"} without a file dropped`,
    r.orphansIndexed && `${r.orphansIndexed} unindexed file${r.orphansIndexed === 1 ? "" : "s"} indexed`,
    r.orphansRemoved && `${r.orphansRemoved} stray file${r.orphansRemoved === 1 ? "" : "s"} removed`,
  ].filter(Boolean);
  process.stdout.write(
    `orion: verified ${r.checked} blob${r.checked === 1 ? "" : "s"} in ${casDir} (${ms} ms): ` +
      (repairs.length ? `repaired: ${repairs.join(", ")}` : "all intact") +
      `; the store is consistent (${r.bytes} bytes)\n`,
  );
  return ExitCode.OK;
}
