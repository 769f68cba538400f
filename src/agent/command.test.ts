// Tests for the agent command's helpers: waiting for the build that started an agent to end before warming up.
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { processGone } from "./command.js";

describe("processGone", () => {
  it("resolves at once without a process, and once a live one has exited", async () => {
    await processGone(undefined);
    const child = spawn("sleep", ["0.3"]);
    const exited = new Promise<number>((resolve) => child.once("exit", () => resolve(Date.now())));
    await processGone(child.pid);
    // The child is reaped by Node on exit; gone means after its exit, never before.
    expect(Date.now()).toBeGreaterThanOrEqual(await exited);
  });
});
