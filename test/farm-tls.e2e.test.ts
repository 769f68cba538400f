// End-to-end: a farm over TLS — `orion head --tls-cert/--tls-key`, a node and `orion build` trusting it with `--tls-ca`;
// a client that does not trust the certificate is refused with exit 3.
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFixture, makeReference, orionBuild, type OrionEnv, runOrion, runProgram, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";

const scratch = new Scratch("farm-tls");
const tls = scratch.dir("tls");
const cert = join(tls, "cert.pem");
const key = join(tls, "key.pem");
const client: OrionEnv = { cacheDir: join(scratch.root, "client-cache"), configHome: scratch.configHome, driver: "graph" };
let head: Daemon;
let node: Daemon;
let address = "";

beforeAll(async () => {
  // A self-signed certificate for 127.0.0.1, which the clients are told to trust.
  await execa("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--tls-cert", cert, "--tls-key", key]);
  address = head.hello.grpc as string;
  node = await startDaemon(scratch, ["node", "--head", address, "--tls-ca", cert, "--data-dir", join(scratch.root, "node")]);
}, 60_000);

afterAll(async () => {
  if (node) await stopDaemon(node);
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

describe("the farm over TLS", () => {
  it("builds gen-header as make does for a client that trusts the head's certificate", async () => {
    const tree = join(scratch.root, "gen-header");
    const ref = await makeReference("gen-header", tree, ["hello"]);
    copyFixture("gen-header", tree);
    const b = await orionBuild(tree, client, ["--head", address, "--tls-ca", cert]);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.stderr).not.toMatch(/DeprecationWarning/);
    expect(Object.keys(b.summary.nodes)).toEqual([node.hello.name]);
    expect(await runProgram(join(tree, "hello"))).toBe(ref.stdout.get("hello"));
    const status = await runOrion(["status", "--head", address, "--tls-ca", cert, "--json"], client);
    expect(status.exitCode, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).nodes).toHaveLength(1);
  });

  it("refuses a plaintext client (exit 3), and a missing certificate file is a usage error (exit 2)", async () => {
    const tree = copyFixture("gen-header", join(scratch.root, "plain"));
    const plain = await runOrion(["build", tree, "--head", address], client);
    expect(plain.exitCode).toBe(3);
    expect(plain.stderr).toMatch(/cannot reach the head/);
    const missing = await runOrion(["build", tree, "--head", address, "--tls-ca", join(tls, "nope.pem")], client);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/--tls-ca .*nope\.pem/);
  });
});
