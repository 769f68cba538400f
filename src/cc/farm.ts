// `orion cc` on a farm: keeps each project's source context uploaded to the head (re-hashed through the stat cache, never
// older than the call), submits a cache miss as a one-compile build through the same Builds service and blob store as
// `orion build --head`, and brings its object and depfile back into place. Loaded only when ORION_HEAD is set: it pulls in grpc-js.
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { type Digest, type Logger, EMPTY_DIGEST, OrionError, Status, digestKey, digestOf, errorMessage, sameDigest } from "../core/index.js";
import { parseAddress } from "../core/address.js";
import { ChangedWhileHashedError, type HashedTree, hashTree, type StatCache, uploadTree } from "../merkle/index.js";
import { clientTlsProblem, connectFarm, type FarmConnection } from "../grpc/connection.js";
import { writeInPlace } from "../grpc/grpc-blob-store.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import { type FarmCompile, FreshRuns, isContextNoise } from "./farm-plan.js";

export { findProjectRoot, planFarmCompile, type FarmCompile } from "./farm-plan.js";

/** A first connection that takes longer than this counts as unreachable. */
const CONNECT_TIMEOUT_MS = 5_000;
/** After the farm was unreachable, calls compile locally without asking again for this long. */
const RETRY_AFTER_MS = 30_000;
/** After the head said no node has a toolchain, calls with it compile locally without asking again for this long. */
const NO_TOOLCHAIN_RETRY_MS = 30_000;
/** A file that changes between its hash and its upload (a tool writing it right then) makes the context be hashed again. */
const SNAPSHOT_ATTEMPTS = 3;
/** Outputs up to this size come back inline with the compile's answer (objects are rarely larger); larger ones are read after. */
const INLINE_LIMIT_BYTES = 8 * 1024 * 1024;
/** Infrastructure retries the head may spend on one compile (a node lost mid-compile), as `orion build`'s default. */
const RETRIES = 2;

export interface CcFarmOptions {
  /** The head, HOST:PORT (ORION_HEAD). */
  address: string;
  token?: string;
  /** PEM file of the CA the head's certificate is checked against (ORION_TLS_CA). */
  tlsCa?: string;
  /** PEM client certificate and key for a head that asks for one (ORION_TLS_CERT, ORION_TLS_KEY). */
  tlsCert?: string;
  tlsKey?: string;
  statCache: StatCache;
  /** The local cache folder: left out of a context it sits inside. */
  cacheDir: string;
  logger: Logger;
}

/** What the farm made of one compile: the compiler's answer (outputs already in place), or why it could not run it. */
export type FarmOutcome =
  | { kind: "ran"; exitCode: number; stdout: Buffer; stderr: Buffer; depfile?: string; node?: string; cached?: boolean }
  | { kind: "unavailable"; reason: string; unreachable: boolean };

export class CcFarm {
  readonly address: string;
  private readonly log: Logger;
  /** The live connection (or the attempt at one); unset after a failed attempt, so a later call tries again. */
  private conn?: Promise<FarmConnection>;
  /** Until then, the farm counts as unreachable (why: `downReason`). */
  private downUntil = 0;
  private downReason = "";
  /** Toolchain digest → until when the head is taken at its word that no node has it. */
  private readonly missingToolchains = new Map<string, { until: number; reason: string }>();
  /** Per project root: its context, hashed and uploaded no earlier than the call asking for it. */
  private readonly contexts = new Map<string, FreshRuns<Digest>>();
  /**
   * Digest keys this head was seen to hold (uploaded or found): a context's next snapshot asks the head only about
   * the rest. Without it each compile asked about every file of the project — Redis: ~200 compiles × ~1,700 blobs,
   * 10 s of the head's CPU in stats. Forgotten on any infrastructure failure, in case the head lost blobs.
   */
  private readonly onHead = new Set<string>();

  constructor(private readonly o: CcFarmOptions) {
    this.address = o.address;
    this.log = o.logger.child({ module: "cc-farm", head: o.address });
  }

