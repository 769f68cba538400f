// The preload tracer (native/trace/orion-trace.c) on real processes: shell lines, a compiler, programs that clear their
// environment or search PATH themselves, a C program calling the entry points glibc does not route through each
// other; and, where strace is installed, the same inputs inside the project as strace's trace gives.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { findProgram } from "../core/programs.js";
import { MAKE_DEBUG_FLAG, parsePreloadTrace, preloadEnv } from "./preload-trace.js";
import { goLookalike } from "./test-helpers.js";
import { type Access, parseTrace, TRACED_SYSCALLS, type TraceResult } from "./trace.js";

const repo = path.resolve(import.meta.dirname, "../..");
const library = path.join(repo, "native/build/liborion-trace.so");
const strace = findProgram("strace", process.cwd());

beforeAll(() => {
  execFileSync("make", ["--no-print-directory", "-s", "native/build/liborion-trace.so"], { cwd: repo, stdio: "inherit" });
});

describe("the preload tracer", () => {
  let dir: string;
  let root: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "orion-preload-"));
    root = path.join(dir, "p");
    mkdirSync(root);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (rel: string, text: string, mode?: number) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text, { mode });
  };

  /** Runs argv in the project under the tracer; the trace parsed. */
  const traced = (argv: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH }): TraceResult => {
    const traceFile = path.join(dir, "trace");
    writeFileSync(traceFile, "");
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd: root, env: { ...env, LD_PRELOAD: library, ORION_TRACE_FILE: traceFile }, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    return parsePreloadTrace(readFileSync(traceFile, "utf8"));
  };
  const sh = (line: string, env?: NodeJS.ProcessEnv) => traced(["/bin/sh", "-c", line], env);
  /** The accesses inside the project, as "op rel[ fresh]". */
  const inside = (t: TraceResult) => t.accesses.filter((a) => a.path.startsWith(root + "/")).map((a) => show(a, root));

  it("a redirect and a cat: the input read, the output written fresh", () => {
    write("a", "A\n");
    const t = sh("cat a > b");
    expect(t.untraceable).toBeUndefined();
    expect(inside(t)).toEqual(["write b fresh", "read a"]);
  });

  it("mkdir -p and mv: the directory made, the file read, removed and written fresh at its new name", () => {
    write("x", "X\n");
    const t = sh("mkdir -p d && mv x d/y");
    expect(inside(t)).toEqual(expect.arrayContaining(["make d", "read x", "remove x", "write d/y fresh"]));
    expect(inside(t).indexOf("remove x")).toBeLessThan(inside(t).indexOf("write d/y fresh"));
  });

  it("a file renamed over, truncated or removed: what it held before is in the trace (the start content)", () => {
    write("dummy.Po", "# dummy\n");
    write("trunc", "old\n");
    write("gone", "bye\n", 0o755);
    write("new.Tpo", "x.o: x.c\n");
    const t = sh("mv -f new.Tpo dummy.Po && echo new > trunc && rm -f gone");
    const start = new Map([...(t.startContent ?? [])].map(([abs, e]) => [path.relative(root, abs), e]));
    const sha = (text: string) => createHash("sha256").update(text).digest("hex");
    expect(start.get("dummy.Po")).toEqual({ digest: { hash: sha("# dummy\n"), sizeBytes: 8 }, executable: false });
    expect(start.get("trunc")).toEqual({ digest: { hash: sha("old\n"), sizeBytes: 4 }, executable: false });
    expect(start.get("gone")).toEqual({ digest: { hash: sha("bye\n"), sizeBytes: 4 }, executable: true });
    // A rename's source is read and moved, not replaced: the reader hashes it where it needs it.
    expect(start.has("new.Tpo")).toBe(false);
  });

  it("with ORION_TRACE_SINCE, a file changed after the run started has no start content recorded", async () => {
    write("old", "kept\n");
    const since = statSync(path.join(root, "old"), { bigint: true }).ctimeNs;
    await new Promise((r) => setTimeout(r, 20));
    write("late", "made after the start\n");
    const t = sh("rm late && rm old", { PATH: process.env.PATH, ORION_TRACE_SINCE: String(since) });
    expect([...(t.startContent?.keys() ?? [])].map((abs) => path.relative(root, abs))).toEqual(["old"]);
  });

  it("GNU make with --debug=v: the files it compared, newer or not, in the trace; none of its debug output printed", () => {
    write("Makefile", "all: out\nout: older newer\n\t@echo building $@ ; cp older out\nolder newer:\n");
    write("older", "o\n");
    write("out", "x\n");
    write("newer", "n\n");
    const at = (rel: string, s: number) => utimesSync(path.join(root, rel), s, s);
    at("older", 1_700_000_000);
    at("out", 1_700_000_010);
    at("newer", 1_700_000_020);
    const traceFile = path.join(dir, "trace");
    writeFileSync(traceFile, "");
    const env = preloadEnv({ PATH: process.env.PATH, LANG: "C" }, library, traceFile, undefined, true);
    const r = spawnSync("make", [MAKE_DEBUG_FLAG, "-C", "."], { cwd: root, env, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    // make's own messages and the recipe's output only.
    expect(r.stdout).toBe(`make: Entering directory '${root}'\nbuilding out\nmake: Leaving directory '${root}'\n`);
    const t = parsePreloadTrace(readFileSync(traceFile, "utf8"));
    expect(t.untraceable).toBeUndefined();
    expect(t.make?.complete).toBe(true);
    expect(t.make?.compared).toEqual([
      [path.join(root, "older"), path.join(root, "out"), false],
      [path.join(root, "newer"), path.join(root, "out"), true],
    ]);
    // Without the variable the tracer leaves make's output alone, and a make that did not speak leaves it incomplete.
    writeFileSync(traceFile, "");
    at("out", 1_700_000_010);
    const plain = spawnSync("make", ["-s"], { cwd: root, env: { PATH: process.env.PATH, LD_PRELOAD: library, ORION_TRACE_FILE: traceFile }, encoding: "utf8" });
    expect(plain.stdout).toBe("building out\n");
    expect(parsePreloadTrace(readFileSync(traceFile, "utf8")).make).toEqual({ compared: [], complete: false });
    // A make a recipe asks for its version prints it (the banner is not debug output there), and counts as unseen.
    write("Makefile", "all:\n\t@$(MAKE) --version | head -1\n");
    writeFileSync(traceFile, "");
    const version = spawnSync("make", [MAKE_DEBUG_FLAG, "-s"], { cwd: root, env, encoding: "utf8" });
    expect(version.stdout).toMatch(/^GNU Make \d/);
    expect(parsePreloadTrace(readFileSync(traceFile, "utf8")).make?.complete).toBe(false);
  });

  it("a probe for a missing file is an absent input", () => {
    expect(inside(sh("test -f nope || true"))).toEqual(["absent nope"]);
  });

  it("cc -c: the source and every header it read, system ones too; the object written", () => {
    write("m.c", '#include <stdio.h>\n#include "inc/h.h"\nint main(void) { return X; }\n');
    write("inc/h.h", "#define X 0\n");
    const t = sh("cc -c m.c -o m.o");
    expect(t.untraceable).toBeUndefined();
    expect(inside(t)).toEqual(expect.arrayContaining(["read m.c", "read inc/h.h", "write m.o fresh"]));
    expect(t.accesses).toContainEqual({ op: "read", path: "/usr/include/stdio.h" });
  });

  it("env -i does not take the line out of the trace", () => {
    write("a", "A\n");
    expect(inside(sh("env -i /bin/sh -c 'cat a > /dev/null'"))).toEqual(["read a"]);
  });

  it("a script found along PATH: each directory's miss is absent, the script read; execvp's search the same", () => {
    write("bin/gen", "#!/bin/sh\necho gen\n", 0o755);
    const env = { PATH: `${root}/nobin:${root}/bin:${process.env.PATH}` };
    expect(inside(sh("gen > /dev/null", env))).toEqual(expect.arrayContaining(["absent nobin/gen", "read bin/gen"]));
    // env(1) runs its program through execvp: the library does the search itself to record it.
    const viaEnv = inside(sh("env gen > /dev/null", env));
    expect(viaEnv.slice(viaEnv.indexOf("absent nobin/gen"))).toEqual(expect.arrayContaining(["absent nobin/gen", "read bin/gen"]));
  });

  it("a program the preload does not reach cannot be traced: the trace says so", () => {
    expect(sh("/sbin/ldconfig -p > /dev/null").untraceable).toBe("a static program: /sbin/ldconfig");
    write("go-like", "", 0o755);
    writeFileSync(path.join(root, "go-like"), goLookalike(readFileSync("/bin/true")));
    expect(sh("./go-like").untraceable).toBe(`a Go program: ${root}/./go-like`);
  });

  it("glibc's other entry points: fopen, glob, posix_spawnp with an empty environment and an open for its child, system after clearenv, statx through syscall(), temporary names, dlopen, a closed or reused trace fd", () => {
    write("in/a.def", "A\n");
    write("in/b.def", "B\n");
    write("a", "A\n");
    write("probe.c", PROBE_C);
    write("plug.c", "int plug(void) { return 1; }\n");
    execFileSync("cc", ["-O0", "-o", path.join(dir, "probe"), "probe.c", "-ldl"], { cwd: root });
    execFileSync("cc", ["-shared", "-fPIC", "-o", "plug.so", "plug.c"], { cwd: root });
    const t = traced([path.join(dir, "probe")]);
    expect(t.untraceable).toBeUndefined();
    const seen = inside(t);
    expect(seen).toEqual(
      expect.arrayContaining([
        "write out.txt fresh",
        "list in",
        "read a",
        "read spawned",
        "write spawn-out fresh",
        "read plug.so",
        "read via-system",
        "read statx-me",
        "read renamed",
        "remove renamed",
        "write renamed2 fresh",
        "remove link",
        "make link",
        "read after-closefrom",
        "read after-dup2",
      ]),
    );
    expect(seen.some((s) => /^make tmpd-\w+$/.test(s))).toBe(true);
    expect(seen.some((s) => /^write tmpf-\w+ fresh$/.test(s))).toBe(true);
    expect(readFileSync(path.join(root, "junk"), "utf8")).toBe("");
  });

  it.skipIf(!strace)("gives the same inputs inside the project as strace on a configure-like script", () => {
    write("configure", CONFIGURE, 0o755);
    write("config.h.in", "#define ANSWER @X@\n");
    write("Makefile.in", "all:\n");
    write("src/main.c", "int main(void) { return 0; }\n");
    const preload = sh("./configure");
    const straceLog = path.join(dir, "strace.log");
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root);
    write("configure", CONFIGURE, 0o755);
    write("config.h.in", "#define ANSWER @X@\n");
    write("Makefile.in", "all:\n");
    write("src/main.c", "int main(void) { return 0; }\n");
    execFileSync(strace!, ["-f", "--seccomp-bpf", "-qq", "-e", "signal=none", "-s", "65535", "-e", `trace=${TRACED_SYSCALLS.join(",")}`, "-o", straceLog, "--", "/bin/sh", "-c", "./configure"], { cwd: root, env: { PATH: process.env.PATH } });
    const byStrace = parseTrace(readFileSync(straceLog, "utf8"), root);
    expect(preload.untraceable).toBeUndefined();
    expect(byStrace.untraceable).toBeUndefined();
    // conftest files get new temporary names in each run: compared by the project's own paths only.
    const set = (t: TraceResult) => [...new Set(inside(t).filter((s) => !/\/tmp\//.test(s)))].sort();
    expect(set(preload)).toEqual(set(byStrace));
  });
});

function show(a: Access, root: string): string {
  return `${a.op} ${path.relative(root, a.path)}${a.op === "write" && a.fresh ? " fresh" : ""}`;
}

/** A configure script in small: probes for headers by compiling, a cache it may source, files made from templates. */
const CONFIGURE = `#!/bin/sh
set -e
test -f config.cache && . ./config.cache
for h in stdio nothere; do
  printf '#include <%s.h>\\n' $h > conftest.c
  if cc -c conftest.c -o conftest.o 2>/dev/null; then echo "#define HAVE_$h 1"; fi
done > confdefs.h
rm -f conftest.c conftest.o
sed 's/@X@/42/' config.h.in > config.h
mkdir -p build && cp Makefile.in build/Makefile
for f in src/*.c; do test -r "$f"; done
command -v nosuchtool > /dev/null || echo "no nosuchtool" >> config.log
`;

/** Calls the entry points a shell line seldom reaches. */
const PROBE_C = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <glob.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
int main(void) {
  FILE *f = fopen("out.txt", "w"); fputs("x", f); fclose(f);
  glob_t g; glob("in/*.def", 0, NULL, &g); globfree(&g);
  f = fopen("a", "r"); fclose(f);
  fclose(fopen("spawned", "w"));
  fclose(fopen("via-system", "w"));
  fclose(fopen("statx-me", "w"));
  fclose(fopen("renamed", "w"));
  char *argv[] = {"cat", "spawned", NULL}, *none[] = {NULL};
  pid_t pid;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "spawn-out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (posix_spawnp(&pid, "cat", &fa, NULL, argv, none) != 0) return 10;
  waitpid(pid, NULL, 0);
  if (!dlopen("./plug.so", RTLD_NOW)) return 18;
  clearenv();
  setenv("PATH", "/usr/bin:/bin", 1);
  if (system("cat via-system > /dev/null") != 0) return 11;
  struct statx sx;
  if (syscall(SYS_statx, AT_FDCWD, "statx-me", 0, STATX_SIZE, &sx) != 0) return 12;
  if (renameat2(AT_FDCWD, "renamed", AT_FDCWD, "renamed2", RENAME_NOREPLACE) != 0) return 13;
  if (symlink("a", "link") != 0) return 14;
  char d[] = "tmpd-XXXXXX", t[] = "tmpf-XXXXXX";
  if (!mkdtemp(d) || mkstemp(t) < 0) return 15;
  fclose(fopen("after-closefrom", "w"));
  fclose(fopen("after-dup2", "w"));
  closefrom(3);
  struct stat st;
  if (stat("after-closefrom", &st) != 0) return 16;
  int junk = open("junk", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char link[64], target[4096];
  for (int fd = 3; fd < 1024; fd++) {
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 6 && memcmp(target + n - 6, "/trace", 6) == 0) dup2(junk, fd);
  }
  if (stat("after-dup2", &st) != 0) return 17;
  return 0;
}
`;
