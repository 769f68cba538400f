// Reads what a host step touched from an `strace -f` log: the files it read, the names it looked for
// and did not find, the directories it listed, and what it wrote or removed — the facts a whole-step
// cache needs (DESIGN.md, Redis issue: "cached as one action when Orion knows everything it reads").
//
// The log holds one line per system call of every process of the step, in the order they returned.
// Paths are resolved against the calling process's working directory (inherited across fork, changed
// by chdir) or the directory a `*at` call's fd was opened on. Anything the parser cannot place — an fd
// it never saw opened, a process whose parent it does not know — makes the step untraceable, so the
// caller runs it every time rather than risk a wrong hit.
import path from "node:path";
import type { TreeEntry } from "../merkle/index.js";

/**
 * The system calls the tracer asks strace for: file access (the stat family too — make decides what is up to date by
 * stat alone, so a file it only stat'ed is an input like one it read), changes, and process creation.
 */
export const TRACED_SYSCALLS = [
  "open", "openat", "openat2", "creat", "execve", "execveat", "access", "faccessat", "faccessat2",
  "stat", "lstat", "newfstatat", "statx", "truncate", "chmod", "fchmodat",
  "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2", "mkdir", "mkdirat",
  "symlink", "symlinkat", "link", "linkat", "chdir", "fchdir",
  "clone", "clone3", "fork", "vfork",
  // Only to follow directory fds that are copied (rm -r walks a tree through a dup of the fd it opened).
  "dup", "dup2", "dup3", "fcntl",
];

/** One access, in the order the step made it. */
export type Access =
  /** Opened for reading, or executed: its content matters. */
  | { op: "read"; path: string }
  /** Opened for writing; `fresh` when the old content cannot matter (truncated or exclusively created). */
  | { op: "write"; path: string; fresh: boolean }
  /** Listed (opened as a directory). */
  | { op: "list"; path: string }
  /** Looked for and not found. */
  | { op: "absent"; path: string }
  /** Checked for and found (access(), mkdir on an existing name): its existence matters, not its content. */
  | { op: "present"; path: string }
  /** Removed (unlink, rmdir, the old name of a rename). */
  | { op: "remove"; path: string }
  /** Created as a directory or a symlink. */
  | { op: "make"; path: string };

export interface TraceResult {
  accesses: Access[];
  /**
   * The content files changed in place had when the step started, by absolute path (the preload tracer hashes a file
   * when a process opens it to change it, before any process of the step wrote to it): what a step that reads and then
   * rewrites a file (`touch release.c`) is keyed by, which nobody else saw before the step changed it.
   */
  startContent?: Map<string, TreeEntry>;
  /** Why the log cannot be trusted to be complete; undefined when it can. */
  untraceable?: string;
  /** The preload tracer's word on the makes it saw (only when one ran): see MakeComparisons. */
  make?: MakeComparisons;
}

/**
 * The comparisons of file times GNU make made (with --debug=v, read from its debug output by the preload tracer):
 * [prerequisite, target, the prerequisite was newer]. Complete only when every process called make spoke them and
 * each path could be recorded.
 */
export interface MakeComparisons {
  compared: [string, string, boolean][];
  /** [prerequisite, target] make found missing: it may then have compared what the prerequisite is made from, unsaid. */
  missing?: [string, string][];
  complete: boolean;
}

/** For each traced call with a path: [index of its dir fd (undefined: the cwd), index of its path], then a second path's. */
const PATH_ARGS: Record<string, [[number | undefined, number], [number | undefined, number]?]> = {
  open: [[undefined, 0]], creat: [[undefined, 0]], openat: [[0, 1]], openat2: [[0, 1]],
  execve: [[undefined, 0]], execveat: [[0, 1]],
  access: [[undefined, 0]], faccessat: [[0, 1]], faccessat2: [[0, 1]],
  stat: [[undefined, 0]], lstat: [[undefined, 0]], newfstatat: [[0, 1]], statx: [[0, 1]],
  truncate: [[undefined, 0]], chmod: [[undefined, 0]], fchmodat: [[0, 1]],
  unlink: [[undefined, 0]], rmdir: [[undefined, 0]], unlinkat: [[0, 1]],
  mkdir: [[undefined, 0]], mkdirat: [[0, 1]],
  symlink: [[undefined, 1]], symlinkat: [[1, 2]],
  rename: [[undefined, 0], [undefined, 1]], renameat: [[0, 1], [2, 3]], renameat2: [[0, 1], [2, 3]],
  link: [[undefined, 0], [undefined, 1]], linkat: [[0, 1], [2, 3]],
  chdir: [[undefined, 0]],
};

