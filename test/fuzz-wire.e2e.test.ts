// End-to-end: a bounded, seeded fuzz loop against a real `orion head` and a node's blob port. Every method of every
// service gets valid messages with random mutations (bit flips, cut, inserted, repeated and overwritten bytes), with
// the farm's token, so they reach the handlers. The daemons must stay up, answer every call with a status, and keep
// serving a build that runs beside the fuzzer. ORION_FUZZ_SEED=N replays one run; ORION_FUZZ_CALLS sets calls per method.
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobsService } from "../src/gen/orion/v1/blobs.js";
import { BuildsService, NodeControlService } from "../src/gen/orion/v1/scheduler.js";
import { Directory } from "../src/gen/orion/v1/remote_execution.js";
import { tokenInterceptor } from "../src/grpc/auth.js";
import { digestOf } from "../src/core/index.js";
import { copyFixture, expectBuildOk, orionBuild, type OrionEnv, runOrion, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("fuzz-wire");
const TOKEN = "fuzz-wire-token";
const SEED = Number(process.env.ORION_FUZZ_SEED ?? 20261208);
const CALLS_PER_METHOD = Number(process.env.ORION_FUZZ_CALLS ?? 120);
/** Calls in flight at once. */
const PARALLEL = 16;
/** A call the server has not answered by then is a finding (the long-poll methods are given short waits below). */
const DEADLINE_MS = 15_000;
/** How long a server stream is read before the fuzzer hangs up (a watch, an attach: they may rightly stay open). */
const STREAM_READ_MS = 300;

const client = (): OrionEnv => ({ cacheDir: join(scratch.root, "client-cache"), configHome: scratch.configHome, driver: "graph" });

let head: Daemon;
let node: Daemon;

/** A small seeded PRNG (mulberry32): the same seed, the same mutations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One to four random edits of a valid message's bytes. */
function mutate(bytes: Buffer, rnd: () => number): Buffer {
  let b = Buffer.from(bytes);
  const int = (n: number) => Math.floor(rnd() * n);
  for (let edits = 1 + int(4); edits > 0; edits--) {
    const at = int(b.length + 1);
    switch (int(6)) {
      case 0: // flip a bit
        if (b.length) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // cut the tail
        b = b.subarray(0, at);
        break;
      case 2: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))), b.subarray(at)]);
        break;
      case 3: // repeat a stretch (a field twice, a length that lies)
        b = Buffer.concat([b.subarray(0, at), b.subarray(int(at + 1), at), b.subarray(at)]);
        break;
      case 4: // overwrite a byte with an edge value
        if (b.length) b[int(b.length)] = [0x00, 0x7f, 0x80, 0xff][int(4)]!;
        break;
      default: // drop a byte
        if (b.length) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    }
  }
  return b;
}

/** Values that break assumptions: empty, huge, negative, path tricks, control bytes. */
function oddValue(v: unknown, rnd: () => number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  if (typeof v === "string") return pick(["", "x".repeat(70_000), "../../../etc/passwd", "/abs/path", "a\u0000b", "\u00e9\u{1F600}", "0".repeat(64), " ", "*"]);
  if (typeof v === "number") return pick([0, -1, 1, 2 ** 31 - 1, -(2 ** 31), Number.MAX_SAFE_INTEGER, 0.5]);
  if (typeof v === "boolean") return !v;
  if (Buffer.isBuffer(v)) return Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
  if (Array.isArray(v)) return pick([[], Array.from({ length: 200 }, () => v[0]), [...v, ...v]]);
  return v;
}

/** A valid message with some of its fields (at any depth) replaced by odd values, still well-formed on the wire. */
function mutateFields(v: unknown, rnd: () => number): unknown {
  if (Array.isArray(v)) return rnd() < 0.2 ? oddValue(v, rnd) : v.map((x) => mutateFields(x, rnd));
  if (v && typeof v === "object" && !Buffer.isBuffer(v)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rnd() < 0.3 ? oddValue(x, rnd) : mutateFields(x, rnd)]));
  }
  return v;
}

