// A CallHandler that just runs the compiler: the agent's handler when the caching CcService is absent, and the benchmark's baseline.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { CallHandler, CompilerCall, CompilerReply } from "../cc/types.js";

export class PassThroughHandler implements CallHandler {
  handle(call: CompilerCall): Promise<CompilerReply> {
    return new Promise((resolve) => {
      const [file, ...args] = call.argv;
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const child = spawn(file!, args, { cwd: call.cwd, env: call.env, stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => err.push(b));
      child.once("error", (e: NodeJS.ErrnoException) => {
        // As a shell reports it: 127 for a missing program, 126 for one that cannot be run.
        const code = e.code === "ENOENT" ? 127 : 126;
        resolve({ exitCode: code, stdout: Buffer.alloc(0), stderr: Buffer.from(`${file}: ${e.message}\n`) });
      });
      child.once("close", (code, signal) => {
        const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
        resolve({ exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
      });
    });
  }
}
