// Plans one recipe line make hands its shell: prefix each build-tool call with Orion's client (rewrite), run the whole line as a cached step, or leave it to /bin/sh (fallback).
import { posix } from "node:path";
import { splitLine, type JoinOp, type LinePart } from "./scan.js";
import { simpleCommand, type SimpleCommand } from "./simple.js";
import { programIndex, programKind } from "./programs.js";
import { staticPrintf } from "./printf.js";

/** A build-tool call the rewritten line will make through the wrapper. */
export interface ToolCall {
  /** The tool's argv, quotes removed. */
  argv: string[];
  /** The directory it runs in, following the line's `cd` parts; undefined when a part before it may have changed it in a way not followed here. */
  cwd: string | undefined;
  /** The argv holds unquoted glob words the shell will expand (the wrapper gets the expanded argv). */
  glob: boolean;
}

/** A line that is one tool call, after what its printf parts print (to stdout, or stderr with `1>&2`). */
export interface DirectCall extends ToolCall {
  prelude?: { out: Buffer; err: Buffer };
}

export type LinePlan =
  /**
   * Run `line` with /bin/sh instead: every build-tool call in it is prefixed with the wrapper. `direct`: the line is
   * that one call and nothing else (after `cd DIR &&` parts at most: no redirection, assignment or glob), so the build
   * may run the call itself and answer for the whole line, without a shell.
   */
  | { kind: "rewrite"; line: string; tools: ToolCall[]; direct?: DirectCall }
  /** Run the line as one cached host step: it runs a program worth caching as a whole and no tool call was rewritten. */
  | { kind: "step" }
  /** Run the line with /bin/sh as it is: only cheap programs, or a sub-make, or nothing this plan understands. */
  | { kind: "fallback" };

export interface PlanOptions {
  /** The directory make runs the line in. */
  cwd: string;
  /** Reads a file (CMake's link scripts); undefined when it cannot be read. */
  readFile(absPath: string): string | undefined;
  /** The path of the client each tool call is prefixed with. */
  wrapper: string;
}

/** Programs that may change the shell's directory in a way the plan does not follow (or that run unknown code in the shell itself). */
const CWD_CHANGERS: ReadonlySet<string> = new Set(["cd", "pushd", "popd", ".", "source", "eval"]);

/** A text change to the line: [start, end) replaced by text (an insertion when start === end). */
interface Edit {
  start: number;
  end: number;
  text: string;
}

/** What the parts seen so far add up to. */
interface Plan {
  cwd: string | undefined;
  edits: Edit[];
  tools: ToolCall[];
  make: boolean;
  costly: boolean;
}

/**
 * Plans one command string (already expanded by make). A part that is a simple command running a build tool gets
 * the wrapper inserted before its program word, the rest of the text left byte-identical; `cmake -E
 * cmake_link_script FILE` becomes FILE's lines joined by `&&` in a `{ …; }` group, each rewritten the same way.
 * Without a rewritten call, a line running make falls back (the sub-make's lines must reach the shim again), a line
 * running anything not cheap (a script, a configure, a generator, a compiler inside a loop or pipeline) is a step.
 */
export function planLine(line: string, opts: PlanOptions): LinePlan {
  const { parts, complete } = splitLine(line);
  // An unclosed quote or group: let sh report it.
  if (!complete) return { kind: "fallback" };
  const plan: Plan = { cwd: opts.cwd, edits: [], tools: [], make: false, costly: false };
  for (const part of parts) {
    const cmd = simpleCommand(part);
    if (cmd !== undefined) {
      if (cmd.words.length > 0) planSimple(part, cmd, plan, opts);
      continue;
    }
    // Automake's `depbase=…;\ gcc … -MF $depbase.Tpo -c -o x.o x.c`: the arguments expand, the program does not, so
    // the call can still be prefixed (sh expands the rest before the wrapper sees it).
    const loose = simpleCommand(part, { expansions: true });
    if (loose && !loose.commandExpands && loose.words.length > 0 && programKind(loose.words.slice(programIndex(loose.words))) === "tool") {
      planSimple(part, { ...loose, glob: true }, plan, opts);
    } else judgeCompound(part, plan);
  }
  if (plan.tools.length > 0) {
    const direct = plan.tools.length === 1 ? onlyCall(parts, plan.tools[0]!) : undefined;
    return { kind: "rewrite", line: applyEdits(line, plan.edits), tools: plan.tools, ...(direct ? { direct } : {}) };
  }
  return plan.costly && !plan.make ? { kind: "step" } : { kind: "fallback" };
}