interface Proc {
  cwd: string;
  /** fd -> path for every fd the process opened (or inherited) that the log showed. */
  fds: Map<number, string>;
}

const AT_FDCWD = "AT_FDCWD";

/** Parses a whole strace log (`strace -f -qq -e signal=none -s 65535 -o FILE`) of a step started in `cwd`. */
export function parseTrace(log: string, cwd: string): TraceResult {
  const lines = joinUnfinished(log);
  const proc = processTable(lines, cwd);
  const accesses: Access[] = [];
  const out: TraceResult = { accesses };
  for (const l of lines) {
    const p = proc(l.pid);
    if (!p) {
      out.untraceable = `process ${l.pid} appears without a parent`;
      return out;
    }
    if (l.args.some((x) => x.startsWith('"') && x.endsWith('"...'))) {
      out.untraceable = `${l.name}: a path longer than the trace's string limit`;
      return out;
    }
    const untraceable = applyCall({ call: l, proc: p, accesses });
    if (untraceable) {
      out.untraceable = untraceable;
      return out;
    }
  }
  return out;
}

/**
 * The processes of the log by pid, made on first sight. A first pass notes which process created which, so a child's
 * first line (which may come before its parent's clone returns) inherits the right working directory and fds;
 * undefined for a process whose parent the log never shows.
 */
function processTable(lines: readonly Call[], cwd: string): (pid: number) => Proc | undefined {
  const parentOf = new Map<number, number>();
  let first: number | undefined;
  for (const l of lines) {
    first ??= l.pid;
    if (/^(clone3?|v?fork)$/.test(l.name) && l.ret > 0) parentOf.set(l.ret, l.pid);
  }
  const procs = new Map<number, Proc>();
  const proc = (pid: number): Proc | undefined => {
    let p = procs.get(pid);
    if (p) return p;
    if (pid === first) p = { cwd, fds: new Map() };
    else {
      const parent = parentOf.get(pid);
      const pp = parent === undefined ? undefined : proc(parent);
      if (!pp) return undefined;
      p = { cwd: pp.cwd, fds: new Map(pp.fds) };
    }
    procs.set(pid, p);
    return p;
  };
  return proc;
}

/** One call being applied: the process that made it, the accesses found so far, and why the log stopped being trustworthy. */
interface Applying {
  call: Call;
  proc: Proc;
  accesses: Access[];
  untraceable?: string;
}

/** `rel` resolved against an absolute path, the process's cwd, or the directory `fdArg` was opened on. */
function resolveAt(s: Applying, fdArg: string | undefined, rel: string | undefined): string | undefined {
  if (rel === undefined) return undefined;
  // resolve, not normalize: "/r/dir/" must name the same path as "/r/dir".
  if (rel.startsWith("/")) return path.resolve(rel);
  if (fdArg === undefined || fdArg === AT_FDCWD) return path.resolve(s.proc.cwd, rel);
  const base = s.proc.fds.get(Number(fdArg));
  if (base === undefined) {
    s.untraceable = `${s.call.name} relative to fd ${fdArg}, which the trace never showed opened`;
    return undefined;
  }
  return rel === "" ? base : path.resolve(base, rel);
}

/** The call's path, resolved; a second one (i = 1) for the two-path calls (rename, link). */
function pathArg(s: Applying, i: 0 | 1): string | undefined {
  const spec = PATH_ARGS[s.call.name]?.[i];
  if (!spec) return undefined;
  const [fd, arg] = spec;
  return resolveAt(s, fd === undefined ? undefined : s.call.args[fd], str(s.call.args[arg]));
}

