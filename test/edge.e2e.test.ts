// End-to-end: a hostile client against a real `orion head` and a node's blob port — malformed digests, unsafe node
// names and slots, graphs that could never finish, lying and truncated uploads, oversized control messages — each
// refused with the status and field it deserves, nothing stored, no stuck build; then an ordinary build still works.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobsClient, type BatchUpdateBlobsRequest, type BatchUpdateBlobsResponse, type BlobChunk, type FindMissingBlobsRequest, type FindMissingBlobsResponse, type WriteBlobResponse } from "../src/gen/orion/v1/blobs.js";
import { BuildsClient, type GraphAction, NodeControlClient, type SubmitBuildRequest } from "../src/gen/orion/v1/scheduler.js";
import { Directory } from "../src/gen/orion/v1/remote_execution.js";
import { tokenInterceptor } from "../src/grpc/auth.js";
import { type Digest, digestOf } from "../src/core/index.js";
import { expectBuildOk, orionBuild, type OrionEnv, runOrion, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("edge");
const TOKEN = "edge-e2e-token";
const client = (): OrionEnv => ({ cacheDir: join(scratch.root, "client-cache"), configHome: scratch.configHome, driver: "graph" });

let head: Daemon;
let node: Daemon;
let address = "";
let blobs: BlobsClient;
let peerBlobs: BlobsClient;
let control: NodeControlClient;
let builds: BuildsClient;
/** A real (empty) source context in the head's store. */
let root: Digest;

type Outcome<T> = { ok: true; res: T } | { ok: false; code: number; details: string };

/** One unary call; its answer or its status. */
function call<Req, Res>(fn: (req: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown, req: Req): Promise<Outcome<Res>> {
  return new Promise((resolve) => fn(req, (err, res) => resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, res: res! })));
}

/** Refused with `code`, the details naming `field`. */
function expectRefused(o: Outcome<unknown>, code: grpc.status, field: RegExp): void {
  expect(o.ok, "the call was accepted").toBe(false);
  if (o.ok) return;
  expect(o.code, o.details).toBe(code);
  expect(o.details).toMatch(field);
}

/** A WriteBlob of `chunks` (offsets filled in) naming `digest`; `cancelAfter` hangs up after that many chunks instead of ending. */
function writeBlob(c: BlobsClient, digest: Digest, chunks: Buffer[], cancelAfter?: number): Promise<Outcome<WriteBlobResponse>> {
  return new Promise((resolve) => {
    const stream = c.writeBlob((err, res) => resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, res: res! }));
    let offset = 0;
    for (const [i, data] of chunks.entries()) {
      if (i === cancelAfter) {
        // Give the head time to take in what was sent, then hang up mid-upload.
        setTimeout(() => stream.cancel(), 200);
        return;
      }
      const chunk: BlobChunk = { digest: i === 0 ? digest : undefined, offset, data, finishWrite: false };
      stream.write(chunk);
      offset += data.length;
    }
    stream.end();
  });
}

async function missing(digests: Digest[]): Promise<string[]> {
  const r = await call<FindMissingBlobsRequest, FindMissingBlobsResponse>(blobs.findMissingBlobs.bind(blobs), { blobDigests: digests });
  if (!r.ok) throw new Error(r.details);
  return r.res.missingBlobDigests.map((d) => d.hash);
}

function action(id: string, extra: Partial<GraphAction> = {}): GraphAction {
  return {
    id, kind: "compile", label: `CC ${id}`, arguments: ["/usr/bin/gcc", "-c", `${id}.c`, "-o", `${id}.o`], cwd: "", inputs: [`${id}.c`], outputs: [`${id}.o`],
    deps: [], host: false, toolchain: "0".repeat(64), environmentVariables: [], shell: "", ...extra,
  };
}

function submit(actions: GraphAction[], extra: Partial<SubmitBuildRequest> = {}): Promise<Outcome<unknown>> {
  return call(builds.submitBuild.bind(builds), { contextRoot: root, actions, noCache: true, retries: 0, jobs: 0, token: "", projectRoot: "/tmp/edge-project", noNodeTimeoutMs: 0, ...extra });
}

