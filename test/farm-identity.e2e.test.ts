// End-to-end: identities on a real head — a client token cannot act as a node nor a node token as a client; a forged
// result report (from a client, from a second node, with another node's name, or with undeclared outputs) is refused,
// logged with the peer, and leaves nothing in the cache, so an honest build afterwards gets correct outputs; and a flood
// of unauthenticated 30 MB calls is refused before the head reads their bodies (its memory stays bounded).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFixture, cleanEnv, ORION_BIN, orionBuild, parseEvents, type OrionEnv, REPO, runOrion, runProgram, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";
import { Status, digestOf } from "../src/core/index.js";
import { connectFarm, type FarmConnection } from "../src/grpc/index.js";
import { BlobsClient } from "../src/gen/orion/v1/blobs.js";
import type { Lease, RegisterRequest } from "../src/gen/orion/v1/scheduler.js";

const scratch = new Scratch("farm-identity");
const CLIENT = "client-secret";
const NODE = "node-secret";
let head: Daemon;
let address = "";
const conns: FarmConnection[] = [];
const daemons: Daemon[] = [];
const client = (name: string): OrionEnv => ({ cacheDir: join(scratch.root, `cache-${name}`), configHome: scratch.configHome, driver: "graph" });

const connect = (token?: string) => {
  const c = connectFarm(address, { token });
  conns.push(c);
  return c;
};
const reg = (name: string): RegisterRequest => ({ name, slots: 1, toolchains: [{ name: "any", digest: "*", path: "" }], advertise: "", token: "", instanceId: `${name}-instance`, sandbox: "" });
const codeOf = (p: Promise<unknown>) => p.then(() => Status.OK, (err: { code?: number }) => err.code);
const headLog = () => (existsSync(head.logFile) ? readFileSync(head.logFile, "utf8") : "");

/** Waits for a log line of the head matching `re` (pino writes its file asynchronously). */
async function logged(re: RegExp): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const lines = headLog().split("\n").filter((l) => re.test(l)).map((l) => JSON.parse(l) as Record<string, unknown>);
    if (lines.length || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  head = await startDaemon(scratch, [
    "head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", CLIENT, "--node-token", NODE, "--node-ttl-ms", "20000",
  ]);
  address = head.hello.grpc as string;
}, 30_000);

afterAll(async () => {
  for (const c of conns) c.close();
  for (const d of daemons) await stopDaemon(d);
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

describe("roles on the head", () => {
  it("refuses node methods to a client token and client methods to a node token (PERMISSION_DENIED), logging the peer; blobs take both", async () => {
    const asClient = connect(CLIENT);
    const asNode = connect(NODE);
    expect(await codeOf(asClient.nodeControl.register(reg("posing")))).toBe(Status.PERMISSION_DENIED);
    expect(await codeOf(asClient.nodeControl.lease({ nodeId: "posing", session: "", maxActions: 1, waitMs: 0, contextHashes: [] }))).toBe(Status.PERMISSION_DENIED);
    expect(await codeOf(asClient.nodeControl.reportResult({ nodeId: "posing", session: "", leaseId: "l", result: undefined, error: "x", depfile: "", actionError: false }))).toBe(Status.PERMISSION_DENIED);
    expect(await codeOf(asNode.builds.submitBuild({ contextRoot: digestOf(""), actions: [], noCache: false, retries: 0, jobs: 0, token: "", projectRoot: "/p", noNodeTimeoutMs: 0 }))).toBe(Status.PERMISSION_DENIED);
    expect(await codeOf(asNode.builds.getStatus())).toBe(Status.PERMISSION_DENIED);
    expect(await codeOf(connect("guess").builds.getStatus())).toBe(Status.UNAUTHENTICATED);
    expect(await asClient.blobs.findMissing([digestOf("x")])).toHaveLength(1);
    expect(await asNode.blobs.findMissing([digestOf("x")])).toHaveLength(1);
    const lines = await logged(/refused a call: authentication or role/);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]).toMatchObject({ peer: expect.stringMatching(/127\.0\.0\.1/), method: "/orion.v1.NodeControl/Register", code: "PERMISSION_DENIED" });
    // One line per peer per 10 s: the five refusals made just now are not five lines.
    expect(lines.length).toBeLessThan(5);
  });

  it("stops an `orion node` given the clients' token: exit 3, the line names --node-token", async () => {
    const r = await runOrion(["node", "--head", address, "--token", CLIENT, "--name", "misconfigured", "--data-dir", join(scratch.root, "node-misconfigured")], client("misconfigured"));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/Register .*is for nodes.*--node-token/);
  });
});

