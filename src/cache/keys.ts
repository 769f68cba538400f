// Action keys (DESIGN.md, Contract "Action keys"): what enters a compile's two-level key and a link's key, plus the depfile and -l parsing that feed them.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { KeyHasher, digestKey, type Digest } from "../core/digest.js";
import { embedsCwd, parseDriver, type DriverCall } from "../compile/index.js";
import type { Toolchain } from "./toolchain.js";

/**
 * Version of everything that enters a key below. Change it when you change the
 * inputs (a new field, a different encoding, a different normalization): an
 * old key must never name a result computed under other rules.
 */
export const KEY_VERSION = 2;

/**
 * The only environment variables that enter a key, because they change what
 * the compiler or linker produces: include and library search paths, where
 * the driver finds its programs, the timestamp baked into __DATE__/__TIME__.
 * LANG and LC_* are here because they change the language of diagnostics,
 * which are part of the cached result (stderr). PATH is deliberately absent:
 * the programs it leads to are hashed into the toolchain digest instead.
 */
export const KEY_ENV_ALLOWLIST: readonly string[] = [
  "CPATH",
  "C_INCLUDE_PATH",
  "CPLUS_INCLUDE_PATH",
  "LIBRARY_PATH",
  "GCC_EXEC_PREFIX",
  "COMPILER_PATH",
  "SOURCE_DATE_EPOCH",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "LC_MESSAGES",
];

