// reuploadBlobs on a real tree and stores: a lost blob that is no source is found among the build's written outputs
// (waiting for a write still on its way) and uploaded; an output edited since it was written is not sent.
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type Digest, digestKey } from "../core/index.js";
import { type BlobStore, createBlobStore } from "../cas/index.js";
import { StatCache } from "../merkle/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import { OutputWriter } from "./outputs.js";
import { reuploadBlobs } from "./reupload.js";
import { actionResult } from "./test-helpers.js";

let dir: string;
let root: string;
let local: BlobStore;
let head: BlobStore;
let statCache: StatCache;

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), "orion-reupload-"));
  root = join(dir, "proj");
  fs.mkdirSync(root);
  local = createBlobStore({ dir: join(dir, "local") });
  head = createBlobStore({ dir: join(dir, "head") });
  statCache = new StatCache(join(dir, "stat.db"));
});

afterEach(() => {
  statCache.close();
  local.close();
  head.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const result = (outputs: [string, Digest][]): ActionResult => actionResult(outputs.map(([path, digest]) => ({ path, digest, isExecutable: false })));

const lines: string[] = [];
const log = { warn: (_o: unknown, msg: string) => lines.push(msg), info() {}, debug() {}, error() {} } as never;

it("uploads a lost build output from where it was written, waiting for its write; skips one edited since", async () => {
  const lib = await local.put(Buffer.from("!<arch>\nlibcalc\n"));
  const obj = await local.put(Buffer.from("\x7fELF main.o\n"));
  const writer = new OutputWriter(local, statCache, root);
  let release!: (r: ActionResult) => void;
  writer.write("ar", [], ".", new Promise<ActionResult>((r) => (release = r)));
  writer.write("cc", [], ".", Promise.resolve(result([["main.o", obj]])));
  await writer.whenWritten(["cc"]);
  fs.writeFileSync(join(root, "main.o"), "edited by hand\n");
  const sending = reuploadBlobs(head, root, { files: new Map() } as never, [digestKey(lib), digestKey(obj)], log, writer);
  setTimeout(() => release(result([["libcalc.a", lib]])), 100);
  expect(await sending).toBe(1);
  expect(await head.findMissing([lib, obj], { verify: true })).toEqual([obj]);
  expect(lines).toContain("re-sent a build output the head lost");
  expect(lines).toContain("could not upload a lost blob again");
});
