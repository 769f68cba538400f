// The two views of a project tree — hashed up front, and read live from the file system — fingerprint alike, so an
// entry recorded through one is found through the other; and the tree as a step found it, told after the step ran.
import { execFileSync } from "node:child_process";
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashTree, StatCache } from "../merkle/index.js";
import { Fingerprinter } from "./step-cache.js";
import { hashedTreeView, StateUnknownError, type TreeView } from "./tree-view.js";
import { LiveTreeView, nextCtimeTick, StepStartView, walkTreeShape } from "./tree-view-live.js";

let dir: string;
let root: string;
let statCache: StatCache;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "orion-tree-view-"));
  root = path.join(dir, "p");
  statCache = new StatCache(path.join(dir, "stat.db"));
  const write = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };
  write("a.txt", "A\n");
  write("run.sh", "#!/bin/sh\n");
  chmodSync(path.join(root, "run.sh"), 0o755);
  write("sub/b.txt", "B\n");
  write("sub/deep/c.txt", "C\n");
  write("sub/.git", "gitdir: ../.git/modules/sub\n"); // a submodule's .git is a file
  write(".git/HEAD", "ref: refs/heads/main\n");
  mkdirSync(path.join(root, "empty"));
  writeFileSync(path.join(dir, "outside.txt"), "O\n");
  symlinkSync("a.txt", path.join(root, "link-file"));
  symlinkSync("sub", path.join(root, "link-dir"));
  symlinkSync("../outside.txt", path.join(root, "link-out"));
  symlinkSync("nowhere", path.join(root, "dangling"));
  execFileSync("mkfifo", [path.join(root, "sub/fifo")]);
});

afterEach(() => {
  statCache.close();
  rmSync(dir, { recursive: true, force: true });
});

const PATHS = [
  "", "a.txt", "run.sh", "sub", "sub/b.txt", "sub/deep", "sub/deep/c.txt", "sub/.git", "sub/.git/x", "sub/fifo", "empty",
  "link-file", "link-dir", "link-dir/b.txt", "link-dir/deep/c.txt", "link-out", "dangling", "missing", "sub/missing",
  "a.txt/under-a-file",
];
const KINDS = ["r", "L", "a", "p"] as const;

async function fingerprints(view: TreeView): Promise<string[]> {
  const fp = new Fingerprinter(view);
  const out: string[] = [];
  for (const p of PATHS) for (const kind of KINDS) out.push(`${kind} ${p}: ${await fp.of(kind, p)}`);
  return out;
}

async function hashed(): Promise<TreeView> {
  const tree = await hashTree(root, { statCache });
  return hashedTreeView({ root, files: tree.files, symlinks: tree.symlinks, directories: [...tree.dirDigests.keys()] });
}

/** The kernel's clock now, as a step's start is taken: the ctime of a file made now. */
/** A step's start, as the runner takes it: a ctime tick after every change made so far. */
async function clockNow(): Promise<bigint> {
  const marker = path.join(dir, `marker-${Math.random()}`);
  writeFileSync(marker, "");
  const t = await nextCtimeTick(marker);
  rmSync(marker);
  return t;
}

describe("tree views", () => {
  it("the live view fingerprints every kind of look at every kind of path as the hashed tree does", async () => {
    const want = await fingerprints(await hashed());
    // A sanity check that the table says something: contents, listings without .git or the FIFO, links followed.
    expect(want).toContain(`L : D${["a.txt", "dangling", "empty", "link-dir", "link-file", "link-out", "run.sh", "sub"].join("/")}`);
    expect(want).toContain("L sub: Db.txt/deep");
    expect(want.find((l) => l.startsWith("r run.sh:"))).toMatch(/^r run\.sh: f[0-9a-f]+x$/);
    expect(want.find((l) => l.startsWith("r link-out:"))).toMatch(/^r link-out: l\.\.\/outside\.txt>s\d+:/);
    expect(want.find((l) => l.startsWith("r link-dir/b.txt:"))).toMatch(/^r link-dir\/b\.txt: >s\d+:/);
    expect(await fingerprints(new LiveTreeView(root, statCache))).toEqual(want);
  });

  it("the tree as a step found it, told after: its walked shape and unchanged contents fingerprint as the hashed tree did", async () => {
    const want = await fingerprints(await hashed());
    const startNs = await clockNow();
    const shape = await walkTreeShape(root);
    // What the step then does to paths it did not read (new files, removals) does not show.
    writeFileSync(path.join(root, "sub/new.txt"), "new\n");
    rmSync(path.join(root, "empty"), { recursive: true });
    const view = new StepStartView(shape, new LiveTreeView(root, statCache), startNs, statCache);
    expect(await fingerprints(view)).toEqual(want);
    expect(shape.files.has("sub/b.txt")).toBe(true);
    expect(shape.files.has("sub/.git")).toBe(false);
  });

  it("a file changed after the step started is what the look before it saw, or unknown when nothing looked", async () => {
    const before = new LiveTreeView(root, statCache);
    const seen = await new Fingerprinter(before).of("r", "a.txt");
    const startNs = await clockNow();
    const shape = await walkTreeShape(root);
    appendFileSync(path.join(root, "a.txt"), "more\n");
    appendFileSync(path.join(root, "sub/b.txt"), "more\n");
    const fp = new Fingerprinter(new StepStartView(shape, before, startNs, statCache));
    expect(await fp.of("r", "a.txt")).toBe(seen);
    await expect(fp.of("r", "sub/b.txt")).rejects.toBeInstanceOf(StateUnknownError);
    // Its existence is known all the same.
    expect(await fp.of("p", "sub/b.txt")).toBe("f");
  });
});
