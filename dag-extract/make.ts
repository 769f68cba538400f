// Extracts a build graph from a Makefile by parsing `make -n -w` (the commands make would run, in a valid serial order) and classifying each command.
//
// The result is conservative by construction. Compiles, archives and links whose
// files are all visible in argv become cacheable actions ordered by the files they
// share. Every other line (shell syntax, code generators, dependency generation,
// in-place updates) becomes a host step that is a barrier: it waits for every earlier
// command and every later command waits for it. make's printed order is a valid serial
// order of the whole build, so putting barriers around steps Orion cannot see into is
// always safe; it only costs parallelism across them.
//
// Known limits of `make -n`: make still runs any recipe line that mentions $(MAKE)
// (recursive makes, and also anything else on that line) and every $(shell ...) while
// parsing; the `@`, `-` and `+` prefixes are not printed, so a host step for a `-cmd`
// line fails where make would have ignored the error; and what make prints assumes
// earlier commands succeeded and files' current timestamps (use `always` for -B).

import { existsSync } from "node:fs";
import { realpath } from "node:fs/promises";
import path from "node:path";
import { execFile } from "node:child_process";
import { classify, withExplicitOutput } from "./classify.js";
import { commandId, linkDependencies } from "./deps.js";
import { ExtractError } from "./errors.js";
import type { BuildGraph, GraphCommand } from "./graph.js";
import { rootRelative, rootRelativeDir } from "./paths.js";
import { splitShellWords } from "./shell-words.js";

export { ExtractError } from "./errors.js";

export interface ExtractMakeOptions {
  /** Extra arguments for make: targets, `VAR=value` overrides, `-f file`. */
  makeArgs?: string[];
  /** Pass -B, so make lists every command as if nothing were up to date. */
  always?: boolean;
  /** The make program; default "make". */
  make?: string;
  /** The environment make runs in; default process.env (make's own variables are removed either way). */
  env?: NodeJS.ProcessEnv;
}

/** One command make printed, with the directory it would run in. */
export interface MakeLine {
  /** Absolute directory, from the innermost "Entering directory" message. */
  dir: string;
  /** The command text; continued lines keep their backslash-newline, as the shell receives them. */
  line: string;
}

/**
 * Variables a parent make exports to children; inherited (when Orion itself runs under
 * make, e.g. `make test`) they would add flags, jobserver fds or a MAKELEVEL to our dry run.
 */
export const PARENT_MAKE_VARS = ["MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR"];

export async function extractMake(root: string, options: ExtractMakeOptions = {}): Promise<BuildGraph> {
  const absRoot = await realpath(path.resolve(root)).catch((cause: unknown) => {
    throw new ExtractError(`cannot read build directory ${root}`, { cause });
  });
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), LC_ALL: "C" };
  for (const name of PARENT_MAKE_VARS) delete env[name];

  const make = options.make ?? "make";
  const args = ["-n", "-w", ...(options.always ? ["-B"] : []), ...(options.makeArgs ?? [])];
  // node:child_process rather than execa here: this runs on every build, including the no-op one,
  // and loading execa alone costs ~190 ms of the 0.3 s a no-op may take.
  const result = await new Promise<{ exitCode: number | undefined; stdout: string; stderr: string; error?: Error }>((resolve) => {
    execFile(make, args, { cwd: absRoot, env, maxBuffer: 256 * 1024 * 1024, encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : undefined) : 0;
      resolve({ exitCode: code, stdout, stderr, error: error ?? undefined });
    }).stdin?.end();
  });
  if (result.exitCode !== 0) {
    const detail = result.stderr.trim() || (result.error?.message ?? "");
    throw new ExtractError(`${make} -n failed in ${absRoot}: ${firstLine(detail)}`, {
      stderr: result.stderr,
      exitCode: result.exitCode,
    });
  }
  const lines = parseMakeDryRun(result.stdout, absRoot);
  return { root: absRoot, source: "make", commands: commandsFromMakeLines(absRoot, lines) };
}

