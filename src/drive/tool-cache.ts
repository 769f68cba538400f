// Links and archives a make-driven build issues, cached as the Contract keys them: the toolchain (or the tool's bytes),
// argv, and the digest of every input argv names plus each -l library it resolves to — so a fresh tree at the same
// path links nothing, and a relink whose objects came out identical is a hit (early cutoff).
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { classify, type Classified } from "../../dag-extract/classify.js";
import { errorMessage, type Digest, type Logger } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import { type ActionCache, type ProgramDigests, keyEnv, linkKey, lookupValid, normalizeArgv, resolveLibraries } from "../cache/index.js";
import { placeOutput, type StatCache } from "../merkle/index.js";
import { ActionResult } from "../gen/orion/v1/remote_execution.js";
import { findCompiler, runCaptured, type CompilerCall, type CompilerReply } from "../cc/index.js";

export interface ToolCacheStores {
  store: BlobStore;
  cache: ActionCache;
  statCache: StatCache;
}

export interface ToolCacheOptions {
  stores(): ToolCacheStores;
  programs: ProgramDigests;
  /** Real paths of Orion's own executables, never run as the tool. */
  selfPaths: string[];
  logger: Logger;
}

/** `inputs`: what the key named (absolute), when the call was keyed; `program`: the tool that ran or would have. */
export type ToolOutcome = { reply: CompilerReply; outcome: "hit" | "miss" | "uncacheable"; inputs?: string[]; program?: string };

/** Outputs this large inline in the action result instead of a blob of their own (stdout/stderr). */
const INLINE_MAX = 4096;

export class ToolCache {
  private readonly log: Logger;

  constructor(private readonly o: ToolCacheOptions) {
    this.log = o.logger.child({ module: "tool-cache" });
  }

  /**
   * The call read once: an archive (`ar rcs`, `ranlib`) or a link of objects and libraries, which this cache answers —
   * else undefined (a compile, or anything else).
   */
  static linkOrArchive(call: CompilerCall): Classified | undefined {
    const c = classify(call.argv, (p) => existsSync(resolve(call.cwd, p)));
    return c.kind === "archive" || c.kind === "link" ? c : undefined;
  }

  async run(call: CompilerCall, c: Classified): Promise<ToolOutcome> {
    const exe = findCompiler(call.argv[0]!, call.cwd, call.env, { selfPaths: this.o.selfPaths });
    if (!exe) return { reply: await runCaptured(call.argv[0]!, call), outcome: "uncacheable" };
    let keyed: { key: string; inputs: string[] } | undefined;
    try {
      keyed = await this.key(exe, call, c.inputs);
    } catch (err) {
      this.log.debug({ err: errorMessage(err), argv: call.argv }, "link not keyed; running it");
    }
    if (!keyed || c.outputs.length === 0) return { reply: await runCaptured(exe, call), outcome: "uncacheable", program: exe };
    const { key, inputs } = keyed;
    const hit = await this.restore(key, call.cwd);
    if (hit) return { reply: hit, outcome: "hit", inputs, program: exe };
    const reply = await runCaptured(exe, call);
    if (reply.exitCode === 0) {
      try {
        await this.record(key, call.cwd, c.outputs, reply);
      } catch (err) {
        this.log.warn({ err: errorMessage(err), argv: call.argv }, "storing a link's result failed; the link itself succeeded");
      }
    }
    return { reply, outcome: "miss", inputs, program: exe };
  }

  private async key(exe: string, call: CompilerCall, inputs: string[]): Promise<{ key: string; inputs: string[] }> {
    const { statCache } = this.o.stores();
    const keyInputs: { path: string; digest: Digest }[] = [];
    const read: string[] = [];
    // An input that cannot be read fails the look-up here (logged), and the tool gives its own words for it.
    for (const p of inputs) {
      const abs = resolve(call.cwd, p);
      keyInputs.push({ path: p, digest: await statCache.digestOf(abs) });
      read.push(abs);
    }
    for (const lib of resolveLibraries(call.argv, call.cwd, [])) {
      keyInputs.push({ path: lib, digest: await statCache.digestOf(lib) });
      read.push(lib);
    }
    const toolchain = await this.o.programs.digest(exe);
    return { key: linkKey({ toolchain, argv: normalizeArgv(call.argv, { digest: toolchain }), workingDir: ".", env: keyEnv(call.env), inputs: keyInputs }), inputs: read };
  }

  private async restore(key: string, cwd: string): Promise<CompilerReply | undefined> {
    const { store, cache, statCache } = this.o.stores();
    const result = await lookupValid(cache, store, key);
    if (!result) return undefined;
    for (const f of result.outputFiles) {
      const dest = resolve(cwd, f.path);
      if (!(await placeOutput(store, statCache, f.digest!, dest, f.isExecutable))) return undefined;
    }
    const text = async (raw: Uint8Array, d: Digest | undefined) => (raw.length || !d?.sizeBytes ? Buffer.from(raw) : await store.get(d));
    const [stdout, stderr] = await Promise.all([text(result.stdoutRaw, result.stdoutDigest), text(result.stderrRaw, result.stderrDigest)]);
    if (!stdout || !stderr) return undefined;
    return { exitCode: 0, stdout, stderr };
  }

  private async record(key: string, cwd: string, outputs: string[], reply: CompilerReply): Promise<void> {
    const { store, cache, statCache } = this.o.stores();
    const outputFiles = [];
    for (const p of outputs) {
      const abs = resolve(cwd, p);
      const st = statSync(abs, { bigint: true });
      const digest = await store.putFile(abs);
      statCache.remember(abs, st, digest);
      outputFiles.push({ path: p, digest, isExecutable: (st.mode & 0o111n) !== 0n });
    }
    const blobText = async (b: Buffer) => (b.length <= INLINE_MAX ? { raw: b, digest: undefined } : { raw: Buffer.alloc(0), digest: await store.put(b) });
    const [out, err] = await Promise.all([blobText(reply.stdout), blobText(reply.stderr)]);
    const result = ActionResult.fromPartial({ outputFiles, exitCode: 0, stdoutRaw: out.raw, stdoutDigest: out.digest, stderrRaw: err.raw, stderrDigest: err.digest });
    cache.putResult(key, result);
  }
}
