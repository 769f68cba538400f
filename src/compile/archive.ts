// Reads `ar` and `ranlib` argv once: the operation and its modifiers, the archive, the members, the plugin and output options.

/** One word of argv and where it sits. */
export interface Word {
  text: string;
  index: number;
}

export interface ArCall {
  /** The operation word without its leading dash (`rcs`), undefined when there is none. */
  op?: string;
  /** The op is letters GNU ar knows (`dmpqrstx` plus modifiers). */
  knownOp: boolean;
  /** Words after the op that are not options, in order (`@file` words included): relpos/count, then the archive, then members. */
  operands: Word[];
  /** The archive: the first operand after the relpos (a/b/i) and count (N) ones. */
  archive?: Word;
  members: Word[];
  /** `--plugin` words (a plugin to load). */
  plugins: Word[];
  /** `--output DIR`/`--output=DIR` values: where `x` extracts to. `start` is where the path starts in its argument. */
  outputDirs: (Word & { start: number })[];
}

/** `ar [--plugin P] [--target T] [--output D] [-]op[mods] [relpos] [count] archive members…`. */
export function parseAr(argv: readonly string[]): ArCall {
  const call: ArCall = { knownOp: false, operands: [], members: [], plugins: [], outputDirs: [] };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--plugin" || a.startsWith("--plugin=")) {
      call.plugins.push({ text: a, index: i });
      if (a === "--plugin") i++;
    } else if (a === "--target") i++;
    else if (a.startsWith("--output=")) call.outputDirs.push({ text: a, index: i, start: "--output=".length });
    else if (a === "--output" && i + 1 < argv.length) call.outputDirs.push({ text: argv[++i]!, index: i, start: 0 });
    else if (a.startsWith("--")) continue;
    else if (call.op === undefined) call.op = a.replace(/^-/, "");
    else call.operands.push({ text: a, index: i });
  }
  if (call.op === undefined) return call;
  call.knownOp = /^[dmpqrstxcfouvSTDUlPNabiVO]+$/.test(call.op);
  // a/b/i name a position member and N a count, each one word before the archive.
  const skip = (/[abi]/.test(call.op) ? 1 : 0) + (call.op.includes("N") ? 1 : 0);
  const positional = call.operands.filter((w) => !w.text.startsWith("@"));
  call.archive = positional[skip];
  call.members = call.archive ? positional.slice(skip + 1) : [];
  return call;
}

/** Builds or updates an archive from members (`r`, `q`); `s` alone only writes its index. */
export function arWritesArchive(call: ArCall): "members" | "index" | undefined {
  if (!call.knownOp || call.op === undefined || call.archive === undefined) return undefined;
  if (/[rq]/.test(call.op)) return "members";
  if (call.op.replace(/[cuvSDU]/g, "") === "s" && call.members.length === 0) return "index";
  return undefined;
}

export interface RanlibCall {
  /** The archives it rewrites in place. */
  archives: Word[];
  /** `@file` words. */
  responseFiles: Word[];
  /** `--plugin` words (a plugin to load). */
  plugins: Word[];
}

export function parseRanlib(argv: readonly string[]): RanlibCall {
  const call: RanlibCall = { archives: [], responseFiles: [], plugins: [] };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--plugin" || a.startsWith("--plugin=")) {
      call.plugins.push({ text: a, index: i });
      if (a === "--plugin") i++;
    } else if (a.startsWith("@")) call.responseFiles.push({ text: a, index: i });
    else if (!a.startsWith("-")) call.archives.push({ text: a, index: i });
  }
  return call;
}