beforeAll(async () => {
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN]);
  address = head.hello.grpc as string;
  node = await startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--slots", "2", "--name", "edge-node", "--data-dir", join(scratch.root, "node")]);
  const options: grpc.ClientOptions = { interceptors: [tokenInterceptor(TOKEN)], "grpc.max_send_message_length": 128 * 1024 * 1024 };
  const creds = grpc.credentials.createInsecure();
  blobs = new BlobsClient(address, creds, options);
  control = new NodeControlClient(address, creds, options);
  builds = new BuildsClient(address, creds, options);
  peerBlobs = new BlobsClient(node.hello.blobs as string, creds, options);
  const dir = Buffer.from(Directory.encode(Directory.fromPartial({})).finish());
  root = digestOf(dir);
  const up = await call<BatchUpdateBlobsRequest, BatchUpdateBlobsResponse>(blobs.batchUpdateBlobs.bind(blobs), { requests: [{ digest: root, data: dir }] });
  expect(up.ok && up.res.responses[0]!.status!.code).toBe(0);
}, 60_000);

afterAll(async () => {
  for (const c of [blobs, peerBlobs, control, builds]) c?.close();
  if (node) await stopDaemon(node);
  if (head) expect(await stopDaemon(head)).toBe(0);
  scratch.cleanup();
});

describe("digests at the edge", () => {
  it("FindMissingBlobs refuses a malformed digest, naming it, instead of reading it as present", async () => {
    const good = digestOf("present or not");
    expectRefused(await call(blobs.findMissingBlobs.bind(blobs), { blobDigests: [good, { hash: "ZZ", sizeBytes: 3 }] }), grpc.status.INVALID_ARGUMENT, /blob_digests\[1\] has hash "ZZ"/);
    expectRefused(await call(blobs.findMissingBlobs.bind(blobs), { blobDigests: [{ hash: good.hash, sizeBytes: -1 }] }), grpc.status.INVALID_ARGUMENT, /blob_digests\[0\] has size_bytes -1/);
    // The node's blob port, too.
    expectRefused(await call(peerBlobs.findMissingBlobs.bind(peerBlobs), { blobDigests: [{ hash: good.hash.toUpperCase(), sizeBytes: 1 }] }), grpc.status.INVALID_ARGUMENT, /blob_digests\[0\]/);
    expect(await missing([good])).toEqual([good.hash]);
  });

  it("ReadBlob and ReadTree name their digest field; BatchUpdateBlobs names the entry", async () => {
    const readErr = await new Promise<grpc.ServiceError>((resolve) => blobs.readBlob({ digest: { hash: "x", sizeBytes: 1 }, offset: 0 }).on("error", resolve).on("data", () => {}));
    expect(readErr.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(readErr.details).toMatch(/ReadBlob: digest has hash/);
    const up = await call<BatchUpdateBlobsRequest, BatchUpdateBlobsResponse>(blobs.batchUpdateBlobs.bind(blobs), { requests: [{ digest: { hash: "nope", sizeBytes: 2 }, data: Buffer.from("hi") }] });
    expect(up.ok && up.res.responses[0]!.status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, message: expect.stringMatching(/requests\[0\]\.digest/) });
  });
});

