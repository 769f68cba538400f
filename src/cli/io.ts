// What a CLI command reads and writes: this process's environment, cwd and stdio — or, for a build the per-user agent
// serves (src/agent/build-server.ts), the native client's, carried over its socket.
import type { CcService, CcServiceOptions } from "../cc/service.js";

export interface CliOutput {
  write(chunk: string | Uint8Array): unknown;
}

export interface CliIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: CliOutput & { isTTY: boolean; columns?: number };
  stderr: CliOutput;
  /** A served build: the client asked to stop (its Ctrl-C). Absent: this process's SIGINT and SIGTERM do. */
  interrupt?: AbortSignal;
  /** Present when the agent serves this build: its long-lived cc service for the build's cache, kept warm across builds. */
  server?: { ccService(o: Omit<CcServiceOptions, "logger">): CcService };
}

export function processIo(): CliIo {
  return { env: process.env, cwd: process.cwd(), stdout: process.stdout as CliIo["stdout"], stderr: process.stderr };
}

/** Thrown before any output when the agent cannot serve a build (graph driver, no Makefile, not `build`): the client runs it. */
export class NotServed extends Error {
  constructor(why: string) {
    super(why);
    this.name = "NotServed";
  }
}
