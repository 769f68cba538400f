import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Slots } from "../core/concurrency.js";
import { runCaptured } from "./compiler.js";

const dir = mkdtempSync(join(tmpdir(), "orion-run-captured-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("runCaptured", () => {
  it("waits for one of the call's slots: two calls given one slot run one after the other", async () => {
    const log = join(dir, "log");
    const slots = new Slots(1);
    const call = (name: string) => ({
      argv: ["sh", "-c", `echo ${name} start >> "$0"; sleep 0.2; echo ${name} end >> "$0"`, log],
      cwd: dir,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      slots,
    });
    const [a, b] = await Promise.all([runCaptured("/bin/sh", call("a")), runCaptured("/bin/sh", call("b"))]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    expect(readFileSync(log, "utf8").split("\n").filter(Boolean)).toEqual(["a start", "a end", "b start", "b end"]);
  });
});
