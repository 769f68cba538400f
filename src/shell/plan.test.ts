// Each recipe-line shape measured on Redis, jemalloc and CMake (docs/whole-build-graph.md §1) gets the plan it needs; rewritten lines run under /bin/sh with the wrapper in front of each tool.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planLine, shellQuote, type PlanOptions } from "./plan.js";
import { CHEAP_PROGRAMS, isBuildTool } from "./programs.js";

const W = "/w/orion-cc";
const opts = (files: Record<string, string> = {}, cwd = "/r/src"): PlanOptions => ({ cwd, wrapper: W, readFile: (p) => files[p] });
const plan = (line: string, o = opts()) => planLine(line, o);

const REDIS_CC =
  `printf '    %b %b\\n' "\\033[34m"CC"\\033[0m" "\\033[33m"quicklist.o"\\033[0m" 1>&2;cc -pedantic -DREDIS_STATIC='' -std=c11 -Wall -W ` +
  `-Wno-missing-field-initializers -O2 -g -ggdb -I../deps/hiredis -I../deps/linenoise -I../deps/lua/src -I../deps/hdr_histogram ` +
  `-DUSE_JEMALLOC -I../deps/jemalloc/include -MMD -o quicklist.o -c quicklist.c`;

describe("planLine: the measured shapes", () => {
  it("rewrites Redis's QUIET_CC line after the printf, the rest byte-identical", () => {
    const p = plan(REDIS_CC);
    const at = REDIS_CC.indexOf(";cc ") + 1;
    expect(p).toMatchObject({
      kind: "rewrite",
      line: `${REDIS_CC.slice(0, at)}'/w/orion-cc' ${REDIS_CC.slice(at)}`,
      tools: [{ argv: expect.arrayContaining(["cc", "-DREDIS_STATIC=", "-c", "quicklist.c"]), cwd: "/r/src", glob: false }],
    });
    if (p.kind === "rewrite") expect(p.tools[0]!.argv).toHaveLength(REDIS_CC.slice(at).split(" ").length);
    // One call after a printf to stderr, whose bytes are known: the build answers for the whole line.
    if (p.kind === "rewrite") expect(p.direct?.prelude).toEqual({ out: Buffer.alloc(0), err: Buffer.from("    \x1b[34mCC\x1b[0m \x1b[33mquicklist.o\x1b[0m\n", "latin1") });
  });

  it("rewrites automake's compile, whose arguments expand a shell variable, and leaves its depbase and mv to sh", () => {
    const line =
      "depbase=`echo src/hello.o | sed 's|[^/]*$$|.deps/&|;s|\\.o$$||'`;\\\n" +
      "gcc -DHAVE_CONFIG_H -I. -g -O2 -MT src/hello.o -MD -MP -MF $depbase.Tpo -c -o src/hello.o src/hello.c &&\\\n" +
      "mv -f $depbase.Tpo $depbase.Po";
    const p = plan(line);
    expect(p.kind).toBe("rewrite");
    if (p.kind === "rewrite") {
      expect(p.line).toBe(line.replace("\ngcc ", "\n'/w/orion-cc' gcc "));
      expect(p.tools).toHaveLength(1);
    }
    // The program itself expanding ($CC) cannot be told: the line is a step.
    expect(plan("$CC -c x.c").kind).toBe("step");
  });

  it("rewrites jemalloc's plain compile", () => {
    const line = "gcc -std=gnu11 -Wall -Wextra -pipe -g3 -fvisibility=hidden -O3 -funroll-loops -fPIC -DPIC -c -D_GNU_SOURCE -D_REENTRANT -Iinclude -Iinclude -o src/arena.o src/arena.c";
    const call = { argv: line.split(" "), cwd: "/r/src", glob: false };
    expect(plan(line)).toEqual({ kind: "rewrite", line: `'/w/orion-cc' ${line}`, tools: [call], direct: call });
  });

  it("runs jemalloc's configure as a step and a sub-make in the real shell", () => {
    expect(plan("cd jemalloc && ./configure --with-version=5.2.1-0-g0 --with-lg-quantum=3 --disable-cache-oblivious --with-jemalloc-prefix=je_ CFLAGS=\"-std=gnu99 -Wall -pipe -g3 -O3 -funroll-loops \" LDFLAGS=\"\"")).toEqual({ kind: "step" });
    expect(plan("cd hiredis && make static")).toEqual({ kind: "fallback" });
    expect(plan("cd hiredis && /usr/bin/make static")).toEqual({ kind: "fallback" });
    expect(plan("sh mkreleasehdr.sh")).toEqual({ kind: "step" });
    expect(plan("python3 gen.py > out.h")).toEqual({ kind: "step" });
  });

  it("leaves jemalloc's nm | awk pipeline and install copies to /bin/sh", () => {
    expect(plan("nm -a src/arena.o | awk -f ./include/jemalloc/internal/private_symbols.awk > src/arena.sym")).toEqual({ kind: "fallback" });
    expect(plan("install redis-server ../bin")).toEqual({ kind: "fallback" });
    expect(plan("mkdir -p ../bin && cp -pf redis-cli ../bin/ && echo done")).toEqual({ kind: "fallback" });
  });

  it("rewrites the link and the archive", () => {
    const link = "cc -g -ggdb -rdynamic -o redis-server adlist.o quicklist.o ae.o ../deps/hiredis/libhiredis.a ../deps/lua/src/liblua.a ../deps/jemalloc/lib/libjemalloc.a -lm -ldl -pthread -lrt";
    expect(plan(link)).toMatchObject({ kind: "rewrite", line: `'/w/orion-cc' ${link}` });
    const ar = "ar rcs libhiredis.a alloc.o net.o hiredis.o sds.o async.o read.o sockcompat.o";
    const call = { argv: ar.split(" "), cwd: "/r/src", glob: false };
    expect(plan(ar)).toEqual({ kind: "rewrite", line: `'/w/orion-cc' ${ar}`, tools: [call], direct: call });
  });

  it("rewrites CMake's compile and follows its cd", () => {
    const line = "cd /abs/build && /usr/bin/cc -DX -I/abs/src -o CMakeFiles/s.dir/s.c.o -c /abs/src/s.c";
    const call = { argv: line.slice(line.indexOf("/usr/bin/cc")).split(" "), cwd: "/abs/build", glob: false };
    expect(plan(line)).toEqual({
      kind: "rewrite",
      line: "cd /abs/build && '/w/orion-cc' /usr/bin/cc -DX -I/abs/src -o CMakeFiles/s.dir/s.c.o -c /abs/src/s.c",
      tools: [call],
      direct: call,
    });
  });

  it("runs a line that is one tool call (after cd … &&) directly, and nothing with more to it", () => {
    expect(plan("cd sub && cc -c a.c")).toMatchObject({ direct: { argv: ["cc", "-c", "a.c"], cwd: "/r/src/sub" } });
    expect(plan("printf 'CC %s\\n' a.o; cc -c a.c")).toMatchObject({ direct: { argv: ["cc", "-c", "a.c"], prelude: { out: Buffer.from("CC a.o\n"), err: Buffer.alloc(0) } } });
    for (const line of ["printf '%d\\n' 3; cc -c a.c", "printf x 2>&1; cc -c a.c", "printf x >&2 | cat; cc -c a.c", "cc -c a.c > log", "cc -c a.c 2>&1", "CCACHE=1 cc -c a.c", "cc -c *.c", "cd sub; cc -c a.c", "cc -c a.c && echo done", "env cc -c a.c", "cd $D && cc -c a.c"]) {
      const p = plan(line);
      expect(p.kind === "rewrite" && p.direct, line).toBeFalsy();
    }
  });

  it("replaces cmake_link_script by the link script's lines, each rewritten", () => {
    const files = {
      "/abs/build/CMakeFiles/s.dir/link.txt": "/usr/bin/ar qc libs.a CMakeFiles/s.dir/s.c.o\n/usr/bin/ranlib libs.a\n",
      "/abs/build/CMakeFiles/d.dir/link.txt": "/usr/bin/cc -fPIC -shared -Wl,-soname,libd.so.1 -o libd.so.1.0 CMakeFiles/d.dir/d.c.o \n",
    };
    expect(plan("cd /abs/build && /usr/bin/cmake -E cmake_link_script CMakeFiles/s.dir/link.txt --verbose=0", opts(files))).toEqual({
      kind: "rewrite",
      line: "cd /abs/build && { '/w/orion-cc' /usr/bin/ar qc libs.a CMakeFiles/s.dir/s.c.o && '/w/orion-cc' /usr/bin/ranlib libs.a; }",
      tools: [
        { argv: ["/usr/bin/ar", "qc", "libs.a", "CMakeFiles/s.dir/s.c.o"], cwd: "/abs/build", glob: false },
        { argv: ["/usr/bin/ranlib", "libs.a"], cwd: "/abs/build", glob: false },
      ],
    });
    expect(plan("/usr/bin/cmake -E cmake_link_script CMakeFiles/d.dir/link.txt --verbose=1", opts(files, "/abs/build"))).toMatchObject({
      kind: "rewrite",
      line: "{ '/w/orion-cc' /usr/bin/cc -fPIC -shared -Wl,-soname,libd.so.1 -o libd.so.1.0 CMakeFiles/d.dir/d.c.o; }",
    });
  });

  it("leaves a link script it cannot read or that is not plain commands, as a step", () => {
    const line = "cd /abs/build && /usr/bin/cmake -E cmake_link_script CMakeFiles/s.dir/link.txt --verbose=0";
    expect(plan(line)).toEqual({ kind: "step" });
    expect(plan(line, opts({ "/abs/build/CMakeFiles/s.dir/link.txt": "/usr/bin/ar qc libs.a *.o\n" }))).toEqual({ kind: "step" });
    expect(plan(line, opts({ "/abs/build/CMakeFiles/s.dir/link.txt": "/usr/bin/cc -o e e.o -Wl,-rpath,$ORIGIN\n" }))).toEqual({ kind: "step" });
  });

  it("leaves CMake's other cmake -E lines and its sub-makes to /bin/sh", () => {
    expect(plan('cd /abs/build && /usr/bin/cmake -E cmake_depends "Unix Makefiles" /abs/src /abs/src /abs/build /abs/build /abs/build/CMakeFiles/s.dir/DependInfo.cmake --color=')).toEqual({ kind: "fallback" });
    expect(plan('/usr/bin/cmake -E cmake_echo_color --switch= --green "Building C object CMakeFiles/s.dir/s.c.o"')).toEqual({ kind: "fallback" });
    expect(plan("/usr/bin/make  -f CMakeFiles/s.dir/build.make CMakeFiles/s.dir/build")).toEqual({ kind: "fallback" });
    expect(plan("/usr/bin/cmake --build . --target s")).toEqual({ kind: "fallback" });
    expect(plan("/usr/bin/cmake -S /abs/src -B /abs/build")).toEqual({ kind: "step" });
  });
});

