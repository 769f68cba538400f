// End-to-end: a hostile token holder submits `gcc -wrapper ./w.sh` and an `ar` writing to /tmp straight to a real head and node; both fail as the user's error naming the option, nothing runs or is written outside; `orion cc` with a farm compiles such calls locally, as gcc would.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectFarm } from "../src/grpc/index.js";
import { hashTree, StatCache, uploadTree } from "../src/merkle/index.js";
import { ProgramDigests } from "../src/cache/program-digests.js";
import type { GraphAction } from "../src/gen/orion/v1/scheduler.js";
import type { BuildEvent } from "../src/scheduler/index.js";
import { CcStats } from "../src/cc/stats.js";
import { cleanEnv, ORION_BIN, REPO, Scratch } from "./helpers.js";
import { type Daemon, startDaemon, stopDaemon } from "./farm-helpers.js";
import { stopAgents } from "./agent-helpers.js";

const scratch = new Scratch("argv-policy");
const TOKEN = "argv-policy-token";
let head: Daemon;
let node: Daemon;
let address = "";
const proj = scratch.dir("proj");
/** The wrapper appends its cwd here each time it runs (an absolute path: a node on this machine would write it too). */
const marker = join(scratch.root, "wrapper-ran");
const outside = `/tmp/orion-argv-${randomUUID()}.a`;
const socket = join(scratch.dir("cc"), "agent.sock");

beforeAll(async () => {
  execFileSync("make", ["-s", "native/build/orion-cc"], { cwd: REPO, stdio: "inherit" });
  writeFileSync(join(proj, "a.c"), "int a(void) { return 1; }\n");
  writeFileSync(join(proj, "b.c"), "int b(void) { return 2; }\n");
  writeFileSync(join(proj, "w.sh"), `#!/bin/sh\npwd >> ${marker}\nexec "$@"\n`);
  chmodSync(join(proj, "w.sh"), 0o755);
  execFileSync("gcc", ["-c", "a.c", "-o", "a.o"], { cwd: proj });
  head = await startDaemon(scratch, ["head", "--listen", "127.0.0.1:0", "--data-dir", join(scratch.root, "head"), "--token", TOKEN]);
  address = head.hello.grpc as string;
  node = await startDaemon(scratch, ["node", "--head", address, "--token", TOKEN, "--slots", "2", "--name", "argv-node", "--data-dir", join(scratch.root, "node")]);
}, 60_000);

afterAll(async () => {
  await stopAgents(socket);
  if (node) await stopDaemon(node);
  if (head) await stopDaemon(head);
  scratch.cleanup();
});

