// Decides whether one part of a command string is a simple command (words, leading assignments and redirections only) and gives the argv the program would get.
import { RESERVED_WORDS, type LinePart } from "./scan.js";

export interface SimpleCommand {
  /** The leading `NAME=value` words, quotes removed. */
  assignments: string[];
  /** The command word and its arguments with quotes removed: the program's argv (before pathname expansion). Empty when the part only assigns or redirects. */
  words: string[];
  /** Where each of `words` starts in the scanned string. */
  wordOffsets: number[];
  /** Where the command word starts (after the assignments and redirections before it); undefined without one. */
  commandOffset: number | undefined;
  /** Some word holds an unquoted `*`, `?` or `[…]`: sh expands it, so the program's real argv may differ from `words`. */
  glob: boolean;
  /** Some word expands (`$x`, `$(…)`; only with `expansions`): `words` hold such words as written. */
  expands: boolean;
  /** The command word itself expands (`$CC -c x.c`): which program runs cannot be told. */
  commandExpands: boolean;
}

/**
 * The part read as a simple command, or undefined when it is anything else: a pipeline, a subshell or group, a
 * control construct, a here-document, a word with an expansion (`$x`, `$(…)`, backticks, `~`; allowed with
 * `expansions`, and said in `expands`), a reserved word as the command name.
 */
export function simpleCommand(part: LinePart, o: { expansions?: boolean } = {}): SimpleCommand | undefined {
  const assignments: string[] = [];
  const words: string[] = [];
  const wordOffsets: number[] = [];
  let glob = false;
  let expands = false;
  let commandExpands = false;
  const tokens = part.tokens;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind === "op") {
      // Only a redirection (not a here-document) is allowed, with a plain target word.
      if (!isRedirection(t.value)) return undefined;
      const target = tokens[++k];
      if (target === undefined || target.kind !== "word" || (target.expands && !o.expansions)) return undefined;
      continue;
    }
    if (t.expands && !o.expansions) return undefined;
    if (t.expands && !t.assignment) commandExpands ||= words.length === 0;
    expands ||= t.expands;
    if (t.ioNumber) continue;
    if (words.length === 0 && t.assignment) {
      assignments.push(t.value);
      continue;
    }
    if (words.length === 0 && !t.quoted && RESERVED_WORDS.has(t.value)) return undefined;
    words.push(t.value);
    wordOffsets.push(t.start);
    glob ||= t.glob;
  }
  return { assignments, words, wordOffsets, commandOffset: wordOffsets[0], glob, expands, commandExpands };
}

function isRedirection(op: string): boolean {
  return op === "<" || op === ">" || op === ">>" || op === "<&" || op === ">&" || op === "<>" || op === ">|";
}
