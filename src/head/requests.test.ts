// The head's edge checks: what a well-formed build, node and report look like, and the field each refusal names.
import { describe, expect, it } from "vitest";
import { ExitCode, OrionError, Status } from "../core/index.js";
import type { GraphAction, SubmitBuildRequest } from "../gen/orion/v1/scheduler.js";
import { checkHeartbeat, checkRegister, checkReportResult, checkSubmitBuild, nodeNameProblem } from "./requests.js";

const digest = { hash: "a".repeat(64), sizeBytes: 10 };
const act = (id: string, extra: Partial<GraphAction> = {}): GraphAction => ({
  id, kind: "compile", label: id, arguments: ["/usr/bin/gcc", "-c", `${id}.c`], cwd: "", inputs: [], outputs: [`${id}.o`], deps: [], host: false,
  toolchain: "t", environmentVariables: [], shell: "", ...extra,
});
const build = (actions: GraphAction[], extra: Partial<SubmitBuildRequest> = {}): SubmitBuildRequest => ({
  contextRoot: digest, actions, noCache: false, retries: 2, jobs: 0, token: "", projectRoot: "/home/u/proj", noNodeTimeoutMs: 0, ...extra,
});

/** The message of the INVALID_ARGUMENT `fn` throws (a usage error: exit 2 in-process). */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OrionError);
    expect((err as OrionError).code).toBe(Status.INVALID_ARGUMENT);
    expect((err as OrionError).exitCode).toBe(ExitCode.USAGE);
    return (err as Error).message;
  }
  throw new Error("accepted");
}

describe("checkSubmitBuild", () => {
  it("accepts a graph with outputs that stay inside the root once normalized, and host steps that leave it", () => {
    expect(() =>
      checkSubmitBuild(build([
        act("a", { cwd: "src", outputs: ["lib/a.o", "src/../lib/b.o"] }),
        act("gen", { host: true, kind: "other", cwd: "/elsewhere", outputs: ["/usr/local/bin/x"], deps: ["a"] }),
      ])),
    ).not.toThrow();
  });

  it("names the field of each refusal", () => {
    expect(refusal(() => checkSubmitBuild(build([act("a")], { contextRoot: undefined })))).toBe("SubmitBuild: context_root is missing");
    expect(refusal(() => checkSubmitBuild(build([act("a")], { contextRoot: { hash: "A".repeat(64), sizeBytes: 1 } })))).toMatch(/^SubmitBuild: context_root has hash/);
    expect(refusal(() => checkSubmitBuild(build([act("a")], { projectRoot: "rel/dir" })))).toMatch(/project_root "rel\/dir" is not a normalized absolute path/);
    expect(refusal(() => checkSubmitBuild(build([act("a")], { retries: -1 })))).toMatch(/retries is -1/);
    expect(refusal(() => checkSubmitBuild(build([act("a", { outputs: ["x/../../y.o"] })])))).toMatch(/actions\[0\]\.outputs\[0\] "x\/..\/..\/y.o" is not a path inside/);
    expect(refusal(() => checkSubmitBuild(build([act("a", { outputs: ["."] })])))).toMatch(/outputs\[0\]/);
    expect(refusal(() => checkSubmitBuild(build([act("a", { arguments: [] })])))).toMatch(/actions\[0\]\.arguments is empty/);
    expect(refusal(() => checkSubmitBuild(build([act("a", { inputs: ["x\0y"] })])))).toMatch(/actions\[0\]\.inputs\[0\] contains a NUL byte/);
    expect(refusal(() => checkSubmitBuild(build([act("a", { environmentVariables: [{ name: "A=B", value: "" }] })])))).toMatch(/environment_variables\[0\]\.name/);
    expect(refusal(() => checkSubmitBuild(build([act("a"), act("b", { deps: ["b"] })])))).toBe('SubmitBuild: actions form a cycle: "b" → "b"');
  });
});

describe("node requests", () => {
  const reg = { name: "node-1", slots: 4, toolchains: [{ name: "gcc", digest: "b".repeat(64), path: "/usr/bin/gcc" }], advertise: "10.0.0.2:7000", token: "", instanceId: "x", sandbox: "" };

  it("accepts host names and refuses paths, traversal, spaces and control characters", () => {
    for (const ok of ["node-1", "build.example.com", "Node_7", "ci@rack+2"]) expect(nodeNameProblem(ok)).toBeUndefined();
    for (const bad of ["../../evil", "a/b", "..", ".hidden", "x..y", "two words", "bell\u0007", "", "n".repeat(129)]) expect(nodeNameProblem(bad), bad).toBeDefined();
  });

  it("checks Register, Heartbeat and ReportResult fields", () => {
    expect(checkRegister(reg)).toBe(reg);
    expect(checkRegister({ ...reg, name: "", advertise: "[::1]:7000" })).toBeTruthy();
    expect(refusal(() => checkRegister({ ...reg, slots: -5 }))).toBe("Register: slots is -5, not an integer in 1..1024");
    expect(refusal(() => checkRegister({ ...reg, name: "../../evil" }))).toMatch(/^Register: name "..\/..\/evil" is not a name/);
    expect(refusal(() => checkHeartbeat({ nodeId: "n", running: 0, load: Number.NaN, contextHashes: [], session: "" }))).toMatch(/load/);
    expect(refusal(() => checkHeartbeat({ nodeId: "n", running: 0, load: 0, contextHashes: ["nope"], session: "" }))).toMatch(/context_hashes\[0\]/);
    const result = { outputFiles: [{ path: "/etc/passwd", digest, isExecutable: false, contents: Buffer.alloc(0) }], exitCode: 0, stdoutRaw: Buffer.alloc(0), stderrRaw: Buffer.alloc(0), stdoutDigest: undefined, stderrDigest: undefined, executionMetadata: undefined };
    expect(refusal(() => checkReportResult({ nodeId: "n", leaseId: "l", result, error: "", depfile: "", actionError: false, session: "" }))).toMatch(/result\.output_files\[0\]\.path "\/etc\/passwd" is absolute/);
    expect(refusal(() => checkReportResult({ nodeId: "n", leaseId: "l", result: undefined, error: "", depfile: "", actionError: false, session: "" }))).toMatch(/result is missing/);
    expect(checkReportResult({ nodeId: "n", leaseId: "l", result: undefined, error: "sandbox failed", depfile: "", actionError: false, session: "" })).toBeTruthy();
  });
});