function planSimple(part: LinePart, cmd: SimpleCommand, plan: Plan, opts: PlanOptions): void {
  const k = programIndex(cmd.words);
  const argv = cmd.words.slice(k);
  if (k === 0 && argv[0] === "cd") {
    plan.cwd = cdTarget(argv, cmd.glob, part.op, plan.cwd);
    return;
  }
  if (isLinkScript(argv) && linkScript(part, cmd, argv[3]!, plan, opts)) return;
  const kind = programKind(argv);
  if (kind === "tool") {
    plan.edits.push({ start: cmd.wordOffsets[k]!, end: cmd.wordOffsets[k]!, text: `${shellQuote(opts.wrapper)} ` });
    plan.tools.push({ argv, cwd: plan.cwd, glob: cmd.glob });
  } else if (kind === "make") plan.make = true;
  else if (kind === "costly") plan.costly = true;
  if (CWD_CHANGERS.has(argv[0]!)) plan.cwd = undefined;
}

/**
 * The line as one tool call, when it is `[cd DIR && | printf … [1>&2] ; …] TOOL ARGS` and nothing else: every part a
 * plain simple command (no assignment or glob), the ones before the last a `cd` joined by `&&` or a printf whose
 * output is known without running it (redirected to stderr at most), the last the tool call itself, unredirected.
 */
function onlyCall(parts: readonly LinePart[], tool: ToolCall): DirectCall | undefined {
  if (tool.glob || tool.cwd === undefined) return undefined;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  for (const [i, part] of parts.entries()) {
    const cmd = simpleCommand(part);
    if (!cmd || cmd.assignments.length > 0 || cmd.glob || cmd.words.length === 0) return undefined;
    const ops = part.tokens.filter((t) => t.kind === "op");
    if (i === parts.length - 1) {
      return ops.length === 0 && programIndex(cmd.words) === 0 && cmd.words.join("\0") === tool.argv.join("\0")
        ? { ...tool, ...(out.length || err.length ? { prelude: { out: Buffer.concat(out), err: Buffer.concat(err) } } : {}) }
        : undefined;
    }
    if (cmd.words[0] === "cd" && part.op === "&&" && ops.length === 0) continue;
    const printed = cmd.words[0] === "printf" && (part.op === ";" || part.op === "&&") ? staticPrintf(cmd.words) : undefined;
    const to = printed && outputOf(part);
    if (!to) return undefined;
    (to === "err" ? err : out).push(printed);
  }
  return undefined;
}

/** Where a printf part's output goes: "out" unredirected, "err" with `>&2` or `1>&2` alone; undefined otherwise. */
function outputOf(part: LinePart): "out" | "err" | undefined {
  const t = part.tokens;
  const at = t.findIndex((x) => x.kind === "op");
  if (at < 0) return "out";
  if (t.filter((x) => x.kind === "op").length !== 1 || t[at]!.value !== ">&" || t[at + 1]?.value !== "2" || at + 2 !== t.length) return undefined;
  const before = t[at - 1];
  return !before?.ioNumber || before.value === "1" ? "err" : undefined;
}

/** A part that is not a simple command: judged by every program name found in it, best effort. */
function judgeCompound(part: LinePart, plan: Plan): void {
  let movesCwd = false;
  for (const p of part.programs) {
    movesCwd ||= p.expands || CWD_CHANGERS.has(p.word);
    // An expanded name could be anything; a tool inside a loop or pipeline runs with the line, uncached by tool.
    const kind = p.expands ? "costly" : programKind([p.word]);
    if (kind === "make") plan.make = true;
    else if (kind !== "cheap") plan.costly = true;
  }
  if (movesCwd && !isSubshell(part)) plan.cwd = undefined;
}

