// The sandbox's cost: per spawned process (the spawn server with and without bwrap) and per fixture build (orion build, embedded, sandboxed vs --unsandboxed).
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(process.argv[2]);
const runs = Number(process.env.BENCH_RUNS ?? 200);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const fixture = process.env.BENCH_FIXTURE ?? "multi-c";
const { createSandbox } = await import(join(root, "dist/src/exec/sandbox.js"));
const { runInProcessGroup } = await import(join(root, "dist/src/exec/run-process.js"));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (ms) => `${ms.toFixed(2)} ms`;

const work = fs.mkdtempSync(join(tmpdir(), "orion-bench-sandbox-"));
try {
  const sandbox = await createSandbox({ probeDir: join(work, "sb") });
  console.log(`sandbox: ${sandbox.description}`);
  const dir = join(work, "sb", "action");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(join(dir, "small.c"), "#include <stdio.h>\nint f(int x) { return printf(\"%d\\n\", x * 2); }\n");
  const env = { PATH: "/usr/bin:/bin", LANG: "C" };
  const cases = [
    ["/bin/true", ["/bin/true"]],
    ["gcc -c small.c", ["gcc", "-O2", "-c", "small.c", "-o", "small.o"]],
  ];
  console.log(`\nper process, ${runs} runs each, interleaved (median; p10-p90):`);
  for (const [name, argv] of cases) {
    const t = { plain: [], bwrap: [] };
    for (let i = 0; i < runs; i++) {
      for (const mode of i % 2 ? ["plain", "bwrap"] : ["bwrap", "plain"]) {
        const start = performance.now();
        const w = mode === "bwrap" ? await sandbox.wrap(argv, { readOnly: [], writable: [dir], cwd: dir }) : undefined;
        const r = await runInProcessGroup(name, { argv: w?.argv ?? argv, cwd: dir, env, timeoutMs: 60_000, maxBuffer: 1 << 20 });
        await w?.done();
        t[mode].push(performance.now() - start);
        if (r.exitCode !== 0) throw new Error(`${name} (${mode}) exited ${r.exitCode}: ${r.stderr}`);
      }
    }
    const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)];
    const mp = median(t.plain), mb = median(t.bwrap);
    console.log(`  ${name.padEnd(16)} plain ${fmt(mp)} (${fmt(pct(t.plain, 0.1))}-${fmt(pct(t.plain, 0.9))})  bwrap ${fmt(mb)} (${fmt(pct(t.bwrap, 0.1))}-${fmt(pct(t.bwrap, 0.9))})  +${fmt(mb - mp)} per process`);
  }
  await sandbox.close();

  if (rounds > 0) {
    console.log(`\norion build fixtures/${fixture}, embedded, cold cache, ${rounds} interleaved rounds (wall s):`);
    const orion = join(root, "bin/orion");
    const ratios = [];
    for (let r = 0; r < rounds; r++) {
      const t = {};
      for (const mode of r % 2 ? ["unsandboxed", "sandboxed"] : ["sandboxed", "unsandboxed"]) {
        const tree = join(work, "tree");
        fs.rmSync(tree, { recursive: true, force: true });
        fs.cpSync(join(root, "fixtures", fixture), tree, { recursive: true });
        const cache = join(work, `cache-${r}-${mode}`);
        const envB = { ...process.env, ORION_CACHE_DIR: cache, XDG_CONFIG_HOME: join(work, "cfg") };
        for (const k of Object.keys(envB)) if (k.startsWith("ORION_") && k !== "ORION_CACHE_DIR") delete envB[k];
        const args = [orion, "build", tree, ...(mode === "unsandboxed" ? ["--unsandboxed"] : [])];
        const start = performance.now();
        const p = spawnSync(process.execPath, args, { env: envB, stdio: ["ignore", "ignore", "pipe"] });
        t[mode] = (performance.now() - start) / 1000;
        if (p.status !== 0) throw new Error(`orion build (${mode}) exited ${p.status}: ${p.stderr}`);
        if (mode === "sandboxed" && /unsandboxed/.test(p.stderr.toString())) throw new Error(`the sandboxed build ran unsandboxed: ${p.stderr}`);
        fs.rmSync(cache, { recursive: true, force: true });
      }
      ratios.push(t.sandboxed / t.unsandboxed);
      console.log(`  round ${r + 1}: sandboxed ${t.sandboxed.toFixed(2)}  unsandboxed ${t.unsandboxed.toFixed(2)}  ratio ${(t.sandboxed / t.unsandboxed).toFixed(3)}`);
    }
    console.log(`  median ratio ${median(ratios).toFixed(3)} (spread ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)})`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
