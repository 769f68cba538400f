// End-to-end: a farm with mutual TLS — `orion head --tls-client-ca`, nodes that present their own certificates
// to the head and serve their blobs to each other over TLS asking the same of their peers, and clients with
// and without a certificate signed by the farm's CA. Toolchains steer the work (one node has only gcc, the
// other only ar) so that the nodes must fetch objects from each other: peer-to-peer over mutual TLS too.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, copyFixture, ORION_BIN, orionBuild, type OrionEnv, REPO, runOrion, runProgram, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";
import { stopAgents } from "./agent-helpers.js";
import { CcStats } from "../src/cc/stats.js";
import { Status, digestOf } from "../src/core/index.js";
import { connectFarm } from "../src/grpc/index.js";

const scratch = new Scratch("farm-mtls");
const pki = scratch.dir("pki");
const pem = (name: string) => join(pki, `${name}.pem`);
const key = (name: string) => join(pki, `${name}.key`);
const client: OrionEnv = { cacheDir: join(scratch.root, "client-cache"), configHome: scratch.configHome, driver: "graph" };
let head: Daemon;
const nodes: Daemon[] = [];
let address = "";

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

let serial = 0;

/** A certificate for 127.0.0.1 signed by `ca` (or self-signed when `ca` is absent), with a subject OU when given (a farm role). */
async function certificate(name: string, ca?: string, ou?: string): Promise<void> {
  if (!ca) {
    await execa("openssl", ["req", "-x509", ...EC, "-keyout", key(name), "-out", pem(name), "-days", "2", "-subj", `/CN=${name}`, "-addext", "subjectAltName=IP:127.0.0.1"]);
    return;
  }
  const ext = join(pki, `${name}.ext`);
  writeFileSync(ext, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  await execa("openssl", ["req", ...EC, "-keyout", key(name), "-out", join(pki, `${name}.csr`), "-subj", `/CN=${name}${ou ? `/OU=${ou}` : ""}`]);
  await execa("openssl", ["x509", "-req", "-in", join(pki, `${name}.csr`), "-CA", pem(ca), "-CAkey", key(ca), "-set_serial", String(1000 + ++serial), "-out", pem(name), "-days", "2", "-extfile", ext]);
}

beforeAll(async () => {
  await certificate("ca");
  await certificate("rogue"); // self-signed: not the farm's CA
  await Promise.all(["head", "node-gcc", "node-ar", "client"].map((n) => certificate(n, "ca")));
  await Promise.all([certificate("role-client", "ca", "orion-client"), certificate("role-node", "ca", "orion-node")]);
  head = await startDaemon(scratch, [
    "head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"),
    "--tls-cert", pem("head"), "--tls-key", key("head"), "--tls-client-ca", pem("ca"),
  ]);
  address = head.hello.grpc as string;
  const node = (name: string, tool: string) =>
    startDaemon(scratch, [
      "node", "--head", address, "--name", name, "--slots", "1", "--data-dir", join(scratch.root, name), "--toolchain", tool,
      "--tls-ca", pem("ca"), "--tls-cert", pem(name), "--tls-key", key(name), "--tls-client-ca", pem("ca"),
    ]);
  nodes.push(...(await Promise.all([node("node-gcc", "gcc=/usr/bin/gcc"), node("node-ar", "ar=/usr/bin/ar")])));
}, 60_000);

const agentSockets: string[] = [];

