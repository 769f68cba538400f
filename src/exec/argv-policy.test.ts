// Table tests of the argv policy over real command lines: Redis's whole compile database, Lua- and CMake-shaped calls are allowed; each hostile option is refused by name.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ArgvRefusedError, argvRefusal, commandRefusal, envRefusal, expandResponseFiles, mapArgvPaths, splitResponseFile } from "./argv-policy.js";
import { toolFamily } from "../compile/index.js";
import { ExitCode, isInfrastructureError } from "../core/index.js";

const ROOT = "/home/u/proj";
const ctx = (cwd = "") => ({ projectRoot: ROOT, cwd: cwd ? `${ROOT}/${cwd}` : ROOT });
const words = (line: string) => line.split(" ");

describe("argv policy: what real builds run is allowed", () => {
  it("allows every compile of Redis 7.0.15's compile database", () => {
    const db = JSON.parse(readFileSync("/work/shared/data/redis-7.0.15-compile_commands.json", "utf8")) as { directory: string; arguments: string[] }[];
    expect(db.length).toBeGreaterThan(200);
    const refused = db.map((e) => ({ e, r: argvRefusal(e.arguments, ctx(e.directory)) })).filter((x) => x.r);
    expect(refused).toEqual([]);
  });

  it.each([
    ["", "cc -O2 -Wall -DLUA_COMPAT_5_3 -c lapi.c"],
    ["src", "gcc -std=gnu99 -O2 -Wall -Wextra -DLUA_COMPAT_5_3 -DLUA_USE_LINUX -c -o lapi.o lapi.c"],
    ["src", "ar rcs liblua.a lapi.o lcode.o lctype.o"],
    ["src", "ar rc liblua.a lapi.o"],
    ["src", "ranlib liblua.a"],
    ["src", "gcc -o lua lua.o liblua.a -lm -ldl"],
    ["src", "gcc -std=gnu99 -o lua lua.o liblua.a -lm -Wl,-E -ldl"],
    ["", "gcc -O3 -D_LARGEFILE64_SOURCE=1 -DHAVE_HIDDEN -I. -c -o adler32.o adler32.c"],
    ["", "gcc -shared -Wl,-soname,libz.so.1,--version-script,zlib.map -O3 -fPIC -o libz.so.1.3 adler32.lo crc32.lo -lc"],
    ["", "gcc -o app main.o -L/usr/lib/x86_64-linux-gnu -lssl -Wl,-rpath,/opt/vendor/lib -Wl,-rpath,$ORIGIN/../lib"],
    ["", "gcc -MM -MT x.o -MF deps/x.d x.c"],
    ["", "gcc -c x.c -o x.o -fdebug-prefix-map=/home/u/proj=. -ffile-prefix-map=/build/x=/y -DPREFIX=\"/usr/local\""],
    ["", "gcc -c x.c -o x.o -I/usr/include/lua5.4 -isystem /usr/local/include -include /usr/include/stdio.h"],
    ["", "gcc -c x.c -o /dev/null"],
    ["", "gcc -c x.c -o x.o -Wp,-MD,.x.o.d -Wa,--noexecstack -fuse-ld=gold -std=gnu11"],
    ["", "gcc --std=c99 --param=max-inline-insns-single=1000 --include-barrier --coverage -c x.c --output x.o"],
    ["", "gcc -o app a.o -Wl,--build-id -Wl,--as-needed,--gc-sections,-z,relro,--hash-style=gnu -Wl,--trace"],
  ])("allows %s: %s", (cwd, line) => {
    expect(argvRefusal(words(line), ctx(cwd))).toBeUndefined();
  });

  it("allows CMake's absolute paths inside the project root", () => {
    const argv = [
      "/usr/bin/cc", "-DFOO", `-I${ROOT}/src`, "-I", `${ROOT}/build/gen`, "-isystem", `${ROOT}/third_party/inc`, "-O2", "-MD",
      "-MT", "CMakeFiles/app.dir/x.c.o", "-MF", "CMakeFiles/app.dir/x.c.o.d", "-o", "CMakeFiles/app.dir/x.c.o", "-c", `${ROOT}/src/x.c`,
    ];
    expect(argvRefusal(argv, ctx("build"))).toBeUndefined();
    expect(argvRefusal(["/usr/bin/ar", "qc", "libx.a", `${ROOT}/build/CMakeFiles/x.dir/x.c.o`], ctx("build"))).toBeUndefined();
    expect(argvRefusal(["/usr/bin/cc", "-o", `${ROOT}/build/app`, `${ROOT}/build/x.o`, `-L${ROOT}/build/lib`, `-Wl,-T,${ROOT}/app.ld`], ctx("build"))).toBeUndefined();
  });
});

