// Measures how much memory a head (or a node's blob port) takes for unauthenticated calls: rounds of concurrent
// 30 MB BatchUpdateBlobs calls with a wrong token, each on its own connection; prints VmRSS/VmHWM before and after.
// Usage: node scripts/lib/auth-flood.mjs [head|node] [ORION_CHECKOUT (default: this one, built)] [--rounds 3] [--calls 8]
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args.splice(i, 2)[1]) : dflt;
};
const rounds = opt("--rounds", 3);
const calls = opt("--calls", 8);
const target = args[0] ?? "head";
const here = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const checkout = resolve(args[1] ?? here);
const grpc = createRequire(join(here, "package.json"))("@grpc/grpc-js");
const { BlobsClient } = await import(join(checkout, "dist/src/gen/orion/v1/blobs.js"));
const bin = join(checkout, "bin/orion");
const dir = mkdtempSync(join(tmpdir(), "orion-auth-flood-"));
const children = [];
const start = (argv) => {
  const p = spawn(process.execPath, [bin, ...argv, "--log-file", join(dir, `${argv[0]}.log`)], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(p);
  return new Promise((r) => p.stdout.once("data", (d) => r({ pid: p.pid, hello: JSON.parse(String(d).split("\n")[0]) })));
};
try {
  const head = await start(["head", "--listen", "127.0.0.1:0", "--data-dir", join(dir, "head"), "--token", "t"]);
  let victim = { pid: head.pid, address: head.hello.grpc };
  if (target === "node") {
    const node = await start(["node", "--head", head.hello.grpc, "--token", "t", "--data-dir", join(dir, "node"), "--toolchain", "gcc=/usr/bin/gcc"]);
    victim = { pid: node.pid, address: node.hello.blobs };
  }
  const mem = () => {
    const s = readFileSync(`/proc/${victim.pid}/status`, "utf8");
    const mb = (k) => Math.round(Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)[1]) / 1024);
    return { rssMb: mb("VmRSS"), peakMb: mb("VmHWM") };
  };
  await new Promise((r) => setTimeout(r, 500));
  const before = mem();
  const data = Buffer.alloc(30 * 1024 * 1024, 7);
  const digest = { hash: createHash("sha256").update(data).digest("hex"), sizeBytes: data.length };
  const options = { "grpc.max_send_message_length": 64 << 20, "grpc.max_receive_message_length": 64 << 20 };
  const md = new grpc.Metadata();
  md.set("authorization", "Bearer wrong");
  const codes = new Set();
  const started = Date.now();
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      Array.from({ length: calls }, () => {
        const c = new BlobsClient(victim.address, grpc.credentials.createInsecure(), options);
        return new Promise((r) => c.batchUpdateBlobs({ requests: [{ digest, data }] }, md, (e) => (c.close(), codes.add(e?.code ?? 0), r())));
      }),
    );
  }
  console.log(JSON.stringify({ target, checkout, rounds, calls, mb: 30, before, after: mem(), ms: Date.now() - started, statusCodes: [...codes] }));
} finally {
  for (const c of children) c.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 300));
  rmSync(dir, { recursive: true, force: true });
}
