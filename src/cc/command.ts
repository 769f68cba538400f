// `orion cc COMPILER ARGS...` in process (the slow path the native client and agent will speed up): runs the call through CcService and, whenever Orion's own machinery fails, runs the compiler directly.
import { errorMessage, ExitCode } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { defaultSelfPaths, findCompiler, notFoundReply, runInherited } from "./compiler.js";
import { CcService } from "./service.js";
import { CcStats } from "./stats.js";
import type { CompilerCall } from "./types.js";

const CC_USAGE = `usage: orion cc COMPILER [ARGS...]
Runs COMPILER ARGS through Orion's cache: a single-source compile to an object is served from the cache
when its inputs are unchanged; anything else (links, -E, stdin, -M) runs as the compiler would.
Exit code, stdout and stderr are the compiler's. Example: make -j8 CC="orion cc gcc"\n`;

export interface CcConfig {
  cacheDir: string;
  maxCacheBytes: number;
  noCache: boolean;
  logger: Logger;
}

export interface CcCommandOptions {
  /** Resolves the configuration (src/cli owns the config rules); a throw makes the call run uncached. */
  config(env: Record<string, string>): Promise<CcConfig>;
}

function definedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

function write(stream: NodeJS.WriteStream, bytes: Buffer): Promise<void> {
  if (bytes.length === 0) return Promise.resolve();
  return new Promise((resolve) => stream.write(bytes, () => resolve()));
}

/** Runs one compiler call (argv[0] = the compiler as named) and returns the exit code to exit with. */
export async function ccCommand(argv: string[], options: CcCommandOptions): Promise<number> {
  if (argv.length === 0) {
    process.stderr.write(`orion: cc: no compiler given\n${CC_USAGE}`);
    return ExitCode.USAGE;
  }
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
    process.stdout.write(CC_USAGE);
    return ExitCode.OK;
  }
  const env = definedEnv(process.env);
  const call: CompilerCall = { argv, cwd: process.cwd(), env };
  let cacheDir: string | undefined;
  let service: CcService | undefined;
  try {
    const cfg = await options.config(env);
    cacheDir = cfg.cacheDir;
    service = new CcService({
      cacheDir: cfg.cacheDir,
      logger: cfg.logger,
      maxCacheBytes: cfg.maxCacheBytes,
      noCache: cfg.noCache,
      // In process, a call that is not cached runs on our own stdio: a probe piping source into `gcc -x c -` works.
      passThrough: async (exe, c) => ({ exitCode: await runInherited(exe, c), stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) }),
    });
    const reply = await service.handle(call);
    await write(process.stdout, reply.stdout);
    await write(process.stderr, reply.stderr);
    return reply.exitCode;
  } catch (err) {
    // Orion's plumbing never fails a build: say why once, count it, and run the compiler as make would have.
    process.stderr.write(`orion cc: ${errorMessage(err).split("\n")[0]}; running ${argv[0]} directly\n`);
    try {
      if (service) service.bump("fallbacks");
      else if (cacheDir) {
        const s = new CcStats(cacheDir);
        s.bump("fallbacks");
        s.close();
      }
    } catch {
      // the counters are part of what failed
    }
    const skipDirs = env.ORION_MASQUERADE_DIR ? [env.ORION_MASQUERADE_DIR] : [];
    const exe = findCompiler(argv[0]!, call.cwd, env, { selfPaths: defaultSelfPaths(), skipDirs });
    if (!exe) {
      const r = notFoundReply(argv[0]!);
      process.stderr.write(r.stderr);
      return r.exitCode;
    }
    return runInherited(exe, call);
  } finally {
    service?.close();
  }
}