describe("argv policy: what a token holder must not run", () => {
  it.each([
    ["gcc -O2 -wrapper ./w.sh -c a.c -o a.o", "-wrapper"],
    ["gcc -B./evil -c a.c -o a.o", "-B"],
    ["gcc -B /tmp/evil/ -c a.c -o a.o", "-B"],
    ["gcc --prefix=/tmp -c a.c -o a.o", "--prefix"],
    ["gcc -specs=my.specs -c a.c -o a.o", "-specs"],
    ["gcc --specs=my.specs -c a.c -o a.o", "--specs"],
    ["gcc -specs my.specs -c a.c -o a.o", "-specs"],
    ["gcc -fplugin=./p.so -c a.c -o a.o", "-fplugin"],
    ["gcc -fplugin-arg-p-x=y -c a.c -o a.o", "-fplugin-arg-p-x"],
    ["clang -Xclang -load -Xclang ./p.so -c a.c -o a.o", "-Xclang"],
    ["clang -fpass-plugin=./p.so -c a.c -o a.o", "-fpass-plugin"],
    ["clang --ld-path=./ld -o app a.o", "--ld-path"],
    ["gcc -fuse-ld=./myld -o app a.o", "-fuse-ld"],
    ["gcc -o app a.o -Wl,-plugin,./p.so", "-plugin"],
    ["gcc -o app a.o -Wl,--plugin=./p.so", "--plugin"],
    ["gcc -o app a.o -Xlinker --plugin -Xlinker ./p.so", "--plugin"],
    ["gcc -c a.c -o /tmp/a.o", "-o"],
    ["gcc -c a.c -o/tmp/a.o", "-o"],
    ["gcc -c a.c -o ../../a.o", "-o"],
    ["gcc -c a.c -o a.o -MD -MF /tmp/a.d", "-MF"],
    ["gcc -c a.c -o a.o -I/etc", "-I"],
    ["gcc -c a.c -o a.o -I /root/.ssh", "-I"],
    ["gcc -c a.c -o a.o -I../../other", "-I"],
    ["gcc -c a.c -o a.o -isystem /opt/x", "-isystem"],
    ["gcc -c a.c -o a.o -iquote/opt/x", "-iquote"],
    ["gcc -c a.c -o a.o -idirafter /opt/x", "-idirafter"],
    ["gcc -c a.c -o a.o -include /etc/passwd", "-include"],
    ["gcc -c a.c -o a.o -include/etc/passwd", "-include"],
    ["gcc -c a.c -o a.o -imacros /etc/passwd", "-imacros"],
    ["gcc -c a.c -o a.o --sysroot=/opt/sys", "--sysroot"],
    ["gcc -c a.c -o a.o --sysroot /opt/sys", "--sysroot"],
    ["gcc -c a.c -o a.o -isysroot /opt/sys", "-isysroot"],
    ["gcc -c /etc/passwd -o a.o", "input /etc/passwd"],
    ["gcc -c ../../../etc/x.c -o a.o", "input ../../../etc/x.c"],
    ["gcc -c a.c -o a.o -fprofile-use=/var/prof", "-fprofile-use"],
    ["gcc -c a.c -o a.o -fdump-tree-all=/tmp/dump", "-fdump-tree-all"],
    ["gcc -c a.c -o a.o -fopt-info-vec=/tmp/x", "-fopt-info-vec"],
    ["gcc -c a.c -o a.o -Wp,-MD,/tmp/a.d", "-MD"],
    ["gcc -c a.c -o a.o -Wa,-adhln=/tmp/listing", "-adhln"],
    ["gcc -c a.c -o a.o -Xpreprocessor -include -Xpreprocessor /etc/shadow", "input /etc/shadow"],
    ["gcc -c a.c -o a.o -imultilib ../../x", "-imultilib"],
    ["gcc -o app a.o -L/opt/evil", "-L"],
    ["gcc -o app a.o -T /tmp/evil.ld", "-T"],
    ["gcc -o app a.o -Wl,-T,/tmp/evil.ld", "-T"],
    ["gcc -o app a.o -Wl,--script=/tmp/evil.ld", "--script"],
    ["gcc -o app a.o -Wl,-Map=/tmp/map", "-Map"],
    ["gcc -o app a.o -Wl,-o,/tmp/app", "-o"],
    ["gcc -o app a.o -Wl,-b,binary,/etc/shadow", "linker input /etc/shadow"],
    ["gcc -o app a.o -Wl,--version-script=/etc/x.map", "--version-script"],
    ["gcc -o app a.o -l:../../../../etc/shadow", "-l"],
    ["gcc -o /usr/lib/evil.so a.o", "-o"],
    ["ar rcs /tmp/x.a a.o", "archive /tmp/x.a"],
    ["ar rcs ../../x.a a.o", "archive ../../x.a"],
    ["ar rcs lib.a /etc/shadow", "member /etc/shadow"],
    ["ar --plugin ./p.so rcs lib.a a.o", "--plugin"],
    ["ar xP lib.a", "P"],
    ["ar x --output=/tmp lib.a", "--output"],
    ["ranlib /tmp/x.a", "archive /tmp/x.a"],
    ["ranlib --plugin ./p.so lib.a", "--plugin"],
    ["ld -o /tmp/x a.o", "-o"],
    ["ld -o x a.o -plugin ./p.so", "-plugin"],
    // gcc's long spellings and their abbreviations, and ld's.
    ["gcc -c a.c --output=/tmp/a.o", "--output"],
    ["gcc -c a.c --output /usr/lib/a.o", "--output"],
    ["gcc -c a.c --outp=/tmp/a.o", "--outp"],
    ["gcc -c a.c -o a.o --include-directory=/etc", "--include-directory"],
    ["gcc -c a.c -o a.o --include /etc/passwd", "--include"],
    ["gcc -c a.c -o a.o --pref=/tmp/", "--pref"],
    ["gcc -c a.c -o a.o --spec=x.specs", "--spec"],
    ["gcc -o app a.o --for-linker=--plugin --for-linker=./p.so", "--plugin"],
    ["gcc -o app a.o --for-linker -T --for-linker /tmp/x.ld", "-T"],
    ["gcc -o app a.o -Wl,--scr=/tmp/x.ld", "--scr"],
    ["gcc -o app a.o -Wl,--plug,./p.so", "--plug"],
    ["gcc -o app a.o -Wl,--trace,/etc/shadow", "linker input /etc/shadow"],
    ["clang -working-directory / -c etc/passwd -o a.o", "-working-directory"],
  ])("refuses %s (naming %s)", (line, option) => {
    const r = argvRefusal(words(line), ctx());
    expect(r?.option).toBe(option);
    expect(new ArgvRefusedError(r!, "CC a.o").message).toContain(option);
  });

  it("refuses as the user's error: exit 1, never retried", () => {
    const err = new ArgvRefusedError({ option: "-wrapper", message: "it runs another program" }, "CC a.o");
    expect(err.exitCode).toBe(ExitCode.BUILD_FAILED);
    expect(isInfrastructureError(err)).toBe(false);
    expect(err.message).toBe("CC a.o: refused -wrapper: it runs another program");
  });

  it("checks the environment: only the key's variables and a PATH outside the project", () => {
    const sys = [{ name: "LANG", value: "C" }, { name: "PATH", value: "/usr/local/bin:/usr/bin:/bin" }, { name: "CPATH", value: `${ROOT}/inc:/usr/include` }];
    expect(envRefusal(sys, ctx())).toBeUndefined();
    expect(envRefusal([{ name: "LD_PRELOAD", value: `${ROOT}/evil.so` }], ctx())?.option).toBe("LD_PRELOAD");
    expect(envRefusal([{ name: "PATH", value: `.:/usr/bin` }], ctx())?.option).toBe("PATH");
    expect(envRefusal([{ name: "PATH", value: `${ROOT}/bin:/usr/bin` }], ctx())?.option).toBe("PATH");
    expect(envRefusal([{ name: "COMPILER_PATH", value: `${ROOT}/bin` }], ctx())?.option).toBe("COMPILER_PATH");
    expect(envRefusal([{ name: "GCC_EXEC_PREFIX", value: "/usr/lib/gcc/" }], ctx())).toBeUndefined();
    expect(envRefusal([{ name: "C_INCLUDE_PATH", value: "/etc" }], ctx())?.option).toBe("C_INCLUDE_PATH");
  });
});