/** The part is one `( … )` subshell (with redirections after it): nothing in it changes the line's directory. */
function isSubshell(part: LinePart): boolean {
  const tokens = part.tokens;
  if (tokens[0]?.kind !== "op" || tokens[0].value !== "(") return false;
  for (let k = 1; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.depth > 0 || t.ioNumber) continue;
    if (t.kind === "op" && t.value !== "|" && t.value !== "(" && t.value !== ")") k++;
    else return false;
  }
  return true;
}

/** The directory after a `cd` part, or undefined when it cannot be told. */
function cdTarget(argv: readonly string[], glob: boolean, op: JoinOp | undefined, cwd: string | undefined): string | undefined {
  // In the background the cd runs in a subshell; after `||` what follows runs whether or not it moved.
  if (op === "&") return cwd;
  if (op === "||") return undefined;
  const args = argv.slice(1);
  while (args[0] === "-L" || args[0] === "-P") args.shift();
  if (args[0] === "--") args.shift();
  const dir = args[0];
  if (args.length !== 1 || dir === undefined || dir === "" || dir === "-" || glob) return undefined;
  if (posix.isAbsolute(dir)) return posix.normalize(dir);
  return cwd === undefined ? undefined : posix.resolve(cwd, dir);
}

function isLinkScript(argv: readonly string[]): boolean {
  return (
    posix.basename(argv[0]!) === "cmake" &&
    argv[1] === "-E" &&
    argv[2] === "cmake_link_script" &&
    argv.length >= 4 &&
    argv.slice(4).every((a) => a.startsWith("--verbose"))
  );
}

/**
 * Replaces a `cmake -E cmake_link_script FILE` part (which runs FILE's lines one by one, without a shell, stopping
 * at the first failure) by those lines joined with `&&`, each tool call rewritten. False (the part stays, judged as
 * a costly program) when FILE cannot be read, a line is not a plain simple command, or the part has more than words.
 */
function linkScript(part: LinePart, cmd: SimpleCommand, file: string, plan: Plan, opts: PlanOptions): boolean {
  if (cmd.assignments.length > 0 || cmd.glob || part.tokens.length !== cmd.words.length) return false;
  const path = posix.isAbsolute(file) ? file : plan.cwd === undefined ? undefined : posix.resolve(plan.cwd, file);
  const content = path === undefined ? undefined : opts.readFile(path);
  if (content === undefined) return false;
  const lines: string[] = [];
  const tools: ToolCall[] = [];
  for (const raw of content.split("\n")) {
    const text = raw.trim();
    if (text === "") continue;
    const { parts, complete } = splitLine(text);
    const sc = parts.length === 1 && complete ? simpleCommand(parts[0]!) : undefined;
    // Without a shell, `*` or `X=1` would reach the program as they are: only plain commands keep their meaning.
    if (sc === undefined || sc.words.length === 0 || sc.glob || sc.assignments.length > 0) return false;
    if (programKind(sc.words) !== "tool") {
      lines.push(text);
      continue;
    }
    const at = sc.commandOffset!;
    lines.push(`${text.slice(0, at)}${shellQuote(opts.wrapper)} ${text.slice(at)}`);
    tools.push({ argv: sc.words, cwd: plan.cwd, glob: false });
  }
  if (tools.length === 0) return false;
  plan.edits.push({ start: part.start, end: part.end, text: `{ ${lines.join(" && ")}; }` });
  plan.tools.push(...tools);
  return true;
}

/** Quotes a word for /bin/sh, always in single quotes (so a rewritten call is easy to spot in a log). */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function applyEdits(line: string, edits: Edit[]): string {
  const sorted = [...edits].sort((a, b) => a.start - b.start);
  let out = "";
  let at = 0;
  for (const e of sorted) {
    out += line.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + line.slice(at);
}
