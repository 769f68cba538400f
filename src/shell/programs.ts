// What a program a recipe line runs is to the build: a build tool Orion runs as an action, a sub-make, a cheap command, or a costly one worth caching as a step.
import { posix } from "node:path";
import { toolFamily } from "../compile/index.js";

/**
 * Programs (by file name) cheap enough to run with /bin/sh as they are: shell builtins, file and text utilities,
 * binary inspectors. A line made only of these is not worth a traced step.
 */
export const CHEAP_PROGRAMS: ReadonlySet<string> = new Set([
  // builtins
  ":", "true", "false", "cd", "pwd", "echo", "printf", "test", "[", "exit", "return", "set", "unset", "export",
  "readonly", "shift", "wait", "umask", "break", "continue", "read", "local", "trap", "type", "hash", "command",
  "exec", "getopts", "times",
  // files
  "mkdir", "rm", "rmdir", "cp", "mv", "ln", "install", "touch", "cat", "chmod", "chown", "chgrp", "ls", "stat",
  "readlink", "realpath", "mktemp", "tee", "cmp", "diff", "find", "sync",
  // text
  "sed", "awk", "gawk", "mawk", "grep", "egrep", "fgrep", "sort", "uniq", "tr", "cut", "head", "tail", "wc", "paste",
  // binaries
  "nm", "objdump", "readelf", "size", "strip", "objcopy",
  // the rest
  "basename", "dirname", "expr", "sleep", "env", "printenv", "date", "uname", "id", "whoami", "hostname", "which", "seq",
  "pkg-config", "getconf", "nproc", "git",
]);

/** Programs that are make: a sub-make must run in the real shell so that its own recipe lines reach the shim. */
const MAKE_PROGRAMS: ReadonlySet<string> = new Set(["make", "gmake"]);

/** cmake -E subcommands that run another program (so they are as costly as it may be). */
const CMAKE_E_RUNNERS: ReadonlySet<string> = new Set(["env", "time", "chdir"]);

/** True when the word names a build tool Orion runs as an action: a gcc/clang driver, ar, ranlib or ld, bare, versioned, with a target triplet, or by path. */
export function isBuildTool(word: string): boolean {
  return toolFamily(word) !== undefined;
}

export type ProgramKind = "tool" | "make" | "cheap" | "costly";

/**
 * What running this argv is to the build. `argv` may be only the program name (a command position found inside a
 * loop or pipeline); `cmake` is judged by its arguments: `-E …` is cheap (but `cmake_link_script`, handled apart,
 * and the subcommands that run a program), `--build` is a sub-make, anything else (a configure, `-P`) is costly.
 */
export function programKind(argv: readonly string[]): ProgramKind {
  const name = posix.basename(argv[0] ?? "");
  if (isBuildTool(name)) return "tool";
  if (MAKE_PROGRAMS.has(name)) return "make";
  if (name === "cmake") {
    if (argv[1] === "--build") return "make";
    if (argv[1] === "-E" && argv[2] !== undefined && argv[2] !== "cmake_link_script" && !CMAKE_E_RUNNERS.has(argv[2])) return "cheap";
    return "costly";
  }
  return CHEAP_PROGRAMS.has(name) ? "cheap" : "costly";
}

/**
 * Where the program sits in a simple command's words: after `exec` (which runs it in place of the shell), `command`
 * (which runs it skipping functions) and `env NAME=value…` (which runs it with those variables); 0 otherwise. An
 * `env` or `command` with options (`env -i`, `command -v`) is left alone.
 */
export function programIndex(words: readonly string[]): number {
  if (words[0] === "exec" && words.length > 1) return 1;
  if (words[0] === "command" && words.length > 1 && !words[1]!.startsWith("-")) return 1;
  if (words[0] !== "env") return 0;
  let k = 1;
  while (k < words.length && isAssignmentWord(words[k]!)) k++;
  return k < words.length && !words[k]!.startsWith("-") ? k : 0;
}

function isAssignmentWord(word: string): boolean {
  const eq = word.indexOf("=");
  return eq > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(word.slice(0, eq));
}
