import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MAKE_DEBUG_FLAG, makeArgsSpeak, parsePreloadTrace, preloadBlindSpot, preloadEnv, withoutPreload } from "./preload-trace.js";
import { goLookalike } from "./test-helpers.js";

describe("parsePreloadTrace", () => {
  const ops = (log: string) => parsePreloadTrace(log).accesses.map((a) => `${a.op} ${a.path}${"fresh" in a && a.fresh ? " fresh" : ""}`);

  it("reads every op, in order, paths resolved as strace's reader resolves them", () => {
    const log = ["r\t/p/./in.c", "w\t/p/log", "f\t/p/out.h", "l\t/p/src/", "a\t/usr/include/../include/none.h", "p\t/usr/bin/gcc", "d\t/p/old", "m\t/p/gen", ""].join("\n");
    expect(ops(log)).toEqual(["read /p/in.c", "write /p/log", "write /p/out.h fresh", "list /p/src", "absent /usr/include/none.h", "present /usr/bin/gcc", "remove /p/old", "make /p/gen"]);
    expect(parsePreloadTrace(log).untraceable).toBeUndefined();
    expect(parsePreloadTrace("")).toEqual({ accesses: [] });
  });

  it("stops at an untraceable record, keeping what came before, and at anything it cannot read", () => {
    expect(parsePreloadTrace("r\t/p/a\nu\ta static program: /sbin/ldconfig\nr\t/p/b\n")).toEqual({ accesses: [{ op: "read", path: "/p/a" }], untraceable: "a static program: /sbin/ldconfig" });
    expect(parsePreloadTrace("x\t/p/a\n").untraceable).toMatch(/malformed/);
    expect(parsePreloadTrace("r /p/a\n").untraceable).toMatch(/malformed/);
    expect(parsePreloadTrace("r\trelative\n").untraceable).toMatch(/malformed/);
  });
});

describe("parsePreloadTrace: make's comparisons", () => {
  it("keeps each comparison; complete only when every make spoke and every pair could be written", () => {
    const spoke = ["k\t41", "g\t41", "c\tn\t/p/a.in\t/p/a", "r\t/p/a", "c\to\t/p/b\t/p/./a", "c\tm\t/p/x.c\t/p/x.o", ""];
    expect(parsePreloadTrace(spoke.join("\n")).make).toEqual({ compared: [["/p/a.in", "/p/a", true], ["/p/b", "/p/a", false]], missing: [["/p/x.c", "/p/x.o"]], complete: true });
    expect(parsePreloadTrace(spoke.join("\n")).accesses).toEqual([{ op: "read", path: "/p/a" }]);
    // A second make that did not speak (its MAKEFLAGS cleared), a GNU make by another name, or a pair with a path the
    // tracer could not write: matched process by process, not by count.
    expect(parsePreloadTrace([...spoke, "k\t42", ""].join("\n")).make?.complete).toBe(false);
    expect(parsePreloadTrace([...spoke, "k\t42", "g\t43", ""].join("\n")).make?.complete).toBe(false);
    expect(parsePreloadTrace([...spoke, "c\t?", ""].join("\n")).make?.complete).toBe(false);
    expect(parsePreloadTrace("r\t/p/a\n").make).toBeUndefined();
  });

  it("a tool or step called from make gets the environment without the debug flag make got", () => {
    const env = preloadEnv({ PATH: "/bin" }, "/lib/t.so", "/tmp/t", 5n, true);
    expect(env.ORION_TRACE_MAKE_DEBUG).toBe("1");
    const fromMake = { ...env, MAKEFLAGS: `${MAKE_DEBUG_FLAG} -j2 --jobserver-auth=fifo:/tmp/f -- SHELL=/x` } as Record<string, string>;
    expect(withoutPreload(fromMake, "/lib/t.so")).toEqual({ PATH: "/bin", MAKEFLAGS: "-j2 --jobserver-auth=fifo:/tmp/f -- SHELL=/x" });
    expect(preloadEnv({ PATH: "/bin" }, "/lib/t.so", "/tmp/t").ORION_TRACE_MAKE_DEBUG).toBeUndefined();
  });

  it("make's own arguments that print what the tracer would hide turn the comparisons off", () => {
    expect(makeArgsSpeak(["-d"])).toBe(true);
    expect(makeArgsSpeak(["-kd"])).toBe(true);
    expect(makeArgsSpeak(["--debug=b"])).toBe(true);
    expect(makeArgsSpeak(["-p"])).toBe(true);
    expect(makeArgsSpeak(["--version"])).toBe(true);
    expect(makeArgsSpeak(["-k", "all", "CFLAGS=-O0 -Wall", "-j4", "-C", "src", "--keep-going"])).toBe(false);
    // As the tracer reads a make's own argv: a value is not options (-Ctools/php), and long options go by prefix.
    expect(makeArgsSpeak(["-Ctools/php", "-fdev.mk"])).toBe(false);
    expect(makeArgsSpeak(["--vers"])).toBe(true);
  });
});

describe("parsePreloadTrace: old contents", () => {
  const H = "a".repeat(64);
  const G = "b".repeat(64);
  it("keeps what a file held when the step first opened it to change it in place, not after the step changed it", () => {
    const t = parsePreloadTrace([`o\t${H}:12:0:/p/x`, "w\t/p/x", `o\t${G}:13:0:/p/x`, "w\t/p/x", "f\t/p/y", `o\t${G}:4:1:/p/y`, "w\t/p/y", ""].join("\n"));
    expect(t.untraceable).toBeUndefined();
    expect([...t.startContent!]).toEqual([["/p/x", { digest: { hash: H, sizeBytes: 12 }, executable: false }]]);
    expect(t.accesses.map((a) => a.op)).toEqual(["write", "write", "write", "write"]);
  });

  it("refuses a malformed old-content record", () => {
    expect(parsePreloadTrace("o\tzz:1:0:/p/x\n").untraceable).toMatch(/malformed/);
  });
});

describe("preloadBlindSpot", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "orion-blind-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("passes dynamic programs and scripts run by one; names static ones, also behind #!", () => {
    expect(preloadBlindSpot("/bin/sh")).toBeUndefined();
    expect(preloadBlindSpot(path.join(dir, "missing"))).toBeUndefined();
    const script = path.join(dir, "gen.sh");
    writeFileSync(script, "#!/bin/sh\necho hi\n", { mode: 0o755 });
    expect(preloadBlindSpot(script)).toBeUndefined();
    // ldconfig is static-pie on Debian: no PT_INTERP, so ld.so never loads anything into it.
    expect(preloadBlindSpot("/sbin/ldconfig")).toBe("a static program: /sbin/ldconfig");
    const wrapped = path.join(dir, "via-static");
    writeFileSync(wrapped, "#! /sbin/ldconfig -p\n", { mode: 0o755 });
    expect(preloadBlindSpot(wrapped)).toBe("a static program: /sbin/ldconfig");
  });

  it("names a dynamic program carrying Go's build-id note (Go makes its own system calls)", () => {
    const go = path.join(dir, "go-like");
    writeFileSync(go, goLookalike(readFileSync("/bin/true")), { mode: 0o755 });
    expect(preloadBlindSpot(go)).toBe(`a Go program: ${go}`);
  });
});
