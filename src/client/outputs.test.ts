// OutputWriter on a real tree and store: outputs land inside the project; paths from the farm that escape it — `..`,
// absolute, through a symlinked folder, onto a symlink leading out — are refused (exit 3, the path named) and nothing is written outside.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ExitCode, type Digest } from "../core/index.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { StatCache } from "../merkle/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import { OutputWriter } from "./outputs.js";
import { actionResult } from "./test-helpers.js";

let dir: string;
let root: string;
let outside: string;
let store: BlobStore;
let statCache: StatCache;
let blob: Digest;

beforeEach(async () => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-outputs-"));
  root = join(dir, "proj");
  outside = join(dir, "outside");
  fs.mkdirSync(join(root, "lib"), { recursive: true });
  fs.mkdirSync(outside);
  store = createBlobStore({ dir: join(dir, "cas") });
  statCache = new StatCache(join(dir, "stat.db"));
  blob = await store.put(Buffer.from("#!/bin/sh\necho pwned\n"));
});

afterEach(() => {
  statCache.close();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const result = (...paths: string[]): ActionResult => actionResult(paths.map((path) => ({ path, digest: blob, isExecutable: true })));

async function write(cwd: string, ...paths: string[]): Promise<unknown> {
  const w = new OutputWriter(store, statCache, root);
  w.write("a", [], cwd, Promise.resolve(result(...paths)));
  return w.flush().then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe("OutputWriter keeps outputs inside the project", () => {
  it("writes declared outputs under the project, including through a symlinked folder that stays inside", async () => {
    fs.symlinkSync(join(root, "lib"), join(root, "alias"));
    expect(await write("src", "../lib/fact.o", "x.o")).toBeUndefined();
    expect(fs.readFileSync(join(root, "lib/fact.o"), "utf8")).toMatch(/pwned/);
    expect(fs.existsSync(join(root, "src/x.o"))).toBe(true);
    expect(await write("", "alias/y.o")).toBeUndefined();
    expect(fs.existsSync(join(root, "lib/y.o"))).toBe(true);
  });

  it("refuses `..` and absolute paths that leave the project: exit 3, the path named", async () => {
    for (const [cwd, path] of [["", "../outside/evil"], ["src", "../../outside/evil"], ["", join(outside, "evil")]] as const) {
      const err = (await write(cwd, path)) as { exitCode: number; message: string };
      expect(err.exitCode).toBe(ExitCode.INFRASTRUCTURE);
      expect(err.message).toContain(JSON.stringify(path));
    }
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  it("refuses a path whose folder is a symlink leading outside, at any depth, and a final symlink leading out", async () => {
    fs.symlinkSync(outside, join(root, "lib", "out"));
    const err = (await write("", "lib/out/sub/evil")) as { exitCode: number; message: string };
    expect(err.exitCode).toBe(ExitCode.INFRASTRUCTURE);
    expect(err.message).toMatch(/lib\/out\/sub\/evil.*leads outside the project/);
    fs.writeFileSync(join(outside, "victim"), "keep me");
    fs.symlinkSync(join(outside, "victim"), join(root, "lib", "fact.o"));
    const link = (await write("lib", "fact.o")) as { exitCode: number; message: string };
    expect(link.exitCode).toBe(ExitCode.INFRASTRUCTURE);
    expect(link.message).toMatch(/lib\/fact\.o: it is a symlink leading outside/);
    expect(fs.readdirSync(outside).sort()).toEqual(["victim"]);
    expect(fs.readFileSync(join(outside, "victim"), "utf8")).toBe("keep me");
  });
});