  /** Runs one compile on the farm; the outputs the compiler wrote are in place when it returns "ran". */
  async compile(plan: FarmCompile, callCwd: string, toolchain: string, env: [string, string][]): Promise<FarmOutcome> {
    const now = Date.now();
    if (now < this.downUntil) return { kind: "unavailable", reason: this.downReason, unreachable: true };
    const missing = this.missingToolchains.get(toolchain);
    if (missing && now < missing.until) return { kind: "unavailable", reason: missing.reason, unreachable: false };
    try {
      const conn = await this.connection();
      const contextRoot = await this.context(conn, plan.root);
      return await this.run(conn, plan, callCwd, contextRoot, toolchain, env);
    } catch (err) {
      this.onHead.clear();
      // "cannot reach the head at H:P: why" says the address twice once the caller names the farm.
      const reason = errorMessage(err).replace(/^cannot reach the head at \S+: /, "");
      const unreachable = err instanceof OrionError && (err.code === Status.UNAVAILABLE || err.code === Status.DEADLINE_EXCEEDED || err.code === Status.UNAUTHENTICATED);
      if (unreachable) {
        this.downUntil = Date.now() + RETRY_AFTER_MS;
        this.downReason = reason;
      }
      this.log.warn({ err: errorMessage(err), unreachable }, "the farm could not run a compile");
      return { kind: "unavailable", reason, unreachable };
    }
  }

  close(): void {
    this.conn?.then(
      (c) => c.close(),
      () => undefined,
    );
    this.conn = undefined;
  }

  private connection(): Promise<FarmConnection> {
    if (this.conn) return this.conn;
    const attempt = (async () => {
      parseAddress(this.o.address, "ORION_HEAD");
      const pem = (file: string | undefined, variable: string): Buffer | undefined => {
        if (!file) return undefined;
        try {
          return readFileSync(file);
        } catch (err) {
          throw new OrionError(`${variable} ${file}: ${errorMessage(err)}`, { code: Status.UNAVAILABLE });
        }
      };
      // A half-given TLS setup is the farm being out of reach for this agent, said once like any other reason.
      const unusable = (why: string) => new OrionError(why, { code: Status.UNAVAILABLE });
      const problem = clientTlsProblem(
        { ca: this.o.tlsCa, cert: this.o.tlsCert, key: this.o.tlsKey },
        { ca: "ORION_TLS_CA", cert: "ORION_TLS_CERT", key: "ORION_TLS_KEY" },
      );
      if (problem) throw unusable(problem);
      let conn: FarmConnection;
      try {
        conn = connectFarm(this.o.address, {
          token: this.o.token,
          tlsCa: pem(this.o.tlsCa, "ORION_TLS_CA"),
          tlsCert: pem(this.o.tlsCert, "ORION_TLS_CERT"),
          tlsKey: pem(this.o.tlsKey, "ORION_TLS_KEY"),
        });
      } catch (err) {
        if (err instanceof OrionError) throw err;
        throw unusable(`cannot use the TLS files (ORION_TLS_CA, ORION_TLS_CERT, ORION_TLS_KEY): ${errorMessage(err)}`);
      }
      try {
        await conn.waitForReady(CONNECT_TIMEOUT_MS, { failFast: true });
      } catch (err) {
        conn.close();
        throw new OrionError(errorMessage(err), { code: Status.UNAVAILABLE, cause: err });
      }
      this.log.info("connected");
      return conn;
    })();
    this.conn = attempt;
    attempt.catch(() => {
      if (this.conn === attempt) this.conn = undefined;
    });
    return attempt;
  }

  /** The context of `root` as it is now (hashed after this call was made), uploaded. */
  private context(conn: FarmConnection, root: string): Promise<Digest> {
    let runs = this.contexts.get(root);
    if (!runs) {
      const cacheRel = relative(root, this.o.cacheDir);
      /** The last snapshot taken with nothing left out for being written at the time. */
      let last: HashedTree | undefined;
      runs = new FreshRuns(async () => {
        // Files the build was writing while this snapshot was taken (a configure's config.log, another compile's output):
        // left out of this snapshot only. No compile make runs now can need one — make would have waited for its writer —
        // and the next snapshot takes them as they are then.
        const unsettled = new Set<string>();
        const exclude = (rel: string, isDir: boolean) => (isDir ? rel === cacheRel : isContextNoise(rel) || unsettled.has(rel));
        for (let attempt = 1; ; attempt++) {
          const started = performance.now();
          // While a build writes only objects and depfiles (left out), every snapshot is the last one again: no Merkle
          // construction, and no upload while the head is known to hold it.
          const tree = await hashTree(root, { statCache: this.o.statCache, exclude, previous: unsettled.size ? undefined : last });
          if (tree === last && this.onHead.has(digestKey(tree.root))) return tree.root;
          try {
            const up = await uploadTree(conn.blobs, tree, root, { concurrency: 64, known: this.onHead });
            this.log.debug({ root, files: tree.files.size, uploadedBlobs: up.uploadedBlobs, ms: Math.round(performance.now() - started) }, "context hashed and uploaded");
            if (!unsettled.size) last = tree;
            return tree.root;
          } catch (err) {
            // A file written while we read it: hash again without it (the stat cache re-reads only what changed).
            if (err instanceof ChangedWhileHashedError) unsettled.add(err.rel);
            if (attempt >= SNAPSHOT_ATTEMPTS || !/changed after it was hashed|cannot read file/.test(errorMessage(err))) throw err;
            this.log.debug({ err: errorMessage(err), attempt }, "a file changed during the upload; hashing the context again");
          }
        }
      });
      this.contexts.set(root, runs);
    }
    return runs.run();
  }

