// Tests for running a host step with real shells: its output and exit code, and what stopping it leaves behind.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runHostStep } from "./host-step.js";

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "orion-host-step-"));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Running, not a zombie waiting for an init that may never reap it. */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0] !== "Z";
  } catch {
    return false;
  }
}

describe("runHostStep", () => {
  it("returns the step's exit code and its stdout and stderr", async () => {
    const r = await runHostStep(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], { cwd: root, root, env: process.env, signal: new AbortController().signal });
    expect(r.exitCode).toBe(3);
    expect(r.cancelled).toBe(false);
    expect(Buffer.from(r.output).toString()).toBe("out\nerr\n");
  });

  it("stopped, it ends the step's whole process group at once and removes the files the step created, not older ones", async () => {
    writeFileSync(join(root, "old.h"), "kept\n");
    writeFileSync(join(root, "src.c"), "int v = 1;\n");
    const abort = new AbortController();
    const started = Date.now();
    // A shell whose child (sleep) holds the output pipe: killing the shell alone would leave sleep running for a minute.
    const run = runHostStep(["/bin/sh", "-c", "echo $$ > sh.pid; echo partial > gen.h; echo more >> old.h; echo 'int v = 2;' > src.new && mv src.new src.c; sh -c 'echo $$ > sleep.pid; exec sleep 60'"], {
      cwd: root,
      root,
      env: process.env,
      signal: abort.signal,
    });
    for (let i = 0; i < 100 && !existsSync(join(root, "sleep.pid")); i++) await new Promise((r) => setTimeout(r, 20));
    const pids = ["sh.pid", "sleep.pid"].map((f) => Number(readFileSync(join(root, f), "utf8")));
    abort.abort();
    const r = await run;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.cancelled).toBe(true);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    // make deletes the target of a recipe it interrupts; the step's new files go. A file it appended to stays, and
    // so does one saved over by rename (a new inode, as an editor's save makes): its path existed before.
    expect(r.removed).toEqual(["gen.h", "sh.pid", "sleep.pid"]);
    expect(existsSync(join(root, "gen.h"))).toBe(false);
    expect(readFileSync(join(root, "old.h"), "utf8")).toBe("kept\nmore\n");
    expect(readFileSync(join(root, "src.c"), "utf8")).toBe("int v = 2;\n");
  });
});