/** Records what one call did; returns why the log cannot be trusted from here on, if it cannot. */
function applyCall(s: Applying): string | undefined {
  const l = s.call;
  const a = l.args;
  const { accesses } = s;
  const ok = l.ret >= 0 && l.errno === undefined;
  const missing = l.errno === "ENOENT" || l.errno === "ENOTDIR";
  const where = PATH_ARGS[l.name];
  // fstat/execveat through an fd (AT_EMPTY_PATH) names a file already seen opened.
  const target = where && str(a[where[0][1]]) !== "" ? pathArg(s, 0) : undefined;
  const readOrAbsent = (op: "read" | "present") => {
    if (target === undefined) return;
    if (ok) accesses.push({ op, path: target });
    else if (missing) accesses.push({ op: "absent", path: target });
  };
  switch (l.name) {
    case "open":
    case "openat":
    case "openat2":
    case "creat":
      if (target === undefined) break;
      if (ok) applyOpen(s, target);
      else if (missing) accesses.push({ op: "absent", path: target });
      break;
    case "execve":
    case "execveat":
    case "stat":
    case "lstat":
    case "newfstatat":
    case "statx":
      readOrAbsent("read");
      break;
    case "access":
    case "faccessat":
    case "faccessat2":
      readOrAbsent("present");
      break;
    case "truncate":
    case "chmod":
    case "fchmodat":
      // Changed in place: what it was before is part of the result, and it is an output.
      if (target !== undefined && ok) accesses.push({ op: "write", path: target, fresh: false });
      break;
    case "unlink":
    case "rmdir":
    case "unlinkat":
      if (target !== undefined && ok) accesses.push({ op: "remove", path: target });
      break;
    case "rename":
    case "renameat":
    case "renameat2":
    case "link":
    case "linkat": {
      const to = pathArg(s, 1);
      if (target !== undefined && to !== undefined && ok) applyRenameOrLink(s, target, to);
      break;
    }
    case "mkdir":
    case "mkdirat":
      if (target === undefined) break;
      if (ok) accesses.push({ op: "make", path: target });
      else if (l.errno === "EEXIST") accesses.push({ op: "present", path: target });
      else if (missing) accesses.push({ op: "absent", path: path.dirname(target) });
      break;
    case "symlink":
    case "symlinkat":
      if (target !== undefined && ok) accesses.push({ op: "remove", path: target }, { op: "make", path: target });
      break;
    case "chdir":
      if (target !== undefined && ok) s.proc.cwd = target;
      break;
    case "fchdir":
    case "dup":
    case "dup2":
    case "dup3":
    case "fcntl":
      if (ok) applyFdCall(s);
      break;
    default:
      break;
  }
  return s.untraceable;
}

/** A successful open: the fd now names `target`, which was listed, written (and read, for O_RDWR) or read by its flags. */
function applyOpen(s: Applying, target: string): void {
  const l = s.call;
  const a = l.args;
  const flags = l.name === "creat" ? "O_WRONLY|O_CREAT|O_TRUNC" : (l.name === "openat" ? a[2] : l.name === "openat2" ? /flags=([\w|]+)/.exec(a[2] ?? "")?.[1] : a[1]) ?? "";
  s.proc.fds.set(l.ret, target);
  if (flags.includes("O_DIRECTORY")) s.accesses.push({ op: "list", path: target });
  else if (/O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(flags)) {
    if (flags.includes("O_RDWR")) s.accesses.push({ op: "read", path: target });
    s.accesses.push({ op: "write", path: target, fresh: flags.includes("O_TRUNC") || (flags.includes("O_CREAT") && flags.includes("O_EXCL")) });
  } else s.accesses.push({ op: "read", path: target });
}

/** A rename reads and removes its source and freshly writes its destination; a link leaves its source in place. */
function applyRenameOrLink(s: Applying, from: string, to: string): void {
  s.accesses.push({ op: "read", path: from });
  if (!s.call.name.startsWith("link")) s.accesses.push({ op: "remove", path: from });
  s.accesses.push({ op: "write", path: to, fresh: true });
}