  private async run(conn: FarmConnection, plan: FarmCompile, callCwd: string, contextRoot: Digest, toolchain: string, env: [string, string][]): Promise<FarmOutcome> {
    // One call: the head submits it, waits for it and answers with the object and depfile inline.
    const answer = await conn.builds.runAction(
      {
        contextRoot,
        actions: [
          {
            id: "cc",
            kind: "compile",
            label: plan.label,
            arguments: plan.argv,
            cwd: plan.cwd,
            inputs: [plan.source],
            outputs: plan.outputs,
            deps: [],
            host: false,
            toolchain,
            environmentVariables: env.map(([name, value]) => ({ name, value })),
            shell: plan.argv.join(" "),
          },
        ],
        noCache: false,
        retries: RETRIES,
        jobs: 0,
        token: "",
        projectRoot: plan.root,
        // No waiting for a node: with none there, the compile runs here at once.
        noNodeTimeoutMs: 0,
      },
      INLINE_LIMIT_BYTES,
    );
    if (answer.infraError) {
      this.onHead.clear();
      if (/no node (has the toolchain|is registered)/.test(answer.infraError)) {
        this.missingToolchains.set(toolchain, { until: Date.now() + NO_TOOLCHAIN_RETRY_MS, reason: answer.infraError });
      }
      return { kind: "unavailable", reason: answer.infraError, unreachable: false };
    }
    if (!answer.result) return { kind: "unavailable", reason: `the head has no result for ${plan.label}`, unreachable: false };
    const outcome = await this.restore(conn, plan, callCwd, answer.result);
    return outcome.kind === "ran" ? { ...outcome, ...(answer.node ? { node: answer.node } : {}), ...(answer.cached ? { cached: true } : {}) } : outcome;
  }

  /** Puts the object (and the depfile the user asked for) in place, reads the depfile, and fetches the compiler's output. */
  private async restore(conn: FarmConnection, plan: FarmCompile, callCwd: string, result: ActionResult): Promise<FarmOutcome> {
    const store = conn.blobs;
    const byPath = new Map(result.outputFiles.map((f) => [f.path, f]));
    const object = byPath.get(plan.object);
    const dep = byPath.get(plan.depfile);
    /** A blob's bytes: inline when the head sent them and they are what the digest says, else read from its store. */
    const fetch = async (inline: Uint8Array, digest: Digest | undefined): Promise<Buffer> => {
      if (!digest || digest.sizeBytes === 0) return Buffer.alloc(0);
      if (inline.length === digest.sizeBytes && sameDigest(digestOf(inline), digest)) return Buffer.from(inline);
      const data = await store.get(digest);
      if (!data) throw new OrionError(`the head lost a blob of ${plan.label}`, { code: Status.DATA_LOSS });
      return data;
    };
    const [stdout, stderr, depText, objectBytes] = await Promise.all([
      fetch(result.stdoutRaw, result.stdoutDigest),
      fetch(result.stderrRaw, result.stderrDigest),
      dep ? fetch(dep.contents, dep.digest ?? EMPTY_DIGEST) : undefined,
      object?.digest && result.exitCode === 0 ? fetch(object.contents, object.digest) : undefined,
    ]);
    if (result.exitCode !== 0) {
      // As gcc does: a failed compile leaves no object behind (a stale one would look up to date).
      await rm(resolve(callCwd, plan.object), { force: true });
      return { kind: "ran", exitCode: result.exitCode, stdout, stderr };
    }
    if (!object?.digest || !dep?.digest || depText === undefined) {
      return { kind: "unavailable", reason: `${plan.label} came back without its object or depfile`, unreachable: false };
    }
    const mode = (f: { isExecutable: boolean }) => (f.isExecutable ? 0o755 : 0o644);
    const writes = [writeInPlace(resolve(callCwd, plan.object), objectBytes ?? Buffer.alloc(0), mode(object))];
    if (plan.depfileWanted) writes.push(writeInPlace(resolve(callCwd, plan.depfile), depText, mode(dep)));
    await Promise.all(writes);
    return { kind: "ran", exitCode: 0, stdout, stderr, depfile: depText.toString("utf8") };
  }
}