describe("result reports", () => {
  it("refuses forged reports (a client, a second node, another node's name, undeclared outputs), logs the peer, and caches nothing of them", async () => {
    const tree = copyFixture("gen-header", join(scratch.root, "forged"));
    const build = execa(process.execPath, [ORION_BIN, "build", tree, "--json", "--head", address, "--token", CLIENT], {
      cwd: REPO, env: cleanEnv({ ORION_CACHE_DIR: client("forged").cacheDir, XDG_CONFIG_HOME: scratch.configHome, ORION_DRIVER: "graph" }), extendEnv: false, reject: false, stdin: "ignore", timeout: 50_000,
    });
    const a = connect(NODE);
    const b = connect(NODE);
    const ra = await a.nodeControl.register(reg("node-a"));
    const rb = await b.nodeControl.register(reg("node-b"));
    expect(ra.session).toMatch(/^[0-9a-f]{48}$/);
    let lease: Lease | undefined;
    for (let i = 0; i < 20 && !lease; i++) {
      lease = (await a.nodeControl.lease({ nodeId: ra.nodeId, session: ra.session, maxActions: 1, waitMs: 2_000, contextHashes: [] })).leases[0];
    }
    expect(lease, "node-a got no lease").toBeDefined();
    const declared = lease!.command!.outputPaths[0]!;
    const script = Buffer.from("#!/bin/sh\necho poisoned\n");
    const scriptDigest = await b.blobs.put(script);
    const forged = (path: string) => ({
      outputFiles: [{ path, digest: scriptDigest, isExecutable: true, contents: Buffer.alloc(0) }],
      exitCode: 0, stdoutRaw: Buffer.alloc(0), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: undefined, executionMetadata: undefined,
    });
    const report = (conn: FarmConnection, nodeId: string, session: string, path = declared) =>
      codeOf(conn.nodeControl.reportResult({ nodeId, session, leaseId: lease!.leaseId, result: forged(path), error: "", depfile: "", actionError: false }));
    // A client cannot report at all; a second node cannot report another's lease, under its own name or the owner's.
    expect(await report(connect(CLIENT), ra.nodeId, ra.session)).toBe(Status.PERMISSION_DENIED);
    expect(await report(b, rb.nodeId, rb.session)).toBe(Status.PERMISSION_DENIED);
    expect(await report(b, ra.nodeId, rb.session)).toBe(Status.PERMISSION_DENIED);
    expect(await report(b, ra.nodeId, "")).toBe(Status.PERMISSION_DENIED);
    // Nor may it speak for node-a otherwise (heartbeat, lease, leave) without node-a's session.
    expect(await codeOf(b.nodeControl.leave({ nodeId: ra.nodeId, session: rb.session }))).toBe(Status.PERMISSION_DENIED);
    // The lease holder itself may report only the action's declared outputs.
    const reportOutputs = (paths: string[]) =>
      a.nodeControl.reportResult({
        nodeId: ra.nodeId, session: ra.session, leaseId: lease!.leaseId, error: "", depfile: "", actionError: false,
        result: { ...forged(declared), outputFiles: paths.map((path) => ({ path, digest: scriptDigest, isExecutable: true, contents: Buffer.alloc(0) })) },
      });
    // An absolute path is refused by the request checks at the edge; a relative one the action did not declare
    // (climbing out, or well-formed) by the lease check.
    await expect(reportOutputs(["/tmp/x"])).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, message: expect.stringMatching(/"\/tmp\/x" is absolute/) });
    // (That refusal ends the lease: the action goes back to the queue.)
    await expect(reportOutputs(["../../x", "evil.o"])).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, message: expect.stringMatching(/does not declare: "\.\.\/\.\.\/x", "evil\.o"/) });
    const refused = await logged(/refused a node call/);
    expect(refused.map((l) => l.call)).toEqual(expect.arrayContaining(["ReportResult", "Leave"]));
    expect(refused.every((l) => /127\.0\.0\.1/.test(String(l.peer)))).toBe(true);
    expect(refused.some((l) => /was not given to node node-b/.test(String(l.err)))).toBe(true);
    expect(refused.some((l) => /not this node's session/.test(String(l.err)))).toBe(true);

    // The fake nodes go; a real one finishes the build honestly.
    await a.nodeControl.leave({ nodeId: ra.nodeId, session: ra.session });
    await b.nodeControl.leave({ nodeId: rb.nodeId, session: rb.session });
    daemons.push(await startDaemon(scratch, ["node", "--head", address, "--node-token", NODE, "--name", "honest", "--slots", "2", "--data-dir", join(scratch.root, "honest")]));
    const r = await build;
    const { summary } = parseEvents(r.stdout);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(summary.failed).toBe(0);
    expect(await runProgram(join(tree, "hello"))).toMatch(/orion/);
    expect(existsSync("/tmp/x")).toBe(false);
    // Another client, a pristine copy at the same path (-g objects embed it): the compiles come from the cache, honest.
    const again = copyFixture("gen-header", tree);
    const second = await orionBuild(again, client("second"), ["--head", address, "--token", CLIENT]);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.summary.cacheHits).toBeGreaterThan(0);
    expect(readFileSync(join(again, declared.replace(/^.*\//, "")), "utf8")).not.toMatch(/poisoned/);
    expect(await runProgram(join(again, "hello"))).toMatch(/orion/);
  }, 60_000);
});

/** The head's resident memory now and at its peak, in MB (/proc/PID/status). */
function memoryMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)![1]);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