describe("planLine: shell forms", () => {
  it("reads .ONESHELL strings line by line, following cd", () => {
    const line = "set -e\ncd lib\ncc -c a.c\nar rcs liba.a a.o\necho built";
    expect(plan(line)).toEqual({
      kind: "rewrite",
      line: "set -e\ncd lib\n'/w/orion-cc' cc -c a.c\n'/w/orion-cc' ar rcs liba.a a.o\necho built",
      tools: [
        { argv: ["cc", "-c", "a.c"], cwd: "/r/src/lib", glob: false },
        { argv: ["ar", "rcs", "liba.a", "a.o"], cwd: "/r/src/lib", glob: false },
      ],
    });
  });

  it("quotes a wrapper path with spaces and quotes", () => {
    const p = planLine("cc -c x.c", { ...opts(), wrapper: "/my dir/it's/orion-cc" });
    expect(p).toMatchObject({ kind: "rewrite", line: `'/my dir/it'\\''s/orion-cc' cc -c x.c` });
    expect(shellQuote("")).toBe("''");
  });

  it("runs a loop over compiles as one step; a compile whose arguments expand is still a tool call", () => {
    expect(plan("for f in *.c; do cc -c $f; done")).toEqual({ kind: "step" });
    expect(plan("(cd sub && cc -c y.c)")).toEqual({ kind: "step" });
    expect(plan("cc -c `ls *.c`")).toMatchObject({ kind: "rewrite", line: "'/w/orion-cc' cc -c `ls *.c`" });
    expect(plan("for d in a b; do make -C $d; done")).toEqual({ kind: "fallback" });
    expect(plan("for f in a b; do echo $f; done")).toEqual({ kind: "fallback" });
    expect(plan("$X -c x.c")).toEqual({ kind: "step" });
  });

  it("keeps && and || around a rewritten call", () => {
    expect(plan("cc -c x.c && echo ok || echo bad")).toMatchObject({ kind: "rewrite", line: "'/w/orion-cc' cc -c x.c && echo ok || echo bad" });
  });

  it("inserts the wrapper after assignments and redirections, and after exec and env", () => {
    expect(plan("CCACHE_DISABLE=1 cc -c x.c")).toMatchObject({ kind: "rewrite", line: "CCACHE_DISABLE=1 '/w/orion-cc' cc -c x.c" });
    expect(plan("2>/dev/null gcc -c x.c")).toMatchObject({ kind: "rewrite", line: "2>/dev/null '/w/orion-cc' gcc -c x.c" });
    expect(plan("exec cc -c x.c")).toMatchObject({ kind: "rewrite", line: "exec '/w/orion-cc' cc -c x.c", tools: [{ argv: ["cc", "-c", "x.c"] }] });
    expect(plan("env LANG=C gcc -c x.c")).toMatchObject({ kind: "rewrite", line: "env LANG=C '/w/orion-cc' gcc -c x.c", tools: [{ argv: ["gcc", "-c", "x.c"] }] });
    expect(plan("command cc -c x.c")).toMatchObject({ kind: "rewrite", line: "command '/w/orion-cc' cc -c x.c" });
    expect(plan("env -i gcc -c x.c")).toEqual({ kind: "fallback" });
    expect(plan("command -v gcc")).toEqual({ kind: "fallback" });
  });

  it("leaves splitting a multi-source compile to the handler", () => {
    const call = { argv: ["cc", "-c", "a.c", "b.c", "c.c"], cwd: "/r/src", glob: false };
    expect(plan("cc -c a.c b.c c.c")).toEqual({ kind: "rewrite", line: "'/w/orion-cc' cc -c a.c b.c c.c", tools: [call], direct: call });
  });

  it("rewrites the compiles of a line that also runs make or a script", () => {
    expect(plan("make -C sub && cc -c x.c")).toMatchObject({ kind: "rewrite", line: "make -C sub && '/w/orion-cc' cc -c x.c" });
    expect(plan("./gen.sh > x.c; cc -c x.c")).toMatchObject({ kind: "rewrite" });
  });

  it("marks a glob the shell expands and background calls", () => {
    expect(plan("ar rcs l.a *.o")).toMatchObject({ kind: "rewrite", line: "'/w/orion-cc' ar rcs l.a *.o", tools: [{ glob: true }] });
    expect(plan("cc -c a.c & cc -c b.c; wait")).toMatchObject({ kind: "rewrite", line: "'/w/orion-cc' cc -c a.c & '/w/orion-cc' cc -c b.c; wait" });
  });

  it("tracks the directory through cd parts and stops where it cannot", () => {
    const cwds = (line: string, cwd = "/r") => {
      const p = planLine(line, opts({}, cwd));
      return p.kind === "rewrite" ? p.tools.map((t) => t.cwd) : p.kind;
    };
    expect(cwds("cd a; cd ../b/./c && cc -c x.c")).toEqual(["/r/b/c"]);
    expect(cwds("cd -P a && cc -c x.c")).toEqual(["/r/a"]);
    expect(cwds("cd a || exit 1; cc -c x.c")).toEqual([undefined]);
    expect(cwds("cd $D && cc -c x.c; cd /abs && cc -c y.c")).toEqual([undefined, "/abs"]);
    expect(cwds("cd a & cc -c x.c")).toEqual(["/r"]);
    expect(cwds("(cd sub && make) && cc -c x.c")).toEqual(["/r"]);
    expect(cwds("{ cd sub; }; cc -c x.c")).toEqual([undefined]);
    expect(cwds(". ./env.sh; cc -c x.c")).toEqual([undefined]);
    expect(cwds("cd; cc -c x.c")).toEqual([undefined]);
  });

  it("leaves lines sh would refuse and lines of cheap programs to /bin/sh", () => {
    expect(plan("cc -c 'x.c")).toEqual({ kind: "fallback" });
    expect(plan("")).toEqual({ kind: "fallback" });
    expect(plan("X=1")).toEqual({ kind: "fallback" });
    expect(plan("test -d x || mkdir x; rm -f a.o; touch stamp; [ -f y ] && echo y")).toEqual({ kind: "fallback" });
  });
});