describe("node registration", () => {
  const reg = { name: "ok-node", slots: 1, toolchains: [], advertise: "", token: "", instanceId: "i-1", sandbox: "" };

  it("refuses slots ≤ 0 or absurdly many, and names that are not names", async () => {
    expectRefused(await call(control.register.bind(control), { ...reg, slots: -5 }), grpc.status.INVALID_ARGUMENT, /Register: slots is -5/);
    expectRefused(await call(control.register.bind(control), { ...reg, slots: 0 }), grpc.status.INVALID_ARGUMENT, /slots/);
    expectRefused(await call(control.register.bind(control), { ...reg, slots: 1_000_000 }), grpc.status.INVALID_ARGUMENT, /slots/);
    for (const name of ["../../evil", "a/b", "x..y", "tab\there", "x".repeat(200)]) {
      expectRefused(await call(control.register.bind(control), { ...reg, name }), grpc.status.INVALID_ARGUMENT, /Register: name /);
    }
    expectRefused(await call(control.register.bind(control), { ...reg, toolchains: [{ name: "gcc", digest: "", path: "/usr/bin/gcc" }] }), grpc.status.INVALID_ARGUMENT, /toolchains\[0\]\.digest is empty/);
    expectRefused(await call(control.register.bind(control), { ...reg, advertise: "not an address" }), grpc.status.INVALID_ARGUMENT, /advertise/);
    const r = await runOrion(["status", "--head", address, "--token", TOKEN, "--json"], client());
    expect(JSON.parse(r.stdout).nodes.map((n: { name: string }) => n.name)).toEqual(["edge-node"]);
  });

  it("refuses a bad --name at the node's command line, exit 2, one line", async () => {
    const r = await runOrion(["node", "--head", address, "--token", TOKEN, "--name", "../../evil", "--data-dir", join(scratch.root, "bad-node")], client());
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(/^orion: --name "..\/..\/evil" is not a name/);
  });
});

describe("SubmitBuild", () => {
  it("refuses graphs that could never finish, naming the field, and leaves no build running", async () => {
    expectRefused(await submit([action("a")], { contextRoot: undefined }), grpc.status.INVALID_ARGUMENT, /SubmitBuild: context_root is missing/);
    expectRefused(await submit([action("a", { deps: ["b"] }), action("b", { deps: ["c"] }), action("c", { deps: ["a"] })]), grpc.status.INVALID_ARGUMENT, /actions form a cycle: "a" → "b" → "c" → "a"/);
    expectRefused(await submit([action("a"), action("b", { deps: ["a", "ghost"] })]), grpc.status.INVALID_ARGUMENT, /actions\[1\]\.deps\[1\] "ghost" is no action/);
    expectRefused(await submit([action("a"), action("a")]), grpc.status.INVALID_ARGUMENT, /actions\[1\]\.id "a" is the id of an earlier action/);
    expectRefused(await submit([action("a", { outputs: ["../../etc/x.o"] })]), grpc.status.INVALID_ARGUMENT, /actions\[0\]\.outputs\[0\] "..\/..\/etc\/x.o" is not a path inside the project root/);
    expectRefused(await submit([action("a", { outputs: ["/tmp/x.o"] })]), grpc.status.INVALID_ARGUMENT, /outputs\[0\]/);
    expectRefused(await submit([action("a", { cwd: "src/../.." })]), grpc.status.INVALID_ARGUMENT, /actions\[0\]\.cwd/);
    expectRefused(await submit([action("a")], { projectRoot: "" }), grpc.status.INVALID_ARGUMENT, /project_root is empty/);
    expectRefused(await submit([action("a", { kind: "rm -rf" })]), grpc.status.INVALID_ARGUMENT, /actions\[0\]\.kind/);
    const r = await runOrion(["status", "--head", address, "--token", TOKEN, "--json"], client());
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).builds).toEqual([]);
  });
});