const DIRECTORY_MESSAGE = /^[^\s:]*make(?:\[\d+\])?: (Entering|Leaving) directory [`'](.*)'$/;
const MAKE_MESSAGE = /^[^\s:]*make(?:\[\d+\])?: /;
/** make's own error line (`make[3]: *** No rule to make target 'x'.  Stop.`). */
const MAKE_ERROR = /^[^\s:]*make(?:\[\d+\])?: \*\*\* /;
/** A command that starts a make (`make -C sub`, `cd sub && /usr/bin/make x`). */
export const RUNS_MAKE = /(?:^|[\s;&|(])(?:\S*\/)?g?make(?:\s|$)/;

/**
 * Turns `make -n -w` stdout into commands with their directories. A printed make
 * invocation that is immediately followed by a nested "Entering directory" was a
 * recursive make that -n ran, and its commands follow; it is dropped so the sub-build
 * does not run twice. A make line with no nested output (a literal `make` that -n did
 * not run) stays a command.
 */
export function parseMakeDryRun(stdout: string, root: string): MakeLine[] {
  const out: MakeLine[] = [];
  // One frame per directory entered; `recursion` is the make line the nested output replaced, if any.
  const frames: { dir: string; recursion?: MakeLine; printedAt: number; failed: boolean }[] = [];
  const raw = stdout.split("\n");
  // The index in `out` of a make invocation that nested output may still claim.
  let pendingRecursion: number | undefined;

  for (let i = 0; i < raw.length; i++) {
    let text = raw[i]!;
    const dirMessage = DIRECTORY_MESSAGE.exec(text);
    if (dirMessage) {
      if (dirMessage[1] === "Entering") {
        let recursion: MakeLine | undefined;
        if (frames.length > 0 && pendingRecursion !== undefined) recursion = out.splice(pendingRecursion, 1)[0];
        frames.push({ dir: dirMessage[2]!, recursion, printedAt: out.length, failed: false });
      } else {
        const frame = frames.pop();
        // The sub-make printed nothing and failed — its makefile does not exist yet (a configure step
        // earlier in the build writes it): the make line stays, to run on the host in its turn.
        // (make's error goes to stderr, which is read separately: a directory without a makefile says the same.)
        if (frame?.recursion && out.length === frame.printedAt && (frame.failed || !hasMakefile(frame.dir))) out.push(frame.recursion);
      }
      pendingRecursion = undefined;
      continue;
    }
    if (MAKE_MESSAGE.test(text)) {
      if (MAKE_ERROR.test(text) && frames.length > 0) frames.at(-1)!.failed = true;
      continue;
    }
    while (endsWithContinuation(text) && i + 1 < raw.length) text += "\n" + raw[++i]!;
    if (text.trim() === "") continue;
    out.push({ dir: frames.at(-1)?.dir ?? root, line: text });
    pendingRecursion = RUNS_MAKE.test(text) ? out.length - 1 : undefined;
  }
  return out;
}

function hasMakefile(dir: string): boolean {
  return ["GNUmakefile", "makefile", "Makefile"].some((name) => existsSync(path.join(dir, name)));
}

function endsWithContinuation(text: string): boolean {
  const trailing = /\\*$/.exec(text)![0].length;
  return trailing % 2 === 1;
}

/** Classifies each printed command and wires the dependencies between them. */
function commandsFromMakeLines(root: string, lines: readonly MakeLine[]): GraphCommand[] {
  const commands = lines.map((l, index) => makeCommand(root, l, commandId(index)));
  linkDependencies(commands);
  return commands;
}

/**
 * A message printed before the real command on the same line — Redis's quiet mode runs
 * `printf '    CC foo.o' 1>&2;cc ... -c foo.c` — says nothing about what the command reads or
 * writes: the command after it is classified on its own (the message is not replayed).
 * Returns undefined unless the part before the first unquoted `;` is a plain echo/printf,
 * at most redirected to stderr.
 */
export function afterEchoPrefix(line: string): string | undefined {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === "\\" && quote === '"') i++;
      continue;
    }
    if (ch === "\\") {
      i++;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      continue;
    }
    if (ch === "&" && line[i - 1] === ">") continue; // the `1>&2` of a message sent to stderr
    if (ch === "&" || ch === "|" || ch === "`" || ch === "(" || ch === "<") return undefined;
    if (ch === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return undefined; // a comment: sh runs nothing after it
    if (ch !== ";") continue;
    const head = line.slice(0, i).trim().replace(/\s+(1?>&2)$/, "");
    const rest = line.slice(i + 1).trim();
    const { words, needsShell } = splitShellWords(head);
    if (needsShell || (words[0] !== "printf" && words[0] !== "echo") || rest === "") return undefined;
    return rest;
  }
  return undefined;
}

function makeCommand(root: string, { dir, line: fullLine }: MakeLine, id: string): GraphCommand {
  const cwd = rootRelativeDir(root, dir);
  const absCwd = path.resolve(root, cwd);
  // A printed message before a tool command does not make it a script (see afterEchoPrefix).
  const afterEcho = afterEchoPrefix(fullLine);
  const split = afterEcho === undefined ? undefined : splitShellWords(afterEcho);
  const line = split && !split.needsShell ? afterEcho! : fullLine;
  const { words, needsShell } = split && !split.needsShell ? split : splitShellWords(fullLine);
  const hostStep = (kind: GraphCommand["kind"]): GraphCommand => ({
    id,
    kind,
    label: `RUN ${oneLine(fullLine).slice(0, 60)}`,
    cwd,
    argv: ["/bin/sh", "-c", fullLine],
    line: fullLine,
    inputs: [],
    outputs: [],
    deps: [],
    host: true,
  });
  if (needsShell) return hostStep("script");
  if (!afterEcho && (words[0] === "echo" || words[0] === "printf")) return { ...hostStep("other"), printsOnly: true };

  const c = classify(words, (p) => existsSync(path.resolve(absCwd, p)));
  if (c.kind !== "compile" && c.kind !== "archive" && c.kind !== "link") return hostStep(c.kind);
  const inputs = c.inputs.map((p) => rootRelative(root, cwd, p));
  const outputs = c.outputs.map((p) => rootRelative(root, cwd, p));
  // An in-place update (ranlib) reads what it writes, and a sandbox cannot write outside
  // the tree; both run as host steps in the real tree.
  if (outputs.length === 0 || outputs.some((o) => inputs.includes(o) || path.isAbsolute(o))) return hostStep(c.kind);

  const main = outputs[0]!;
  const verb = c.kind === "compile" ? (c.cxx ? "CXX" : "CC") : c.kind === "archive" ? "AR" : "LINK";
  return { id, kind: c.kind, label: `${verb} ${main}`, cwd, argv: withExplicitOutput(words, c), line, inputs, outputs, deps: [], host: false };
}

function oneLine(text: string): string {
  return text.replace(/\\\n/g, " ").replace(/\s+/g, " ").trim();
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}