describe("isBuildTool", () => {
  it("knows the tools by any path, version or triplet, and nothing else", () => {
    for (const t of ["cc", "gcc", "g++", "c++", "clang", "clang++", "ar", "ranlib", "ld", "ld.bfd", "ld.gold", "gcc-12", "clang-15", "x86_64-linux-gnu-gcc", "x86_64-linux-gnu-gcc-12", "arm-none-eabi-ar", "x86_64-linux-gnu-ranlib", "x86_64-linux-gnu-ld", "aarch64-linux-gnu-g++", "/usr/bin/cc", "../tools/gcc"]) {
      expect(isBuildTool(t), t).toBe(true);
    }
    for (const t of ["make", "cmake", "ccache", "distcc", "tar", "gold", "nm", "sh", "./configure", "gcc.sh"]) expect(isBuildTool(t), t).toBe(false);
    for (const t of CHEAP_PROGRAMS) expect(isBuildTool(t), t).toBe(false);
  });
});

describe("planLine: rewritten lines under /bin/sh", () => {
  const dir = mkdtempSync(join(tmpdir(), "orion-shell-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("hand the wrapper each tool's argv after the shell's own expansion, and run the rest as before", () => {
    const wrapperDir = join(dir, "my dir", "it's");
    mkdirSync(join(dir, "sub"), { recursive: true });
    mkdirSync(wrapperDir, { recursive: true });
    const wrapper = join(wrapperDir, "orion-cc");
    writeFileSync(wrapper, '#!/bin/sh\nprintf "W[%s]" "$(pwd)" >&2; printf " <%s>" "$@" >&2; echo >&2\n');
    chmodSync(wrapper, 0o755);
    writeFileSync(join(dir, "sub", "a.o"), "");
    const line = `printf '%b\\n' "\\033[34m"CC"\\033[0m" 1>&2;cd sub && X=1 cc -DS='a b' -c "q.c" *.o && echo ok || echo bad`;
    const p = planLine(line, { cwd: dir, wrapper, readFile: () => undefined });
    expect(p.kind).toBe("rewrite");
    const out = execFileSync("/bin/sh", ["-c", p.kind === "rewrite" ? p.line : line], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(out).toBe("ok\n");
    const err = execFileSync("/bin/sh", ["-c", `(${p.kind === "rewrite" ? p.line : line}) 2>&1 >/dev/null`], { cwd: dir, encoding: "utf8" });
    expect(err).toBe(`\x1b[34mCC\x1b[0m\nW[${join(dir, "sub")}] <cc> <-DS=a b> <-c> <q.c> <a.o>\n`);
  });
});