/** The allowlisted variables that are set, sorted by name. */
export function keyEnv(env: Record<string, string | undefined>): [string, string][] {
  const out: [string, string][] = [];
  for (const name of KEY_ENV_ALLOWLIST) {
    const v = env[name];
    if (v !== undefined) out.push([name, v]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** argv[0] becomes `toolchain:<digest>`; nothing else is rewritten (a rewrite that is wrong once hands out a wrong object). */
export function normalizeArgv(argv: readonly string[], toolchain: Pick<Toolchain, "digest">): string[] {
  return [`toolchain:${toolchain.digest}`, ...argv.slice(1)];
}

/**
 * The working directory as it enters a key: relative to the project root, or
 * absolute when the output embeds it — debug info without a prefix map that
 * covers the cwd — as ccache's hash_dir does.
 */
export function keyWorkingDir(args: Pick<DriverCall, "hasDebugInfo" | "debugPrefixMapFrom"> | undefined, cwdRel: string, cwdAbs: string): string {
  return args !== undefined && embedsCwd(args, cwdAbs) ? cwdAbs : cwdRel;
}

function addCommon(h: KeyHasher, kind: string, toolchain: string, argv: readonly string[], workingDir: string, env: readonly [string, string][]): void {
  h.add("orion-key-version", KEY_VERSION)
    .add("kind", kind)
    .add("toolchain", toolchain)
    .addList("argv", argv)
    .add("cwd", workingDir)
    .addList("env", [...env].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([k, v]) => `${k}=${v}`));
}

function byPath<T extends { path: string }>(a: T, b: T): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

export interface CompileLevel1Input {
  /** Toolchain digest. */
  toolchain: string;
  /** Normalized argv (normalizeArgv). */
  argv: string[];
  /** keyWorkingDir's answer. */
  workingDir: string;
  /** keyEnv's answer. */
  env: [string, string][];
  sourceDigest: Digest;
  /** Digests of `-include`/`-imacros` files, in argv order. */
  forcedIncludeDigests?: Digest[];
}

export function compileLevel1Key(input: CompileLevel1Input): string {
  const h = new KeyHasher();
  addCommon(h, "compile-level1", input.toolchain, input.argv, input.workingDir, input.env);
  h.add("source", digestKey(input.sourceDigest));
  h.addList("forced-includes", (input.forcedIncludeDigests ?? []).map(digestKey));
  return h.hex();
}

/**
 * Level 2 = level 1 + the digest of every header one earlier run's depfile
 * named + which shadowing candidates exist (shadowProbes), so a new header
 * that would be found before a recorded one makes a different key.
 */
/**
 * A manifest entry's digest for a header that was looked for and not found (a depgen's missing `<header>`): the
 * look-up matches it only while the path still does not exist.
 */
export const ABSENT_HEADER: Digest = Object.freeze({ hash: "absent", sizeBytes: 0 });

export function isAbsentHeader(d: Digest | undefined): boolean {
  return d !== undefined && d.hash === ABSENT_HEADER.hash && d.sizeBytes === 0;
}

export function compileLevel2Key(
  level1: string,
  headers: readonly { path: string; digest: Digest }[],
  probes: readonly string[] = [],
): string {
  const h = new KeyHasher().add("orion-key-version", KEY_VERSION).add("kind", "compile-level2").add("level1", level1);
  const sorted = [...headers].sort(byPath);
  h.add("headers", sorted.length);
  for (const { path, digest } of sorted) h.add("path", path).add("digest", digestKey(digest));
  h.addList("probes", [...new Set(probes)].sort());
  return h.hex();
}

/**
 * The files that could shadow a recorded header: for each header (tree path)
 * every name it may have been included by (its basename, and its path below
 * each search dir that holds it), looked up in every search dir and in every
 * recorded header's own dir (quoted includes search the includer's dir). The
 * answer lists the candidates that exist; the recorded headers themselves are
 * among them. A new `inc/string.h` in front of a recorded `lib/string.h`
 * changes the list, hence the key. Directory listings would do the same but
 * change whenever a build writes an object next to a source; this does not.
 */
export function shadowProbes(headers: readonly string[], searchDirs: readonly string[], exists: (path: string) => boolean): string[] {
  const dirs = new Set(searchDirs.map((d) => (d === "." ? "" : d)));
  for (const h of headers) {
    const slash = h.lastIndexOf("/");
    dirs.add(slash < 0 ? "" : h.slice(0, slash));
  }
  const found = new Set<string>();
  for (const h of headers) {
    const names = new Set<string>([h.slice(h.lastIndexOf("/") + 1)]);
    for (const d of dirs) if (d === "" || h.startsWith(`${d}/`)) names.add(d === "" ? h : h.slice(d.length + 1));
    for (const n of names) {
      for (const d of dirs) {
        const p = d === "" ? n : `${d}/${n}`;
        if (exists(p)) found.add(p);
      }
    }
  }
  return [...found].sort();
}

export interface LinkKeyInput {
  /** Toolchain digest (for archives, the digest of `ar`). */
  toolchain: string;
  argv: string[];
  workingDir: string;
  env: [string, string][];
  /** Every input named in argv and each resolved -l library. */
  inputs: { path: string; digest: Digest }[];
}

/** Link and archive keys: argv plus the digests of their inputs, so an unchanged object stops a rebuild (early cutoff). */
export function linkKey(input: LinkKeyInput): string {
  const h = new KeyHasher();
  addCommon(h, "link", input.toolchain, input.argv, input.workingDir, input.env);
  const seen = new Set<string>();
  const sorted = [...input.inputs].sort(byPath).filter((i) => !seen.has(i.path) && !!seen.add(i.path));
  h.add("inputs", sorted.length);
  for (const { path, digest } of sorted) h.add("path", path).add("digest", digestKey(digest));
  return h.hex();
}

/**
 * Resolves each `-lfoo` (and `-l:file`) as ld does: the -L dirs in order
 * (relative ones against cwdAbs), then `searchDirs`; libfoo.so before
 * libfoo.a unless -static. Unresolved names are skipped. Known gap:
 * `-Wl,-Bstatic` toggles are not followed.
 */
export function resolveLibraries(argv: readonly string[], cwdAbs: string, searchDirs: readonly string[]): string[] {
  const { libraryDirs: libDirs, libraries: libs, isStatic } = parseDriver(argv);
  const dirs = [...libDirs.map((d) => resolve(cwdAbs, d)), ...searchDirs.map((d) => resolve(cwdAbs, d))];
  const found: string[] = [];
  for (const lib of libs) {
    const names = lib.startsWith(":") ? [lib.slice(1)] : isStatic ? [`lib${lib}.a`] : [`lib${lib}.so`, `lib${lib}.a`];
    const hit = dirs.flatMap((d) => names.map((n) => resolve(d, n))).find((p) => existsSync(p));
    if (hit && !found.includes(hit)) found.push(hit);
  }
  return found;
}

/**
 * Parses a make-style depfile: backslash-newline continuations, `\ ` and `\#`
 * escapes, `$$`, several rules (other backslashes are literal). The targets are those of the first rule; deps
 * are gathered from every rule naming one of them. Rules without deps (the
 * phony `header.h:` rules -MP adds) are ignored.
 */
/** The rules of a make-style dependency text: its logical lines (continuations joined) that have a `target:`. */
export function depfileRules(text: string): string[] {
  return text
    .replace(/\r\n/g, "\n")
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((line) => splitWords(line).some((w) => w.kind === "colon"));
}

/** Every prerequisite named by any rule of a make-style dependency text (`-M`/`-MM` over many sources writes one rule each), first mention first. */
export function depfileInputs(text: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const line of depfileRules(text)) {
    const words = splitWords(line);
    const colon = words.findIndex((w) => w.kind === "colon");
    for (const w of words.slice(colon + 1)) if (w.kind === "word" && !seen.has(w.text)) seen.add(w.text), out.push(w.text);
  }
  return out;
}

export function parseDepfile(text: string): { targets: string[]; deps: string[] } {
  const rules: { targets: string[]; deps: string[] }[] = [];
  for (const line of depfileRules(text)) {
    const words = splitWords(line);
    const colon = words.findIndex((w) => w.kind === "colon");
    const targets = words.slice(0, colon).map((w) => w.text);
    const deps = words.slice(colon + 1).filter((w) => w.kind === "word").map((w) => w.text);
    if (targets.length > 0) rules.push({ targets, deps });
  }
  const first = rules.find((r) => r.deps.length > 0) ?? rules[0];
  if (!first) return { targets: [], deps: [] };
  const targets = first.targets;
  const deps: string[] = [];
  const seen = new Set<string>();
  for (const r of rules) {
    if (!r.targets.some((t) => targets.includes(t))) continue;
    for (const d of r.deps) if (!seen.has(d)) seen.add(d), deps.push(d);
  }
  return { targets, deps };
}

type Word = { kind: "word" | "colon"; text: string };

/** Splits one logical depfile line into words and the first rule-separating colon (a `:` followed by whitespace or end of line, so `C:\x` and `a::b` stay words). */
function splitWords(line: string): Word[] {
  const words: Word[] = [];
  let cur = "";
  let sawColon = false;
  const flush = (): void => {
    if (cur !== "") words.push({ kind: "word", text: cur });
    cur = "";
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    const next = line[i + 1];
    if (c === "\\" && (next === " " || next === "#")) {
      // gcc writes `\ ` for a space and `\#` for '#'; any other backslash is literal.
      cur += next;
      i++;
    } else if (c === "$" && next === "$") {
      cur += "$";
      i++;
    } else if (c === " " || c === "\t") {
      flush();
    } else if (c === ":" && !sawColon && (next === undefined || next === " " || next === "\t")) {
      flush();
      words.push({ kind: "colon", text: ":" });
      sawColon = true;
    } else {
      cur += c;
    }
  }
  flush();
  return words;
}