const dir = Buffer.from(Directory.encode(Directory.fromPartial({})).finish());
const root = digestOf(dir);
const digest = digestOf("fuzz");
const action = {
  id: "a", kind: "compile", label: "CC a.o", arguments: ["/usr/bin/gcc", "-c", "a.c", "-o", "a.o"], cwd: "", inputs: ["a.c"], outputs: ["a.o"],
  deps: [], host: false, toolchain: "0".repeat(64), environmentVariables: [{ name: "LANG", value: "C" }], shell: "",
};
const build = { contextRoot: root, actions: [action], noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/tmp/fuzz", noNodeTimeoutMs: 0 };
const session = "ab".repeat(24);
const result = { outputFiles: [{ path: "a.o", digest, isExecutable: false, contents: Buffer.alloc(0), nodeProperties: undefined }], exitCode: 0, stdoutRaw: Buffer.from("out"), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: undefined, executionMetadata: undefined };

/** A valid request per method (as the generated serializers take it); the fuzzer mutates its bytes. */
const SEEDS: Record<string, unknown> = {
  "/orion.v1.Blobs/FindMissingBlobs": { blobDigests: [root, digest] },
  "/orion.v1.Blobs/BatchUpdateBlobs": { requests: [{ digest: root, data: dir }] },
  "/orion.v1.Blobs/BatchReadBlobs": { digests: [root, digest] },
  "/orion.v1.Blobs/ReadBlob": { digest: root, offset: 0, limit: 0 },
  "/orion.v1.Blobs/WriteBlob": { digest: root, offset: 0, data: dir, finishWrite: true },
  "/orion.v1.Blobs/ReadTree": { rootDigest: root },
  "/orion.v1.NodeControl/Register": { name: "fuzz", slots: 1, toolchains: [{ name: "fz", digest: "1".repeat(64), path: "/bin/true" }], advertise: "", token: "", instanceId: "fuzz", sandbox: "" },
  "/orion.v1.NodeControl/Heartbeat": { nodeId: "fuzz", running: 0, load: 0.5, contextHashes: ["2".repeat(64)], session },
  "/orion.v1.NodeControl/Lease": { nodeId: "fuzz", maxActions: 1, waitMs: 10, contextHashes: [], session },
  "/orion.v1.NodeControl/ReportResult": { nodeId: "fuzz", leaseId: "l1", result, error: "", depfile: "a.o: a.c", actionError: false, session },
  "/orion.v1.NodeControl/Leave": { nodeId: "fuzz", session },
  "/orion.v1.NodeControl/Attach": { nodeId: "fuzz", session },
  "/orion.v1.Builds/SubmitBuild": build,
  "/orion.v1.Builds/WatchBuild": { buildId: "b1", fromSeq: 0 },
  "/orion.v1.Builds/GetResults": { buildId: "b1", actionIds: ["a"] },
  "/orion.v1.Builds/RunAction": { build, inlineLimitBytes: 1024 },
  "/orion.v1.Builds/CancelBuild": { buildId: "b1" },
  "/orion.v1.Builds/LeaseHostSteps": { buildId: "b1", maxSteps: 1, waitMs: 10 },
  "/orion.v1.Builds/ReportHostStep": { buildId: "b1", leaseId: "l1", ok: true, contextRoot: root, restored: false },
  "/orion.v1.Builds/GetStatus": {},
};

interface Method {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize(value: never): Buffer;
  requestDeserialize(bytes: Buffer): unknown;
}

const methods = (service: Record<string, Method>): Method[] => Object.values(service);

interface Answer {
  code: number;
  details: string;
}

/** What one fuzzed call came to: a status, or "no answer" (a finding). */
function fuzzCall(c: grpc.Client, m: Method, body: Buffer): Promise<Answer | "no answer"> {
  const id = (b: Buffer) => b;
  const deadline = Date.now() + DEADLINE_MS;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("no answer"), DEADLINE_MS + 5_000);
    const done = (code: number, details = "") => {
      clearTimeout(timer);
      resolve({ code, details });
    };
    const unary = (err: grpc.ServiceError | null) => (err ? done(err.code, err.details) : done(grpc.status.OK));
    if (!m.requestStream && !m.responseStream) {
      c.makeUnaryRequest(m.path, id, id, body, new grpc.Metadata(), { deadline }, unary);
    } else if (m.requestStream && !m.responseStream) {
      const call = c.makeClientStreamRequest(m.path, id, id, new grpc.Metadata(), { deadline }, unary);
      call.write(body);
      call.end();
    } else {
      const call = c.makeServerStreamRequest(m.path, id, id, body, new grpc.Metadata(), { deadline });
      // A stream that is still open after a moment answered too: it is a watch or an attach doing its job.
      const hangUp = setTimeout(() => call.cancel(), STREAM_READ_MS);
      call.on("data", () => {});
      call.on("status", (s: grpc.StatusObject) => {
        clearTimeout(hangUp);
        done(s.code, s.details);
      });
      call.on("error", () => {});
    }
  });
}

beforeAll(async () => {
  // Fuzzed Register calls do register nodes, which never lease: a short TTL (3 heartbeats of 200 ms) evicts them soon,
  // so work that went to one of them (it offered the toolchain a fuzzed build names) fails at the head's next check.
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN, "--heartbeat-ms", "200"]);
  node = await startDaemon(scratch, ["node", "--head", head.hello.grpc as string, "--token", TOKEN, "--slots", "2", "--name", "fuzz-node", "--data-dir", join(scratch.root, "node")]);
}, 60_000);

