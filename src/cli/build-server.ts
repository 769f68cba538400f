// The warm build server: `orion build` served inside the per-user agent for the native client (native/client/
// orion-build.c), which sends its argv, cwd and environment and prints the frames that come back. The build runs the
// CLI's own code (main) with the client's environment, cwd and terminal; what stays warm between builds is the agent's
// process (no Node start-up, modules loaded, code optimized) and one cc service per cache (stores and stat cache open).
import type { Socket } from "node:net";
import { CcService, type CcServiceOptions } from "../cc/service.js";
import type { CompilerCall } from "../cc/types.js";
import type { Logger } from "../core/logger.js";
import { BuildFrame, encodeBuildExit, encodeBuildFrame } from "../agent/protocol.js";
import { NotServed } from "./io.js";
import { loadDrivenBuild, main } from "./main.js";

/** Set by the client in the request's environment: "1" or "0" for its stdout and stderr being terminals ("10"). */
export const CLIENT_TTY_VAR = "ORION_CLIENT_TTY";
/** Set by the client: its terminal's width. */
export const CLIENT_COLUMNS_VAR = "ORION_CLIENT_COLUMNS";

export interface BuildServer {
  serve(call: CompilerCall, conn: Socket): Promise<void>;
  /** Loads what a build needs (best effort), so the first build served is as warm as the next. */
  warmUp(): Promise<void>;
  close(): void;
}

/** `own`: the agent's own cache (its options as a build in the same environment resolves them), opened by warmUp. */
export function buildServer(logger: Logger, own?: Omit<CcServiceOptions, "logger">): BuildServer {
  /** One cc service per cache (and its options), kept open across builds. */
  const services = new Map<string, CcService>();
  const ccService = (o: Omit<CcServiceOptions, "logger">): CcService => {
    const key = JSON.stringify([o.cacheDir, !!o.noCache, o.maxCacheBytes ?? null]);
    let s = services.get(key);
    if (!s) services.set(key, (s = new CcService({ ...o, logger })));
    return s;
  };
  return {
    async serve(call, conn) {
      // The client half-closes its side on Ctrl-C; a vanished client stops its build the same way.
      const interrupt = new AbortController();
      conn.on("end", () => interrupt.abort());
      conn.on("close", () => interrupt.abort());
      const send = (kind: BuildFrame) => (chunk: string | Uint8Array) => {
        if (!conn.writableEnded && !conn.destroyed) conn.write(encodeBuildFrame(kind, chunk));
        return true;
      };
      const env: NodeJS.ProcessEnv = { ...call.env };
      const tty = env[CLIENT_TTY_VAR] ?? "";
      const columns = Number(env[CLIENT_COLUMNS_VAR]) || undefined;
      delete env[CLIENT_TTY_VAR];
      delete env[CLIENT_COLUMNS_VAR];
      let code: number;
      try {
        code = await main(call.argv.slice(1), {
          env,
          cwd: call.cwd,
          stdout: { write: send(BuildFrame.STDOUT), isTTY: tty[0] === "1", columns },
          stderr: { write: send(BuildFrame.STDERR) },
          interrupt: interrupt.signal,
          server: { ccService },
        });
      } catch (err) {
        // Nothing was written yet: the client runs the build in its own process.
        if (!(err instanceof NotServed)) throw err;
        if (!conn.writableEnded) conn.end(encodeBuildFrame(BuildFrame.NOT_SERVED));
        return;
      }
      logger.info({ cwd: call.cwd, argv: call.argv.slice(1), exitCode: code }, "served a build");
      if (!conn.writableEnded && !conn.destroyed) conn.end(encodeBuildExit(code));
    },
    async warmUp() {
      try {
        await Promise.all([loadDrivenBuild(), import("zod")]);
        // Its stores open too: the first build of this cache does not open them (most builds are of the agent's cache).
        if (own && !own.noCache) ccService(own).openStores();
      } catch (err) {
        logger.debug({ err }, "warming up the build server failed; the first build loads what it needs");
      }
    },
    close() {
      for (const s of services.values()) s.close();
      services.clear();
    },
  };
}
