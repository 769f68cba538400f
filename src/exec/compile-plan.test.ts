// Tests for rewriting a compile so it reads the shared context and writes only its private folder.
import { describe, expect, it } from "vitest";
import { defaultDepfilePath, isSharedContextCompile, planMovesPath, planSharedCompile, withImplicitObject } from "./compile-plan.js";
import { mapArgvPaths } from "./argv-policy.js";

const base = { projectRoot: "/proj", ctxRoot: "/w/ctx/h", privateDir: "/w/sb/u", workingDirectory: "" };

describe("isSharedContextCompile", () => {
  it("needs -c and -o, and no preprocess-only mode", () => {
    expect(isSharedContextCompile(["gcc", "-c", "x.c", "-o", "x.o"])).toBe(true);
    expect(isSharedContextCompile(["gcc", "-c", "x.c", "-ox.o"])).toBe(true);
    expect(isSharedContextCompile(["gcc", "-c", "x.c"])).toBe(false);
    expect(isSharedContextCompile(["gcc", "x.o", "-o", "app"])).toBe(false);
    expect(isSharedContextCompile(["gcc", "-E", "-c", "x.c", "-o", "x.i"])).toBe(false);
    expect(isSharedContextCompile(["gcc", "-D", "-c", "x.c", "-o", "x.o"])).toBe(false); // "-c" there is a macro name
  });
});

describe("withImplicitObject", () => {
  it("spells out the object gcc writes for a one-source -c without -o: the source's basename, in the cwd", () => {
    expect(withImplicitObject(["cc", "-std=c99", "-c", "-O3", "-g", "-ggdb", "net.c"])).toEqual(["cc", "-std=c99", "-c", "-O3", "-g", "-ggdb", "net.c", "-o", "net.o"]);
    expect(withImplicitObject(["gcc", "-c", "sub/dir/x.cpp"])).toEqual(["gcc", "-c", "sub/dir/x.cpp", "-o", "x.o"]);
    const spelled = withImplicitObject(["gcc", "-MMD", "-c", "x.c"])!;
    expect(isSharedContextCompile(spelled)).toBe(true);
  });

  it("leaves alone what is not such a call", () => {
    expect(withImplicitObject(["gcc", "-c", "x.c", "-o", "y.o"])).toBeUndefined();
    expect(withImplicitObject(["gcc", "-c", "x.c", "-oy.o"])).toBeUndefined();
    expect(withImplicitObject(["gcc", "-c", "a.c", "b.c"])).toBeUndefined(); // two objects
    expect(withImplicitObject(["gcc", "-S", "x.c"])).toBeUndefined(); // x.s, not an object
    expect(withImplicitObject(["gcc", "-E", "x.c"])).toBeUndefined();
    expect(withImplicitObject(["gcc", "x.c"])).toBeUndefined(); // a link
    expect(withImplicitObject(["gcc", "-D", "-c", "x.c"])).toBeUndefined(); // "-c" there is a macro name
  });
});