/**
 * A successful call on an fd: fchdir moves the cwd to the directory it names (untraceable when the log never showed it
 * opened); dup and its kin make the new fd name what the old one did (or nothing the parser knows).
 */
function applyFdCall(s: Applying): void {
  const { call: l, proc: p } = s;
  const a = l.args;
  const from = p.fds.get(Number(a[0]));
  if (l.name === "fchdir") {
    if (from === undefined) s.untraceable = `fchdir to fd ${a[0]}, which the trace never showed opened`;
    else p.cwd = from;
    return;
  }
  if (l.name === "fcntl" && !a[1]?.startsWith("F_DUPFD")) return;
  if (from === undefined) p.fds.delete(l.ret);
  else p.fds.set(l.ret, from);
}

interface Call {
  pid: number;
  name: string;
  args: string[];
  /** The return value; -1 on error, 0 when unknown ("?"). */
  ret: number;
  errno?: string;
}

/** Splits the log into complete calls, joining each `<unfinished ...>` with its `<... resumed>` half. */
function joinUnfinished(log: string): Call[] {
  const pending = new Map<number, string>();
  const calls: Call[] = [];
  for (const raw of log.split("\n")) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const pid = Number(m[1]);
    let body = m[2]!;
    if (body.startsWith("+++") || body.startsWith("---")) continue;
    const resumed = /^<\.\.\. [\w]+ resumed>\s?(.*)$/.exec(body);
    if (resumed) {
      const head = pending.get(pid);
      pending.delete(pid);
      if (head === undefined) continue;
      body = head + resumed[1]!;
    }
    if (body.endsWith("<unfinished ...>")) {
      pending.set(pid, body.slice(0, -"<unfinished ...>".length).trimEnd());
      continue;
    }
    const call = parseCall(pid, body);
    if (call) calls.push(call);
  }
  return calls;
}

/** Parses `name(arg, "str", [a, b], {x=1}) = RET [ERRNO (text)]`. */
export function parseCall(pid: number, body: string): Call | undefined {
  const open = body.indexOf("(");
  if (open <= 0) return undefined;
  const name = body.slice(0, open);
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  let i = open + 1;
  for (; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === '"') {
      for (i++; i < body.length && body[i] !== '"'; i++) if (body[i] === "\\") i++;
      // strace marks a string it cut short with "..." after the quote.
      continue;
    }
    if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === "]" || ch === "}") depth--;
    else if (ch === ")") {
      if (depth === 0) break;
      depth--;
    } else if (ch === "," && depth === 0) {
      args.push(body.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = body.slice(start, i).trim();
  if (last !== "" || args.length > 0) args.push(last);
  const rest = /^\)\s*=\s*(-?\d+|\?)(?:\s+([A-Z][A-Z0-9_]+))?/.exec(body.slice(i));
  if (!rest) return undefined;
  const ret = rest[1] === "?" ? 0 : Number(rest[1]);
  return { pid, name, args, ret, errno: ret < 0 ? rest[2] : undefined };
}

/** The value of a quoted strace string argument (C escapes undone); undefined for anything else or a truncated string. */
export function str(arg: string | undefined): string | undefined {
  if (arg === undefined || !arg.startsWith('"') || arg.endsWith('"...')) return undefined;
  const body = arg.slice(1, -1);
  if (!body.includes("\\")) return body;
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch !== "\\") {
      for (const b of Buffer.from(ch, "utf8")) bytes.push(b);
      continue;
    }
    const next = body[++i]!;
    const simple: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, a: 7, b: 8, "\\": 92, '"': 34, "'": 39 };
    if (next in simple) bytes.push(simple[next]!);
    else if (next === "x") {
      bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(next)) {
      const oct = /^[0-7]{1,3}/.exec(body.slice(i))![0];
      bytes.push(parseInt(oct, 8));
      i += oct.length - 1;
    } else bytes.push(next.charCodeAt(0));
  }
  return Buffer.from(bytes).toString("utf8");
}
