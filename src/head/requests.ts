// The head's requests checked at its edge, before any of them touches state: every refusal is INVALID_ARGUMENT naming the method and the field.
import { posix } from "node:path";
import { checkCount, checkDigest, checkInt, checkText, type Digest, invalidArgument, MAX_NO_NODE_TIMEOUT_MS } from "../core/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";
import type {
  AttachRequest,
  HeartbeatRequest,
  LeaseRequest,
  LeaveRequest,
  RegisterRequest,
  ReportResultRequest,
  SubmitBuildRequest,
} from "../gen/orion/v1/scheduler.js";
import { graphProblem } from "../scheduler/index.js";

/** Slots one node may claim: far above any machine's cores, far below what would make its worker bookkeeping a weapon. */
export const MAX_SLOTS = 1024;
/** Node names, ids of builds, leases and actions. */
const MAX_NAME = 128;
const MAX_ID = 1024;
const MAX_PATH = 4096;
/** Entries of one repeated field (argv, inputs, outputs, deps, toolchains...). */
const MAX_LIST = 100_000;
/** A lease long-poll never waits longer than this. */
const MAX_WAIT_MS = 10 * 60_000;
const KINDS = new Set(["compile", "archive", "link", "depgen", "configure", "script", "other"]);

/**
 * What is wrong with a node's name, or undefined: it becomes a log field, a status line and the name of files in its
 * data dir, so it is a short run of letters, digits, `.`, `_`, `-`, `@`, `+`, starting with a letter, digit or `_`, never `..`.
 */
export function nodeNameProblem(name: string): string | undefined {
  if (name.length > MAX_NAME) return `is ${name.length} characters long, more than ${MAX_NAME}`;
  if (!/^[A-Za-z0-9_][A-Za-z0-9._@+-]*$/.test(name)) return `${JSON.stringify(name.slice(0, 80))} is not a name (letters, digits, . _ - @ +; no / or spaces)`;
  if (name.includes("..")) return `${JSON.stringify(name)} contains ".."`;
  return undefined;
}

/**
 * A root-relative path that stays inside the project root once normalized (`src/../lib/x.o` is `lib/x.o`, accepted;
 * `../x.o` and `/tmp/x.o` are refused). Relative to the root, not to the head's own working directory: the head
 * never resolves a client's path against where it happens to run.
 */
function insideRoot(p: string): boolean {
  if (p === "" || posix.isAbsolute(p)) return false;
  const n = posix.normalize(p);
  return n !== "." && n !== ".." && !n.startsWith("../");
}