describe("argv policy: response files and path mapping", () => {
  it("splits a response file as gcc does", () => {
    expect(splitResponseFile(`-O2 'a b.c' "-DX=\\"y\\"" c\\ d\n-I inc`)).toEqual(["-O2", "a b.c", '-DX="y"', "c d", "-I", "inc"]);
  });

  it("expands response files inside the root, and refuses what they hide or where they lie", async () => {
    const files: Record<string, string> = { [`${ROOT}/src/ok.rsp`]: "-c a.c -o a.o @more.rsp", [`${ROOT}/src/more.rsp`]: "-DX", [`${ROOT}/src/bad.rsp`]: "-wrapper ./w.sh" };
    const read = async (p: string) => files[p];
    expect(await expandResponseFiles(["gcc", "@ok.rsp", "-O2"], ctx("src"), read)).toEqual({ argv: ["gcc", "-c", "a.c", "-o", "a.o", "-DX", "-O2"] });
    const hidden = await commandRefusal(["gcc", "@bad.rsp", "-c", "a.c", "-o", "a.o"], [], ctx("src"), read);
    expect(hidden).toMatchObject({ refusal: { option: "-wrapper" } });
    expect(await expandResponseFiles(["gcc", "@/etc/x.rsp"], ctx("src"), read)).toMatchObject({ refusal: { option: "@/etc/x.rsp" } });
    expect(await expandResponseFiles(["gcc", "@missing.rsp"], ctx("src"), read)).toMatchObject({ refusal: { option: "@missing.rsp" } });
  });

  it("maps every in-root path a node must move into its input root, joined forms included", () => {
    const to = (p: string) => (p.startsWith(`${ROOT}/`) ? `/sb${p.slice(ROOT.length)}` : p);
    expect(mapArgvPaths(["gcc", "-o", `${ROOT}/app`, `${ROOT}/a.o`, `-L${ROOT}/lib`, `-Wl,-T,${ROOT}/x.ld,-rpath,${ROOT}/lib`, "-DX=/home/u/proj/y", `-include${ROOT}/h.h`], to)).toEqual([
      "gcc", "-o", "/sb/app", "/sb/a.o", "-L/sb/lib", `-Wl,-T,/sb/x.ld,-rpath,${ROOT}/lib`, "-DX=/home/u/proj/y", "-include/sb/h.h",
    ]);
    expect(mapArgvPaths(["/usr/bin/ar", "rcs", `${ROOT}/l.a`, `${ROOT}/a.o`], to)).toEqual(["/usr/bin/ar", "rcs", "/sb/l.a", "/sb/a.o"]);
  });

  it("names tools by family", () => {
    expect(["gcc", "/usr/bin/x86_64-linux-gnu-gcc-12", "cc", "clang++", "ar", "gcc-ar", "ranlib", "ld.gold", "sh"].map(toolFamily)).toEqual([
      "driver", "driver", "driver", "driver", "ar", "ar", "ranlib", "ld", undefined,
    ]);
  });
});