describe("authentication before the body is read", () => {
  it("refuses 2 rounds of 8 concurrent unauthenticated 30 MB calls with UNAUTHENTICATED while the head's peak memory grows < 100 MB", async () => {
    const flooded = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "flooded"), "--token", CLIENT]);
    daemons.push(flooded);
    const pid = flooded.proc.pid!;
    const target = flooded.hello.grpc as string;
    const before = memoryMb(pid);
    const data = Buffer.alloc(30 * 1024 * 1024, 7);
    const digest = digestOf(data);
    const options = { "grpc.max_send_message_length": 64 * 1024 * 1024, "grpc.max_receive_message_length": 64 * 1024 * 1024 };
    const codes: number[] = [];
    for (let round = 0; round < 2; round++) {
      // A fresh channel per call: each is its own connection, as a flood from many clients is.
      const calls = Array.from({ length: 8 }, () => {
        const c = new BlobsClient(target, grpc.credentials.createInsecure(), options);
        return new Promise<number>((resolve) =>
          c.batchUpdateBlobs({ requests: [{ digest, data, compressor: 0 }] } as never, (err) => {
            c.close();
            resolve(err?.code ?? Status.OK);
          }),
        );
      });
      codes.push(...(await Promise.all(calls)));
    }
    const after = memoryMb(pid);
    expect(codes.every((c) => c === Status.UNAUTHENTICATED), codes.join(",")).toBe(true);
    // Reading the bodies first held each 30 MB message (and its decoded copy) at once: 8 x 60 MB and more.
    expect(after.hwm - before.hwm, `VmHWM ${before.hwm.toFixed(0)} -> ${after.hwm.toFixed(0)} MB, VmRSS ${before.rss.toFixed(0)} -> ${after.rss.toFixed(0)} MB`).toBeLessThan(100);
    const lines = headLogOf(flooded).split("\n").filter((l) => l.includes("refused a call"));
    // 16 refusals from one host in well under 10 s: one line.
    expect(lines.length).toBe(1);
    // A head with one shared token says that a client can then act as a node.
    expect(headLogOf(flooded)).toMatch(/--token without --node-token/);
  }, 60_000);
});

function headLogOf(d: Daemon): string {
  return existsSync(d.logFile) ? readFileSync(d.logFile, "utf8") : "";
}