describe("WriteBlob", () => {
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const real = digestOf(data);
  const chunks = [data.subarray(0, 1 << 20), data.subarray(1 << 20, 2 << 20), data.subarray(2 << 20)];

  it("refuses a stream longer than its digest, a wrong hash, a short stream and a hang-up; stores none of them", async () => {
    expectRefused(await writeBlob(blobs, { hash: real.hash, sizeBytes: 2 << 20 }, chunks), grpc.status.INVALID_ARGUMENT, /more bytes than the 2097152 the digest names/);
    const liar = { hash: createHash("sha256").update("something else").digest("hex"), sizeBytes: data.length };
    expectRefused(await writeBlob(blobs, liar, chunks), grpc.status.DATA_LOSS, /its bytes hash to/);
    expectRefused(await writeBlob(blobs, real, chunks.slice(0, 2)), grpc.status.INVALID_ARGUMENT, /ended after 2097152 of the 3145745 bytes/);
    const hungUp = await writeBlob(blobs, real, chunks, 2);
    expect(hungUp.ok).toBe(false);
    expect(await missing([real, liar])).toEqual([real.hash, liar.hash]);
  });

  it("refuses an announced size over the cap before spooling, and any write to a node's read-only port", async () => {
    expectRefused(await writeBlob(blobs, { hash: real.hash, sizeBytes: 5 * 1024 ** 3 }, [chunks[0]!]), grpc.status.RESOURCE_EXHAUSTED, /larger than the 4294967296-byte cap/);
    expectRefused(await writeBlob(peerBlobs, real, chunks), grpc.status.PERMISSION_DENIED, /read-only/);
  });

  it("stores an honest upload", async () => {
    const ok = await writeBlob(blobs, real, chunks);
    expect(ok).toEqual({ ok: true, res: { committedSize: data.length } });
    expect(await missing([real])).toEqual([]);
  });
});

describe("message caps", () => {
  it("refuses a control message over its method's cap with RESOURCE_EXHAUSTED naming the method and the cap", async () => {
    const reg = { name: "x".repeat(300 * 1024), slots: 1, toolchains: [], advertise: "", token: "", instanceId: "", sandbox: "" };
    expectRefused(await call(control.register.bind(control), reg), grpc.status.RESOURCE_EXHAUSTED, /^Register: a request message of \d+ bytes is over this method's cap of 262144 bytes$/);
    const many = Array.from({ length: 20_000 }, (_, i) => digestOf(String(i)));
    expectRefused(await call(blobs.findMissingBlobs.bind(blobs), { blobDigests: many }), grpc.status.RESOURCE_EXHAUSTED, /FindMissingBlobs: .* cap of 1048576 bytes/);
    // Within its cap, the same method answers.
    expect((await missing(many.slice(0, 4096))).length).toBe(4096);
  });

  it("refuses oversized control messages from their length prefix: 4 concurrent 40 MB Registers leave the head's peak memory within 64 MB of before", async () => {
    const peakMB = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${head.proc.pid}/status`, "utf8"))![1]) / 1024;
    const before = peakMB();
    const reg = { name: "y".repeat(40 * 1024 * 1024), slots: 1, toolchains: [], advertise: "", token: "", instanceId: "", sandbox: "" };
    const outcomes = await Promise.all([1, 2, 3, 4].map(() => call(control.register.bind(control), reg)));
    for (const o of outcomes) expectRefused(o, grpc.status.RESOURCE_EXHAUSTED, /^Register: a request message of 4194\d{4} bytes is over this method's cap of 262144 bytes$/);
    // Read whole before refusal (the late check alone), the four took the head up by ~240 MB here; decoded, by more.
    expect(peakMB() - before).toBeLessThan(64);
  });
});

describe("after all that", () => {
  it("the head still runs an ordinary build, and diagnostics over 1 MiB reach the client by digest", async () => {
    const tree = join(scratch.root, "proj");
    mkdirSync(tree, { recursive: true });
    // ~1.7 MB of warnings (each printed with its source line): more than a node sends inline in its report.
    writeFileSync(join(tree, "noisy.c"), Array.from({ length: 800 }, (_, i) => `#warning "noisy warning number ${i} ${"-".repeat(1000)}"`).join("\n") + "\nint noisy(void) { return 1; }\n");
    writeFileSync(join(tree, "main.c"), "int noisy(void);\nint main(void) { return noisy() - 1; }\n");
    writeFileSync(join(tree, "Makefile"), "app: main.o noisy.o\n\tgcc -o app main.o noisy.o\n%.o: %.c\n\tgcc -c $< -o $@\n");
    const b = await orionBuild(tree, client(), ["--head", address, "--token", TOKEN]);
    expectBuildOk(b);
    expect(b.summary.nodes).toEqual({ "edge-node": 3 });
    expect(b.stderr).toContain("noisy warning number 799 ");
    expect(b.stderr.length).toBeGreaterThan(1024 * 1024);
  });
});