afterAll(async () => {
  for (const s of agentSockets) await stopAgents(s);
  await Promise.all(nodes.map((n) => stopDaemon(n)));
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

const withCert = (name: string) => ["--tls-ca", pem("ca"), "--tls-cert", pem(name), "--tls-key", key(name)];

describe("the farm over mutual TLS", () => {
  it("builds multi-c for a client with a certificate from the farm's CA; the nodes trade objects peer to peer over TLS", async () => {
    const tree = copyFixture("multi-c", join(scratch.root, "multi-c"));
    const b = await orionBuild(tree, client, ["--head", address, ...withCert("client")]);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.summary.nodes).toEqual({ "node-gcc": 30, "node-ar": 2 });
    expect(await runProgram(join(tree, "app1/app1"))).toBeTruthy();
    const log = () => (existsSync(nodes[1]!.logFile) ? readFileSync(nodes[1]!.logFile, "utf8") : "");
    const deadline = Date.now() + 5_000;
    while (!/inputs fetched from peers/.test(log()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const fetched = log().split("\n").filter((l) => l.includes("inputs fetched from peers")).map((l) => JSON.parse(l) as { blobs: number; fromHead: number });
    expect(fetched.reduce((n, l) => n + l.blobs, 0)).toBe(24);
    expect(fetched.every((l) => l.fromHead === 0)).toBe(true);
    const status = await runOrion(["status", "--head", address, ...withCert("client"), "--json"], client);
    expect(status.exitCode, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).nodes).toHaveLength(2);
  });

  it("refuses a client without a certificate, or with one the farm's CA did not sign: exit 3, one line", async () => {
    const tree = copyFixture("gen-header", join(scratch.root, "refused"));
    const none = await runOrion(["build", tree, "--head", address, "--tls-ca", pem("ca")], client);
    expect(none.exitCode).toBe(3);
    expect(none.stderr).toMatch(/cannot reach the head .*client certificate/);
    const rogue = await runOrion(["status", "--head", address, ...withCert("rogue")], client);
    expect(rogue.exitCode).toBe(3);
    expect(rogue.stderr).toMatch(/cannot reach the head/);
    // A node's blob server asks peers for a certificate too: without one the handshake fails; with one the
    // connection is made (and the call, which a blob server does not serve, is refused as unimplemented).
    const blobs = nodes[0]!.hello.blobs as string;
    const bare = await runOrion(["status", "--head", blobs, "--tls-ca", pem("ca")], client);
    expect(bare.exitCode).toBe(3);
    expect(bare.stderr).toMatch(/cannot reach the head .*client certificate/);
    const peer = await runOrion(["status", "--head", blobs, ...withCert("client")], client);
    expect(peer.stderr).not.toMatch(/cannot reach/);
    expect(peer.stderr).toMatch(/does not implement the method/);
  });

  it("orion cc sends its misses over mutual TLS with ORION_TLS_CERT/ORION_TLS_KEY; without them (and no fallback) the compile fails, exit 3", async () => {
    await execa("make", ["-s", "native/build/orion-cc"], { cwd: REPO });
    const run = async (name: string, extra: Record<string, string>) => {
      const dir = scratch.dir(`cc-${name}`);
      const socket = join(dir, "agent.sock");
      agentSockets.push(socket);
      const env = cleanEnv({
        ORION_AGENT_SOCKET: socket, ORION_CACHE_DIR: join(dir, "cache"), XDG_CONFIG_HOME: scratch.configHome, ORION_DRIVER: "graph",
        ORION_HEAD: address, ORION_TLS_CA: pem("ca"), ORION_NO_FALLBACK: "1", ...extra,
      });
      const tree = copyFixture("multi-c", join(dir, "tree"));
      const r = await execa("make", ["-C", tree, "-j2", `CC=${ORION_BIN} cc gcc`], { env, extendEnv: false, reject: false, stdin: "ignore", timeout: 120_000 });
      return { r, counts: CcStats.readCounts(join(dir, "cache")) };
    };
    const ok = await run("cert", { ORION_TLS_CERT: pem("client"), ORION_TLS_KEY: key("client") });
    expect(ok.r.exitCode, ok.r.stderr).toBe(0);
    expect(ok.counts.remoteCompiles).toBe(28);
    const refused = await run("bare", {});
    expect(refused.r.exitCode).not.toBe(0);
    expect(refused.r.stderr).toMatch(/orion cc: .*client certificate/);
  }, 180_000);

  it("reads a caller's role from its certificate's OU: orion-client cannot act as a node, orion-node cannot build, a node's blob server refuses a client", async () => {
    const tls = (name: string) => ({ tlsCa: readFileSync(pem("ca")), tlsCert: readFileSync(pem(name)), tlsKey: readFileSync(key(name)) });
    const code = (p: Promise<unknown>) => p.then(() => Status.OK, (err: { code?: number }) => err.code);
    const blobs = nodes[0]!.hello.blobs as string;
    const conns = [connectFarm(address, tls("role-client")), connectFarm(address, tls("role-node")), connectFarm(blobs, tls("role-client")), connectFarm(blobs, tls("role-node"))];
    const [asClient, asNode, peerAsClient, peerAsNode] = conns as [ReturnType<typeof connectFarm>, ReturnType<typeof connectFarm>, ReturnType<typeof connectFarm>, ReturnType<typeof connectFarm>];
    try {
      const reg = { name: "posing", slots: 1, toolchains: [], advertise: "", token: "", instanceId: "x", sandbox: "" };
      expect(await code(asClient.nodeControl.register(reg))).toBe(Status.PERMISSION_DENIED);
      expect((await asClient.builds.getStatus()).nodes).toHaveLength(2);
      expect(await code(asNode.builds.getStatus())).toBe(Status.PERMISSION_DENIED);
      expect(await asNode.blobs.findMissing([digestOf("x")])).toHaveLength(1);
      expect(await code(peerAsClient.blobs.findMissing([digestOf("x")]))).toBe(Status.PERMISSION_DENIED);
      expect(await peerAsNode.blobs.findMissing([digestOf("x")])).toHaveLength(1);
    } finally {
      for (const c of conns) c.close();
    }
  });

  it("says which TLS flag is missing with exit 2", async () => {
    const tree = copyFixture("gen-header", join(scratch.root, "usage"));
    const noKey = await runOrion(["build", tree, "--head", address, "--tls-ca", pem("ca"), "--tls-cert", pem("client")], client);
    expect(noKey.exitCode).toBe(2);
    expect(noKey.stderr).toMatch(/--tls-cert and --tls-key go together/);
    const noCa = await runOrion(["status", "--head", address, "--tls-cert", pem("client"), "--tls-key", key("client")], client);
    expect(noCa.exitCode).toBe(2);
    expect(noCa.stderr).toMatch(/--tls-cert needs --tls-ca/);
    const headNoCert = await runOrion(["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head2"), "--tls-client-ca", pem("ca")], client);
    expect(headNoCert.exitCode).toBe(2);
    expect(headNoCert.stderr).toMatch(/--tls-client-ca needs --tls-cert/);
  });
});
