import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../core/logger.js";
import { openStepLines } from "./step-lines.js";

describe("openStepLines prewarm", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("leaves a cache dir that cannot be opened to the first line, which reports it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "orion-step-lines-"));
    dirs.push(dir);
    const notADir = join(dir, "file");
    writeFileSync(notADir, "");
    let rejected = 0;
    const onRejection = () => void rejected++;
    process.on("unhandledRejection", onRejection);
    try {
      const steps = openStepLines({
        cacheDir: join(notADir, "cache"),
        stores: () => {
          throw new Error("not reached");
        },
        root: dir,
        jobs: 1,
        env: process.env,
        logger: silentLogger,
        signal: new AbortController().signal,
      });
      steps.lines.prewarm?.();
      await new Promise((r) => setTimeout(r, 50));
      await expect(steps.lines.run({ argv: ["/bin/sh", "-c", "true"], cwd: dir, env: {} })).rejects.toThrow(/cannot create the cache directory/);
      steps.close();
    } finally {
      process.off("unhandledRejection", onRejection);
    }
    expect(rejected).toBe(0);
  });
});