describe("planSharedCompile", () => {
  it("redirects -o, adds the prefix map first and a private depfile last", () => {
    const plan = planSharedCompile({ ...base, argv: ["gcc", "-g", "-c", "x.c", "-o", "obj/x.o"] });
    expect(plan.argv).toEqual([
      "gcc",
      "-ffile-prefix-map=/w/ctx/h=/proj",
      "-g",
      "-c",
      "x.c",
      "-o",
      "/w/sb/u/obj/x.o",
      "-MD",
      "-MF",
      "/w/sb/u/.orion-deps.d",
    ]);
    expect(plan.depfileRequested).toBe(false);
    expect(plan.privateParents).toEqual(["/w/sb/u", "/w/sb/u/obj"]);
  });

  it("maps absolute project paths to the context but leaves macros and targets alone", () => {
    const plan = planSharedCompile({
      ...base,
      workingDirectory: "src",
      argv: [
        "gcc", "-I/proj/inc", "-I", "/proj/inc2", "-isystem", "/proj/sys", "-include", "/proj/cfg.h",
        "-DROOT=/proj", "-D", "X=/proj/x", "-MT", "/proj/src/x.o", "-I/usr/include",
        "-fdebug-prefix-map=/proj/src=.", "-MD", "-MF", "/proj/src/d/x.d", "-c", "/proj/src/x.c", "-o", "/proj/src/x.o",
      ],
    });
    expect(plan.argv.slice(2)).toEqual([
      "-I/w/ctx/h/inc", "-I", "/w/ctx/h/inc2", "-isystem", "/w/ctx/h/sys", "-include", "/w/ctx/h/cfg.h",
      "-DROOT=/proj", "-D", "X=/proj/x", "-MT", "/proj/src/x.o", "-I/usr/include",
      "-fdebug-prefix-map=/w/ctx/h/src=.", "-MD", "-MF", "/w/sb/u/d/x.d", "-c", "/w/ctx/h/src/x.c", "-o", "/w/sb/u/x.o",
    ]);
    expect(plan.depfilePath).toBe("/w/sb/u/d/x.d");
    // An absolute -o means gcc's target was absolute too.
    expect(plan.replacements).toEqual([["/w/sb/u/", "/proj/src/"], ["/w/ctx/h", "/proj"]]);
  });

  it("finds gcc's default depfile next to the object", () => {
    const plan = planSharedCompile({ ...base, argv: ["gcc", "-MMD", "-c", "x.c", "-o", "./o/x.obj.o"] });
    expect(plan.depfilePath).toBe("/w/sb/u/./o/x.obj.d");
    expect(plan.depfileRequested).toBe(true);
    expect(defaultDepfilePath("d.v/x")).toBe("d.v/x.d");
  });

  it("refuses outputs that leave the working directory", () => {
    expect(() => planSharedCompile({ ...base, argv: ["gcc", "-c", "x.c", "-o", "../x.o"] })).toThrow(/outside/);
    expect(() => planSharedCompile({ ...base, argv: ["gcc", "-c", "x.c", "-o", "/etc/x.o"] })).toThrow(/outside/);
    expect(() => planSharedCompile({ ...base, argv: ["gcc", "-MD", "-MF", "/tmp/x.d", "-c", "x.c", "-o", "x.o"] })).toThrow(/outside/);
  });

  it("with the private folder standing for an ancestor of the cwd, writes a sibling's output there, its text kept", () => {
    const sib = { ...base, workingDirectory: "programs", privateBase: "" };
    const plan = planSharedCompile({ ...sib, argv: ["gcc", "-MMD", "-c", "../lib/a.c", "-o", "../lib/a.o"] });
    expect(plan.argv).toContain("/w/sb/u/programs/../lib/a.o");
    expect(plan.privateParents).toEqual(expect.arrayContaining(["/w/sb/u", "/w/sb/u/programs", "/w/sb/u/lib"]));
    expect(plan.depfilePath).toBe("/w/sb/u/programs/../lib/a.d");
    // gcc's depfile target maps back to the text of -o; any other private path to the project's relative form.
    expect(plan.replacements.slice(0, 2)).toEqual([
      ["/w/sb/u/programs/", ""],
      ["/w/sb/u/", "../"],
    ]);
    const abs = planSharedCompile({ ...sib, argv: ["gcc", "-c", "/proj/lib/a.c", "-o", "/proj/lib/a.o"] });
    expect(abs.argv).toContain("/w/sb/u/lib/a.o");
    expect(abs.replacements.slice(0, 2)).toEqual([
      ["/w/sb/u/programs/", "/proj/programs/"],
      ["/w/sb/u/", "/proj/"],
    ]);
    // Still nothing above the folder it stands for, nor a base that is not above the cwd.
    expect(() => planSharedCompile({ ...sib, privateBase: "programs/x", argv: ["gcc", "-c", "a.c", "-o", "a.o"] })).toThrow(/not the working directory/);
    expect(() => planSharedCompile({ ...sib, privateBase: "lib", workingDirectory: "lib/sub", argv: ["gcc", "-c", "a.c", "-o", "../../a.o"] })).toThrow(/outside/);
  });
});

describe("planMovesPath", () => {
  it("lets the executor move exactly the project paths the plan leaves, so none is moved twice", () => {
    // The context inside the project (a cache folder in the tree) is where a second move would show: /proj/.c/ctx/.c/ctx/…
    const inside = { ...base, ctxRoot: "/proj/.c/ctx" };
    const toCtx = (p: string) => (p.startsWith("/proj/") ? inside.ctxRoot + p.slice("/proj".length) : p);
    const argv = ["gcc", "-c", "/proj/x.c", "-o", "x.o", "-include/proj/a.h", "-imacros", "/proj/m.h", "-I/proj/inc", "-L/proj/lib", "-Wp,-MD,/proj/x.d", "-Xlinker", "/proj/ld.x"];
    const pre = mapArgvPaths(argv, toCtx, { family: "driver", only: (slot) => !planMovesPath(argv, slot) });
    const out = planSharedCompile({ ...inside, argv: pre }).argv;
    expect(out).toEqual(expect.arrayContaining(["/proj/.c/ctx/x.c", "-include/proj/.c/ctx/a.h", "/proj/.c/ctx/m.h", "-I/proj/.c/ctx/inc", "-L/proj/.c/ctx/lib", "-Wp,-MD,/proj/.c/ctx/x.d", "/proj/.c/ctx/ld.x"]));
    expect(out.join(" ")).not.toContain("/ctx/.c/ctx");
  });
});