export function checkSubmitBuild(req: SubmitBuildRequest): void {
  const m = "SubmitBuild";
  checkDigest(m, "context_root", req.contextRoot);
  checkText(m, "project_root", req.projectRoot, MAX_PATH, { required: true });
  if (!posix.isAbsolute(req.projectRoot) || posix.normalize(req.projectRoot) !== req.projectRoot) {
    throw invalidArgument(m, "project_root", `${JSON.stringify(req.projectRoot)} is not a normalized absolute path`);
  }
  checkInt(m, "retries", req.retries, 0, 100);
  checkInt(m, "jobs", req.jobs, 0, 1_000_000);
  checkInt(m, "no_node_timeout_ms", Number(req.noNodeTimeoutMs ?? 0), 0, MAX_NO_NODE_TIMEOUT_MS);
  checkCount(m, "actions", req.actions, MAX_LIST);
  for (let i = 0; i < req.actions.length; i++) {
    const a = req.actions[i]!;
    const f = `actions[${i}]`;
    checkText(m, () => `${f}.id`, a.id, MAX_ID, { required: true, printable: true });
    if (!KINDS.has(a.kind)) throw invalidArgument(m, `${f}.kind`, `${JSON.stringify(a.kind.slice(0, 40))} is not one of ${[...KINDS].join(", ")}`);
    checkText(m, () => `${f}.label`, a.label, MAX_PATH);
    checkCount(m, () => `${f}.arguments`, a.arguments, MAX_LIST);
    for (let j = 0; j < a.arguments.length; j++) checkText(m, () => `${f}.arguments[${j}]`, a.arguments[j]!, 1 << 20);
    if (!a.host && a.arguments.length === 0) throw invalidArgument(m, `${f}.arguments`, "is empty (an action runs a program)");
    checkText(m, () => `${f}.cwd`, a.cwd, MAX_PATH);
    // A host step runs in the client's real tree (it may cd out of it, as make would); an action runs in the input root.
    if (!a.host && a.cwd !== "" && a.cwd !== "." && !insideRoot(a.cwd)) throw invalidArgument(m, `${f}.cwd`, `${JSON.stringify(a.cwd)} leaves the project root`);
    for (const [field, list] of [["inputs", a.inputs], ["outputs", a.outputs], ["deps", a.deps]] as const) {
      checkCount(m, () => `${f}.${field}`, list, MAX_LIST);
      for (let j = 0; j < list.length; j++) checkText(m, () => `${f}.${field}[${j}]`, list[j]!, field === "deps" ? MAX_ID : MAX_PATH, { required: true });
    }
    if (!a.host) {
      for (const [j, o] of a.outputs.entries()) {
        if (!insideRoot(o)) throw invalidArgument(m, `${f}.outputs[${j}]`, `${JSON.stringify(o)} is not a path inside the project root`);
      }
    }
    checkText(m, () => `${f}.toolchain`, a.toolchain, MAX_NAME);
    checkCount(m, () => `${f}.environment_variables`, a.environmentVariables, 1000);
    for (const [j, e] of a.environmentVariables.entries()) {
      checkText(m, `${f}.environment_variables[${j}].name`, e.name, MAX_NAME, { required: true, printable: true });
      if (e.name.includes("=")) throw invalidArgument(m, `${f}.environment_variables[${j}].name`, `${JSON.stringify(e.name)} contains "="`);
      checkText(m, `${f}.environment_variables[${j}].value`, e.value, 1 << 20);
    }
    checkText(m, () => `${f}.shell`, a.shell, 1 << 20);
  }
  const problem = graphProblem(req.actions);
  if (problem?.kind === "duplicate") throw invalidArgument(m, `actions[${problem.index}].id`, `${JSON.stringify(problem.id)} is the id of an earlier action too`);
  if (problem?.kind === "unknown-dep") {
    const j = req.actions[problem.index]!.deps.indexOf(problem.dep);
    throw invalidArgument(m, `actions[${problem.index}].deps[${j}]`, `${JSON.stringify(problem.dep)} is no action of this build`);
  }
  if (problem?.kind === "cycle") throw invalidArgument(m, "actions", `form a cycle: ${problem.path.map((id) => JSON.stringify(id)).join(" → ")}`);
}

export function checkRegister(req: RegisterRequest): RegisterRequest {
  const m = "Register";
  const nameProblem = req.name === "" ? undefined : nodeNameProblem(req.name);
  if (nameProblem) throw invalidArgument(m, "name", nameProblem);
  checkInt(m, "slots", req.slots, 1, MAX_SLOTS);
  checkCount(m, "toolchains", req.toolchains, 256);
  for (const [i, t] of req.toolchains.entries()) {
    checkText(m, `toolchains[${i}].name`, t.name, MAX_NAME, { required: true, printable: true });
    // Opaque to the head (a SHA-256, `tool:<hash>`, `*` for any): compared, never parsed, so only bounded and printable.
    checkText(m, `toolchains[${i}].digest`, t.digest, MAX_NAME, { required: true, printable: true });
    checkText(m, `toolchains[${i}].path`, t.path, MAX_PATH);
  }
  checkText(m, "advertise", req.advertise, 300, { printable: true });
  checkText(m, "sandbox", req.sandbox, 1024, { printable: true });
  if (req.advertise && !/^(\[[^\]\s]+\]|[^:\s/]+):\d{1,5}$/.test(req.advertise)) throw invalidArgument(m, "advertise", `${JSON.stringify(req.advertise)} is not HOST:PORT`);
  checkText(m, "instance_id", req.instanceId, MAX_NAME, { printable: true });
  return req;
}