describe("argv policy against a real head and node", () => {
  it("a hostile client's -wrapper and ar-to-/tmp fail with the option named, not retried; nothing ran or was written outside", async () => {
    const conn = connectFarm(address, { token: TOKEN });
    const statCache = new StatCache(join(scratch.dir("hostile"), "stat.db"));
    try {
      const tree = await hashTree(proj, { statCache });
      await uploadTree(conn.blobs, tree, proj);
      const programs = new ProgramDigests();
      const [gcc, ar] = await Promise.all([programs.digest("/usr/bin/gcc"), programs.digest("/usr/bin/ar")]);
      const action = (id: string, kind: string, argv: string[], inputs: string[], outputs: string[], toolchain: string): GraphAction => ({
        id, kind, label: `${kind} ${outputs[0]}`, arguments: argv, cwd: "", inputs, outputs, deps: [], host: false, toolchain, environmentVariables: [], shell: argv.join(" "),
      });
      const actions = [
        action("wrapper", "compile", ["/usr/bin/gcc", "-O2", "-wrapper", "./w.sh", "-c", "a.c", "-o", "a.o"], ["a.c"], ["a.o"], gcc),
        action("ar-out", "archive", ["/usr/bin/ar", "rcs", outside, "a.o"], ["a.o"], ["lib.a"], ar),
        action("honest", "compile", ["/usr/bin/gcc", "-O2", "-c", "b.c", "-o", "b.o"], ["b.c"], ["b.o"], gcc),
      ];
      const build = async (actions: GraphAction[]): Promise<BuildEvent[]> => {
        const { buildId } = await conn.builds.submitBuild(
          { contextRoot: tree.root, actions, noCache: true, retries: 2, jobs: 0, token: "", projectRoot: proj, noNodeTimeoutMs: 0 },
          { root: tree.root },
        );
        const events: BuildEvent[] = [];
        await new Promise<void>((resolve, reject) => {
          const detach = conn.builds.watchBuild(buildId, 0, (e) => {
            events.push(e);
            if (e.type === "summary") {
              detach();
              resolve();
            }
          }, reject);
        });
        return events;
      };
      const events = await build(actions.slice(0, 2));
      const last = (id: string) => events.filter((e) => e.type === "action" && e.id === id).at(-1) as Extract<BuildEvent, { type: "action" }>;
      expect(last("wrapper")).toMatchObject({ state: "failed", error: expect.stringContaining("refused -wrapper") });
      expect(last("ar-out")).toMatchObject({ state: "failed", error: expect.stringContaining(`refused archive ${outside}`) });
      for (const id of ["wrapper", "ar-out"]) {
        expect(last(id).infra ?? false).toBe(false);
        expect(events.filter((e) => e.type === "action" && e.id === id && (e.state === "retry" || e.state === "started"))).toEqual([]);
      }
      expect(events.at(-1)).toMatchObject({ type: "summary", actions: 2, executed: 0, failed: 2, attempts: 0 });
      // The node is still there for honest work.
      const honest = await build(actions.slice(2));
      expect(honest.at(-1)).toMatchObject({ type: "summary", actions: 1, executed: 1, failed: 0 });
      expect(existsSync(marker)).toBe(false);
      expect(existsSync(outside)).toBe(false);
    } finally {
      statCache.close();
      conn.close();
    }
  });

  it("orion build (embedded): a Makefile's -wrapper compile fails with exit 1 and one line naming the option and the output", async () => {
    const tree = scratch.dir("build-tree");
    writeFileSync(join(tree, "a.c"), "int a(void) { return 1; }\n");
    writeFileSync(join(tree, "w.sh"), `#!/bin/sh\npwd >> ${marker}\nexec "$@"\n`);
    chmodSync(join(tree, "w.sh"), 0o755);
    writeFileSync(join(tree, "Makefile"), "a.o: a.c\n\tgcc -O2 -wrapper ./w.sh -c a.c -o a.o\n");
    const env = cleanEnv({ ORION_CACHE_DIR: scratch.dir("build-cache"), XDG_CONFIG_HOME: scratch.configHome, ORION_DRIVER: "graph" });
    const r = await execa(process.execPath, [ORION_BIN, "build", tree], { env, extendEnv: false, reject: false, stdin: "ignore", all: true });
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toContain("FAILED: CC a.o (a.o: refused -wrapper: ");
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(tree, "a.o"))).toBe(false);
  });

  it("orion build on the farm: CMake-style absolute paths inside the project build, and a fresh tree's second build is all cache hits", async () => {
    const tree = scratch.dir("cmake-tree");
    mkdirSync(join(tree, "inc"));
    mkdirSync(join(tree, "src"));
    mkdirSync(join(tree, "build"));
    writeFileSync(join(tree, "build", "README"), "objects\n"); // an empty folder trips SubmitBuild on a farm head today (the empty Directory blob is "missing")
    writeFileSync(join(tree, "inc", "k.h"), "#define K 7\n");
    writeFileSync(join(tree, "src", "x.c"), '#include "k.h"\nint x(void) { return K; }\n');
    writeFileSync(join(tree, "src", "m.c"), "int x(void);\nint main(void) { return x() - 7; }\n");
    writeFileSync(
      join(tree, "Makefile"),
      [
        "build/app: build/x.o build/m.o",
        "\tgcc -o $(CURDIR)/build/app $(CURDIR)/build/x.o $(CURDIR)/build/m.o",
        "build/%.o: src/%.c inc/k.h",
        "\tgcc -O2 -I$(CURDIR)/inc -o build/$*.o -c $(CURDIR)/src/$*.c",
        "",
      ].join("\n"),
    );
    const env = cleanEnv({ ORION_CACHE_DIR: scratch.dir("cmake-cache"), XDG_CONFIG_HOME: scratch.configHome });
    const build = async () => {
      const r = await execa(process.execPath, [ORION_BIN, "build", "--head", address, "--token", TOKEN, "--json", tree], { env, extendEnv: false, reject: false, stdin: "ignore" });
      expect(r.exitCode, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
    };
    expect(await build()).toMatchObject({ type: "summary", actions: 3, executed: 3, failed: 0 });
    expect((await execa(join(tree, "build", "app"), { reject: false })).exitCode).toBe(0);
    for (const f of ["x.o", "m.o", "app"]) rmSync(join(tree, "build", f));
    expect(await build()).toMatchObject({ type: "summary", actions: 3, cacheHits: 3, executed: 0 });
    expect((await execa(join(tree, "build", "app"), { reject: false })).exitCode).toBe(0);
  });

  it("orion cc with the farm configured compiles such calls here, as gcc would: the wrapper runs locally, nothing reaches the farm", async () => {
    const cacheDir = join(scratch.dir("cc"), "cache");
    mkdirSync(cacheDir, { recursive: true }); // the counters of a first call that is not cached need the folder
    const env = cleanEnv({ ORION_AGENT_SOCKET: socket, ORION_CACHE_DIR: cacheDir, XDG_CONFIG_HOME: scratch.configHome, ORION_HEAD: address, ORION_TOKEN: TOKEN, ORION_NO_FALLBACK: "1" });
    const cc = (args: string[]) => execa(ORION_BIN, ["cc", "gcc", ...args], { cwd: proj, env, extendEnv: false, reject: false, stdin: "ignore" });
    const wrapped = await cc(["-O2", "-wrapper", "./w.sh", "-c", "a.c", "-o", "a-wrapped.o"]);
    expect(wrapped.exitCode, wrapped.stderr).toBe(0);
    expect(existsSync(join(proj, "a-wrapped.o"))).toBe(true);
    // gcc ran each of its programs (cc1, as) through the wrapper, here, in the project.
    expect(readFileSync(marker, "utf8").trim().split("\n").every((l) => l === proj)).toBe(true);

    mkdirSync(join(scratch.root, "vendor-include"), { recursive: true });
    const vendor = await cc([`-I${join(scratch.root, "vendor-include")}`, "-c", "b.c", "-o", "b-vendor.o"]);
    expect(vendor.exitCode, vendor.stderr).toBe(0);
    expect(vendor.stderr).toBe("");
    expect(existsSync(join(proj, "b-vendor.o"))).toBe(true);
    expect(CcStats.readCounts(cacheDir)).toMatchObject({ uncacheable: 1, misses: 1, localCompiles: 1, remoteCompiles: 0, fallbacks: 0 });
  });
});