afterAll(async () => {
  if (node) await stopDaemon(node);
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

describe(`the wire under fuzzing (seed ${SEED})`, () => {
  it("keeps the head and a node up, answers every call with a status, and serves a build running beside it", async () => {
    const creds = grpc.credentials.createInsecure();
    const options: grpc.ClientOptions = { interceptors: [tokenInterceptor(TOKEN)] };
    const targets = [
      { who: "head", c: new grpc.Client(head.hello.grpc as string, creds, options), ms: [...methods(BlobsService as never), ...methods(NodeControlService as never), ...methods(BuildsService as never)] },
      { who: "node", c: new grpc.Client(node.hello.blobs as string, creds, options), ms: methods(BlobsService as never) },
    ];
    const work: { who: string; c: grpc.Client; m: Method; body: Buffer }[] = [];
    const rnd = prng(SEED);
    for (const t of targets) {
      for (const m of t.ms) {
        const seed = SEEDS[m.path];
        expect(seed, `no seed message for ${m.path}`).toBeDefined();
        const valid = m.requestSerialize(seed as never);
        for (let i = 0; i < CALLS_PER_METHOD; i++) {
          // Half well-formed messages with odd field values (they reach the handlers), half mangled bytes.
          let body: Buffer | undefined;
          if (i % 2 === 0) {
            try {
              body = m.requestSerialize(mutateFields(seed, rnd) as never);
            } catch {
              body = undefined; // a value the encoder itself refuses: mangle bytes instead
            }
          }
          work.push({ ...t, m, body: body ?? mutate(valid, rnd) });
        }
      }
    }
    // An ordinary farm build starts first and must finish as if nothing else were happening.
    const tree = copyFixture("multi-c", join(scratch.root, "beside"));
    const beside = orionBuild(tree, client(), ["--head", head.hello.grpc as string, "--token", TOKEN, "--no-cache"]);

    const unanswered: string[] = [];
    const codes = new Map<number, number>();
    /** INTERNAL or UNKNOWN from a handler: it threw on input it should have refused (grpc-js's own refusal of bytes that do not parse is set apart). */
    const threw: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < work.length) {
          const w = work[next++]!;
          const a = await fuzzCall(w.c, w.m, w.body);
          const what = `${w.who} ${w.m.path} ${w.body.toString("hex").slice(0, 200)}`;
          if (a === "no answer") {
            unanswered.push(what);
            continue;
          }
          const unparsed = a.code === grpc.status.INTERNAL && /^Error deserializing request/.test(a.details);
          const key = unparsed ? -1 : a.code;
          codes.set(key, (codes.get(key) ?? 0) + 1);
          if (!unparsed && (a.code === grpc.status.INTERNAL || a.code === grpc.status.UNKNOWN)) threw.push(`${what}: ${a.details}`);
          if (a.code === grpc.status.DEADLINE_EXCEEDED) unanswered.push(`${w.who} ${w.m.path} (no answer in ${DEADLINE_MS / 1000} s): ${JSON.stringify(w.m.requestDeserialize(w.body)).slice(0, 1500)}`);
        }
      }),
    );
    for (const t of targets) t.c.close();
    expect(unanswered, `calls without an answer (replay with ORION_FUZZ_SEED=${SEED})`).toEqual([]);
    expect(work.length).toBeGreaterThanOrEqual(2_000);
    // Mostly refusals, as it should be (-1: bytes that do not parse as the message).
    console.info(`fuzz-wire: ${work.length} calls, status → count ${JSON.stringify([...codes])} (-1: did not parse)`);
    expect(threw, JSON.stringify([...codes])).toEqual([]);
    // The fuzz reached the handlers: their own refusals (field checks) and some calls they took.
    expect(codes.get(grpc.status.INVALID_ARGUMENT) ?? 0, JSON.stringify([...codes])).toBeGreaterThan(100);
    expect(codes.get(grpc.status.OK) ?? 0, JSON.stringify([...codes])).toBeGreaterThan(100);

    expectBuildOk(await beside);
    for (const d of [head, node]) expect(d.proc.exitCode ?? null, `${d.hello.type} died`).toBeNull();
    const s = await runOrion(["status", "--head", head.hello.grpc as string, "--token", TOKEN, "--json"], client());
    expect(s.exitCode, s.stderr).toBe(0);
    expect((JSON.parse(s.stdout) as { nodes: { name: string }[] }).nodes.map((n) => n.name)).toContain("fuzz-node");
    // And a build after it.
    copyFixture("multi-c", tree);
    expectBuildOk(await orionBuild(tree, client(), ["--head", head.hello.grpc as string, "--token", TOKEN, "--no-cache"]));
  }, 240_000);
});