function checkNodeId(m: string, nodeId: string): void {
  checkText(m, "node_id", nodeId, MAX_NAME, { required: true, printable: true });
}

function checkContextHashes(m: string, hashes: readonly string[]): void {
  checkCount(m, "context_hashes", hashes, 4096);
  for (const [i, h] of hashes.entries()) if (!/^[0-9a-f]{64}$/.test(h)) throw invalidArgument(m, `context_hashes[${i}]`, `${JSON.stringify(h.slice(0, 80))} is not a SHA-256 hash`);
}

export function checkHeartbeat(req: HeartbeatRequest): HeartbeatRequest {
  const m = "Heartbeat";
  checkNodeId(m, req.nodeId);
  checkInt(m, "running", req.running, 0, 1_000_000);
  if (!Number.isFinite(req.load) || req.load < 0) throw invalidArgument(m, "load", `is ${req.load}, not a load average`);
  checkContextHashes(m, req.contextHashes);
  return req;
}

export function checkLease(req: LeaseRequest): LeaseRequest {
  const m = "Lease";
  checkNodeId(m, req.nodeId);
  checkInt(m, "max_actions", req.maxActions, 0, MAX_SLOTS);
  checkInt(m, "wait_ms", req.waitMs, 0, MAX_WAIT_MS);
  checkContextHashes(m, req.contextHashes);
  return req;
}

export function checkLeave(req: LeaveRequest): LeaveRequest {
  checkNodeId("Leave", req.nodeId);
  return req;
}

export function checkAttach(req: AttachRequest): AttachRequest {
  checkNodeId("Attach", req.nodeId);
  return req;
}

export function checkReportResult(req: ReportResultRequest): ReportResultRequest {
  const m = "ReportResult";
  checkNodeId(m, req.nodeId);
  checkText(m, "lease_id", req.leaseId, MAX_ID, { required: true, printable: true });
  checkText(m, "error", req.error, 1 << 20);
  checkText(m, "depfile", req.depfile, 64 << 20);
  if (!req.error && !req.result) throw invalidArgument(m, "result", "is missing (a report carries a result or an error)");
  if (req.result) checkActionResult(m, "result", req.result);
  return req;
}

function checkActionResult(m: string, f: string, r: ActionResult): void {
  checkCount(m, `${f}.output_files`, r.outputFiles, MAX_LIST);
  for (const [i, o] of r.outputFiles.entries()) {
    const of = `${f}.output_files[${i}]`;
    checkText(m, `${of}.path`, o.path, MAX_PATH, { required: true });
    // Relative to the action's working directory; `..` is allowed here (a `../lib/x.o` output) and judged where the path is joined.
    if (posix.isAbsolute(o.path)) throw invalidArgument(m, `${of}.path`, `${JSON.stringify(o.path)} is absolute`);
    checkDigest(m, `${of}.digest`, o.digest);
  }
  for (const [name, d] of [["stdout_digest", r.stdoutDigest], ["stderr_digest", r.stderrDigest]] as const) {
    if (d) checkDigest(m, `${f}.${name}`, d);
  }
}

/** A build's or a lease's id as a client names it. */
export function checkId(m: string, field: string, id: string): void {
  checkText(m, field, id, MAX_ID, { required: true, printable: true });
}

export function checkLeaseHostSteps(buildId: string, maxSteps: number, waitMs: number): void {
  const m = "LeaseHostSteps";
  checkId(m, "build_id", buildId);
  checkInt(m, "max_steps", maxSteps, 0, MAX_SLOTS);
  checkInt(m, "wait_ms", waitMs, 0, MAX_WAIT_MS);
}

export function checkReportHostStep(buildId: string, leaseId: string, contextRoot: Digest | undefined): void {
  const m = "ReportHostStep";
  checkId(m, "build_id", buildId);
  checkId(m, "lease_id", leaseId);
  if (contextRoot) checkDigest(m, "context_root", contextRoot);
}
