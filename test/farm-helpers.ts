// Helpers for the farm's end-to-end tests: `orion head` / `orion node` as real daemons (child processes of bin/orion).
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { createSandbox } from "../src/exec/sandbox.js";
import { cleanEnv, ORION_BIN, type Scratch } from "./helpers.js";

export interface Daemon {
  proc: ResultPromise;
  /** The first stdout line, parsed. */
  hello: Record<string, unknown>;
  logFile: string;
}

let seq = 0;

/** Starts `orion ARGS` as a daemon (its state under the scratch dir, debug logs in a file) and waits for its first stdout line (a JSON object). */
export async function startDaemon(scratch: Scratch, args: string[]): Promise<Daemon> {
  const logFile = join(scratch.root, `daemon-${++seq}.log`);
  const proc = execa(process.execPath, [ORION_BIN, ...args, "--log-file", logFile], {
    env: cleanEnv({ XDG_STATE_HOME: scratch.dir("state"), XDG_CONFIG_HOME: scratch.configHome, ORION_LOG_LEVEL: "debug" }),
    extendEnv: false,
    reject: false,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    buffer: false,
  });
  const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let text = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`orion ${args.join(" ")}: no first line after 20 s\n${err}`)), 20_000);
    proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    proc.stdout!.on("data", (c: Buffer) => {
      text += c.toString();
      const nl = text.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(text.slice(0, nl)) as Record<string, unknown>);
      }
    });
    void proc.then((r) => {
      clearTimeout(timer);
      reject(new Error(`orion ${args.join(" ")} exited ${r.exitCode} before its first line\n${err}`));
    });
  });
  return { proc, hello, logFile };
}

/**
 * A g++ that takes half a second per compile, and one node per name offering only it (1 slot each), so a C++ build
 * with CXX=that g++ runs on these nodes alone — long enough to stop or kill one mid-build.
 */
export async function startSlowGxxNodes(scratch: Scratch, address: string, token: string, names: string[]): Promise<{ gxx: string; nodes: Daemon[] }> {
  const gxx = join(scratch.dir("slow-gxx"), "g++");
  writeFileSync(gxx, '#!/bin/sh\ncase " $* " in *" -c "*) sleep 0.5 ;; esac\nexec /usr/bin/g++ "$@"\n');
  chmodSync(gxx, 0o755);
  const nodes = await Promise.all(
    names.map((name) => startDaemon(scratch, ["node", "--head", address, "--token", token, "--name", name, "--slots", "1", "--data-dir", join(scratch.root, name), "--toolchain", `g++=${gxx}`])),
  );
  return { gxx, nodes };
}

/**
 * `orion build TREE --json` on the farm (graph driver) with CXX=gxx; `onStarted(node)` hears each node an action
 * started on, as the events arrive. Resolves with the exit code, the parsed events and stderr.
 */
export async function watchedFarmBuild(
  scratch: Scratch,
  o: { tree: string; address: string; token: string; gxx: string; cacheDir: string },
  onStarted: (node: string) => void,
): Promise<{ exitCode: number | undefined; events: Record<string, unknown>[]; stderr: string }> {
  const proc = execa(process.execPath, [ORION_BIN, "build", o.tree, "--json", "--head", o.address, "--token", o.token, "--", `CXX=${o.gxx}`], {
    env: cleanEnv({ ORION_CACHE_DIR: o.cacheDir, XDG_CONFIG_HOME: scratch.configHome, ORION_DRIVER: "graph" }),
    extendEnv: false,
    reject: false,
    stdin: "ignore",
    buffer: { stdout: true, stderr: true },
  });
  let pending = "";
  proc.stdout!.on("data", (c: Buffer) => {
    pending += c.toString();
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const l of lines) {
      const e = l ? (JSON.parse(l) as Record<string, unknown>) : undefined;
      if (e?.type === "action" && e.state === "started") onStarted(String(e.node));
    }
  });
  const r = await proc;
  const events = String(r.stdout).split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { exitCode: r.exitCode, events, stderr: String(r.stderr) };
}

/** SIGTERM, then the exit code. */
export async function stopDaemon(d: Daemon): Promise<number | undefined> {
  d.proc.kill("SIGTERM");
  const r = await d.proc;
  return r.exitCode;
}

/**
 * Whether bubblewrap can run actions here: `unavailable` is why not ("" when it can), and `perActionLimit` whether a
 * pids cgroup can be made per action (else a fork loop is bounded only per user). Tests skip with `unavailable`.
 */
export async function probeSandbox(scratch: Scratch, what: string): Promise<{ unavailable: string; perActionLimit: boolean }> {
  try {
    const s = await createSandbox({ probeDir: scratch.dir("probe") });
    const perActionLimit = s.description.includes("pids cgroup");
    await s.close();
    return { unavailable: "", perActionLimit };
  } catch (err) {
    const unavailable = (err as Error).message;
    console.warn(`${what} skipped: ${unavailable}`);
    return { unavailable, perActionLimit: false };
  }
}
