// Reads a POSIX sh command string the way /bin/sh cuts it: words with their offsets and quotes removed, the nesting of groups, loops, case and substitutions, and the top-level parts joined by ; && || & and newlines.

/** An operator that joins a top-level part to the next one. `&` runs the part before it in the background. */
export type JoinOp = ";" | "&&" | "||" | "&" | "\n";

/** One token of a command string: a word or an operator (`|`, `>`, `(`…), with where it sits in the string. */
export interface Token {
  kind: "word" | "op";
  /** Offsets in the scanned string, [start, end). */
  start: number;
  end: number;
  /** A word with quotes and escapes removed (expansions left as written); an operator as written. */
  value: string;
  /** Some of the word was quoted or escaped (a quoted word is never a keyword). */
  quoted: boolean;
  /** The shell would expand something in the word: `$…` (outside single quotes), a backtick, a leading `~`. */
  expands: boolean;
  /** An unquoted `*`, `?` or `[…]`: the shell would try pathname expansion on the word. */
  glob: boolean;
  /** `NAME=…` with NAME unquoted: an assignment when it comes before the command word. */
  assignment: boolean;
  /** Digits written right against `<` or `>` (the `2` of `2>&1`). */
  ioNumber: boolean;
  /** How many groups, loops, ifs and cases enclose the token (0 = top level). */
  depth: number;
  /** On a newline operator: where the here-document bodies it starts end. */
  bodyEnd?: number;
}

/** A word found where the shell looks for a command name, anywhere in a part (pipelines, loops, substitutions). */
export interface CommandWord {
  word: string;
  /** The name itself holds an expansion, so which program runs is not known here. */
  expands: boolean;
}

/** One top-level piece of a command string. */
export interface LinePart {
  /** The exact source text, blanks and a trailing comment left out. */
  text: string;
  /** Offsets of `text` in the string, [start, end). */
  start: number;
  end: number;
  /** The operator joining this part to the next; undefined for the last part. */
  op: JoinOp | undefined;
  /** The part's tokens, nested ones included, substitutions' insides excluded (they sit in their word). */
  tokens: Token[];
  /** Every command-name word found in the part, in order, best effort. */
  programs: CommandWord[];
}

export interface SplitLine {
  parts: LinePart[];
  /** False when a quote, group, loop or substitution is never closed or a closer has no opener: sh would refuse it. */
  complete: boolean;
}

/** Splits a command string at its top-level `;`, `&&`, `||`, `&` and newlines; empty parts are dropped. */
export function splitLine(line: string): SplitLine {
  const scanner = new Scanner(line, 0, line.length, false, []);
  scanner.run();
  return { parts: scanner.parts, complete: scanner.complete };
}

/** Words the shell reserves when they are the first word of a command and unquoted. */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([
  "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "in", "{", "}", "!",
]);

type Opener = "(" | "{" | "if" | "loop" | "case";

/** A case's phase: before `in`, reading a pattern, or in an item's commands. */
type CasePhase = "header" | "pattern" | "body";

interface Frame {
  opener: Opener;
  phase: CasePhase;
}

const SEPARATORS: ReadonlySet<string> = new Set([";", "&&", "||", "&", "\n"]);
const REDIRECTIONS: ReadonlySet<string> = new Set(["<", ">", ">>", "<&", ">&", "<>", ">|", "<<", "<<-"]);
/** Operators tried longest first. */
const OPERATORS = ["<<-", "&&", "||", ";;", "<<", ">>", "<&", ">&", "<>", ">|", ";", "&", "|", "<", ">", "(", ")", "\n"];
const CLOSERS: Readonly<Record<string, Opener>> = { fi: "if", done: "loop", esac: "case", "}": "{" };

function endsWord(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === ";" || c === "&" || c === "|" || c === "<" || c === ">" || c === "(" || c === ")";
}

function isNameChar(c: string, first: boolean): boolean {
  const k = c.charCodeAt(0);
  const letter = (k >= 65 && k <= 90) || (k >= 97 && k <= 122) || k === 95;
  return letter || (!first && k >= 48 && k <= 57);
}

/**
 * Walks a string (or the inside of a `$(…)`) once, left to right. It keeps the stack of open constructs so that
 * only top-level operators cut parts and so that a `$(…)` ends at its own `)`, and it tracks where a command name
 * may appear so that keywords and program names are told apart from arguments.
 */
class Scanner {
  readonly parts: LinePart[] = [];
  complete = true;
  /** Where the next character to read is. */
  i: number;
  /** A nested scanner stopped at the `)` that closes its `$(`. */
  closed = false;
  private readonly stack: Frame[] = [];
  /** The next word is in command position (may be a keyword or a program name). */
  private commandPos = true;
  /** The next word is a redirection's target (or a here-document's delimiter, when `heredocStrip` is set). */
  private expectTarget = false;
  private heredocStrip: boolean | undefined;
  private readonly heredocs: { delimiter: string; stripTabs: boolean }[] = [];
  private partTokens: Token[] = [];
  private partPrograms: number;

  constructor(
    private readonly s: string,
    start: number,
    private readonly end: number,
    private readonly nested: boolean,
    private readonly programs: CommandWord[],
  ) {
    this.i = start;
    this.partPrograms = programs.length;
  }

  run(): void {
    const s = this.s;
    while (this.i < this.end) {
      const c = s[this.i]!;
      if (c === " " || c === "\t") this.i++;
      else if (c === "\\" && s[this.i + 1] === "\n") this.i += 2;
      else if (c === "#") this.skipComment();
      else if (endsWord(c)) {
        if (this.operator()) return;
      } else this.word(this.readWord());
    }
    if (this.nested || this.stack.length > 0 || this.expectTarget) this.complete = false;
    this.closePart(undefined);
  }

  private skipComment(): void {
    const nl = this.s.indexOf("\n", this.i);
    this.i = nl < 0 || nl > this.end ? this.end : nl;
  }

  private top(): Frame | undefined {
    return this.stack[this.stack.length - 1];
  }

  /** Reads one operator at `i`; true when it is the `)` ending this nested scan. */
  private operator(): boolean {
    const s = this.s;
    const start = this.i;
    const op = OPERATORS.find((o) => s.startsWith(o, start) && start + o.length <= this.end)!;
    this.i += op.length;
    const depth = this.stack.length;
    const token = opToken(op, start, this.i, depth);
    const frame = this.top();
    if (op === ")" && depth === 0 && this.nested) {
      this.closed = true;
      this.closePart(undefined);
      return true;
    }
    if (this.expectTarget) {
      // An operator where a redirection's target belongs: sh reports a syntax error.
      this.complete = false;
      this.expectTarget = false;
    }
    if (frame?.opener === "case" && frame.phase === "pattern") {
      // `(`, `|` and `)` belong to the pattern; `)` ends it and starts the item's commands.
      if (op === ")") {
        frame.phase = "body";
        this.commandPos = true;
      }
      this.partTokens.push(token);
      return false;
    }
    if (op === "\n" && this.heredocs.length > 0) token.bodyEnd = this.skipHeredocs();
    if (REDIRECTIONS.has(op)) {
      this.expectTarget = true;
      this.heredocStrip = op === "<<" ? false : op === "<<-" ? true : undefined;
      this.partTokens.push(token);
      return false;
    }
    if (op === "(") {
      this.stack.push({ opener: "(", phase: "body" });
      this.commandPos = true;
    } else if (op === ")") {
      if (frame?.opener === "(") this.stack.pop();
      else this.complete = false;
      // `name()` defines a function: its body, a command, follows; after a subshell only operators do.
      const previous = this.partTokens[this.partTokens.length - 1];
      this.commandPos = previous?.kind === "op" && previous.value === "(";
    } else if (op === ";;" && frame?.opener === "case") {
      frame.phase = "pattern";
      this.commandPos = false;
    } else {
      this.commandPos = true;
    }
    const sep = op === ";;" ? ";" : op;
    if (depth === 0 && !this.nested && SEPARATORS.has(sep) && !(sep === "\n" && this.continuesAfterNewline())) {
      this.closePart(sep as JoinOp, token.bodyEnd);
    } else this.partTokens.push(token);
    return false;
  }

  /** A newline right after `|` does not end the pipeline (after `&&`/`||` the part is already closed, empty). */
  private continuesAfterNewline(): boolean {
    const last = this.partTokens[this.partTokens.length - 1];
    return last?.kind === "op" && last.value === "|";
  }

  /** Skips the bodies of the here-documents whose operators came on the line just ended; returns where they end. */
  private skipHeredocs(): number {
    const s = this.s;
    let bodyEnd = this.i;
    for (const doc of this.heredocs.splice(0)) {
      for (;;) {
        if (this.i >= this.end) {
          bodyEnd = this.end;
          break;
        }
        const nl = s.indexOf("\n", this.i);
        const lineEnd = nl < 0 || nl > this.end ? this.end : nl;
        let line = s.slice(this.i, lineEnd);
        if (doc.stripTabs) line = line.replace(/^\t+/, "");
        bodyEnd = lineEnd;
        this.i = Math.min(lineEnd + 1, this.end);
        if (line === doc.delimiter) break;
      }
    }
    // Leave the newline ending the delimiter line to act as the separator it is.
    if (this.i > bodyEnd) this.i = bodyEnd;
    return bodyEnd;
  }

  /** Places a word: redirection target, case header or pattern, keyword, assignment, program name or argument. */
  private word(w: Token): void {
    this.partTokens.push(w);
    if (w.ioNumber) return;
    if (this.expectTarget) {
      this.expectTarget = false;
      if (this.heredocStrip !== undefined) this.heredocs.push({ delimiter: w.value, stripTabs: this.heredocStrip });
      this.heredocStrip = undefined;
      return;
    }
    const frame = this.top();
    const bare = w.quoted ? undefined : w.value;
    if (frame?.opener === "case" && frame.phase !== "body") {
      if (frame.phase === "header" && bare === "in") frame.phase = "pattern";
      else if (frame.phase === "pattern" && bare === "esac") this.close("esac");
      return;
    }
    if (!this.commandPos) return;
    if (bare !== undefined && RESERVED_WORDS.has(bare) && bare !== "in") {
      this.keyword(bare);
      return;
    }
    if (w.assignment) return;
    this.programs.push({ word: w.value, expands: w.expands });
    this.commandPos = false;
  }

  private keyword(k: string): void {
    if (k in CLOSERS) {
      this.close(k);
      return;
    }
    if (k === "if" || k === "{") this.stack.push({ opener: k, phase: "body" });
    else if (k === "for" || k === "while" || k === "until") this.stack.push({ opener: "loop", phase: "body" });
    else if (k === "case") this.stack.push({ opener: "case", phase: "header" });
    // The name and word list after `for` and the subject after `case` are not commands.
    this.commandPos = !(k === "for" || k === "case");
  }

  private close(k: string): void {
    if (this.top()?.opener === CLOSERS[k]) this.stack.pop();
    else this.complete = false;
    this.commandPos = false;
  }

  private closePart(op: JoinOp | undefined, bodyEnd?: number): void {
    const tokens = this.partTokens;
    const programs = this.programs.slice(this.partPrograms);
    this.partTokens = [];
    this.partPrograms = this.programs.length;
    if (this.nested || tokens.length === 0) return;
    const start = tokens[0]!.start;
    const end = Math.max(tokens[tokens.length - 1]!.end, bodyEnd ?? 0);
    this.parts.push({ text: this.s.slice(start, end), start, end, op, tokens, programs });
  }

  /** Reads one word at `i` (which is not a blank or operator character). */
  private readWord(): Token {
    const s = this.s;
    const start = this.i;
    let value = "";
    let quoted = false;
    let expands = false;
    let glob = false;
    let bracket = false;
    let assignment = false;
    /** Everything so far is an unquoted name, so a `=` now makes an assignment. */
    let nameSoFar = true;
    while (this.i < this.end) {
      const c = s[this.i]!;
      if (endsWord(c)) break;
      if (c === "\\") {
        const next = this.i + 1 < this.end ? s[this.i + 1] : undefined;
        if (next === undefined) value += "\\";
        else if (next !== "\n") {
          // Backslash-newline is a line continuation and vanishes; any other escaped character is literal.
          value += next;
          quoted = true;
        }
        this.i += next === undefined ? 1 : 2;
        nameSoFar = false;
        continue;
      }
      const q = c === "'" || c === '"' || c === "`" || c === "$" ? this.piece(this.i) : undefined;
      if (q !== undefined) {
        value += q.value;
        quoted ||= c === "'" || c === '"';
        expands ||= q.expands;
        this.i = q.end;
        nameSoFar = false;
        continue;
      }
      if (c === "=" && nameSoFar && value.length > 0) assignment = true;
      else if (c === "*" || c === "?") glob = true;
      else if (c === "[") bracket = true;
      else if (c === "]" && bracket) glob = true;
      else if (c === "~" && this.i === start) expands = true;
      if (nameSoFar && (assignment || !isNameChar(c, value.length === 0))) nameSoFar = false;
      value += c;
      this.i++;
    }
    const ioNumber = !quoted && value.length > 0 && /^[0-9]+$/.test(value) && (s[this.i] === "<" || s[this.i] === ">");
    return { kind: "word", start, end: this.i, value, quoted, expands, glob, assignment, ioNumber, depth: this.stack.length };
  }

  /** `'…'` at `at`: everything up to the next quote is literal. */
  private singleQuoted(at: number): Piece {
    const close = this.s.indexOf("'", at + 1);
    if (close < 0 || close >= this.end) {
      this.complete = false;
      return { value: this.s.slice(at + 1, this.end), expands: false, end: this.end };
    }
    return { value: this.s.slice(at + 1, close), expands: false, end: close + 1 };
  }

  /** `"…"` at `at`: backslash escapes only `$ \` " \\` and newline; `$` and backticks still expand. */
  private doubleQuoted(at: number): Piece {
    const s = this.s;
    let value = "";
    let expands = false;
    let j = at + 1;
    while (j < this.end) {
      const d = s[j]!;
      if (d === '"') return { value, expands, end: j + 1 };
      if (d === "\\" && j + 1 < this.end) {
        const e = s[j + 1]!;
        if (e === "$" || e === "`" || e === '"' || e === "\\" || e === "\n") {
          if (e !== "\n") value += e;
          j += 2;
          continue;
        }
      }
      const x = d === "`" || d === "$" ? this.piece(j) : undefined;
      if (x !== undefined) {
        value += x.value;
        expands = true;
        j = x.end;
        continue;
      }
      value += d;
      j++;
    }
    this.complete = false;
    return { value, expands, end: this.end };
  }

  /** The quoted string or expansion (kept as written) starting at `at`; undefined for a `$` that is literal. */
  private piece(at: number): Piece | undefined {
    const c = this.s[at];
    if (c === "'") return this.singleQuoted(at);
    if (c === '"') return this.doubleQuoted(at);
    const end = c === "`" ? this.backtick(at) : this.expansionEnd(at);
    return end > at + 1 ? { value: this.s.slice(at, end), expands: true, end } : undefined;
  }

  /** Where the `$` expansion at `at` ends: `$(…)`, `$((…))`, `${…}`, `$name`, `$1`, `$@`…; at + 1 for a literal `$`. */
  private expansionEnd(at: number): number {
    const s = this.s;
    const n = at + 1 < this.end ? s[at + 1]! : "";
    if (n === "(") return this.substitution(at + 2);
    if (n === "{") return this.braceEnd(at + 2);
    if (n !== "" && isNameChar(n, true)) {
      let j = at + 2;
      while (j < this.end && isNameChar(s[j]!, false)) j++;
      return j;
    }
    if (n !== "" && "0123456789@*#?-$!".includes(n)) return at + 2;
    return at + 1;
  }

  /** A `$(…)` whose inside starts at `from`: scanned as commands (their names count as this line's programs). */
  private substitution(from: number): number {
    const inner = new Scanner(this.s, from, this.end, true, this.programs);
    inner.run();
    if (!inner.closed || !inner.complete) this.complete = false;
    return inner.i;
  }

  /** The end of a `${…}` whose inside starts at `from`, past nested braces, quotes and substitutions. */
  private braceEnd(from: number): number {
    const s = this.s;
    let depth = 1;
    let j = from;
    while (j < this.end) {
      const d = s[j]!;
      if (d === "\\") j += 2;
      else if (d === "'") j = this.singleQuoted(j).end;
      else if (d === '"') j = this.doubleQuoted(j).end;
      else if (d === "`" || d === "$") j = d === "`" ? this.backtick(j) : Math.max(this.expansionEnd(j), j + 1);
      else {
        if (d === "{") depth++;
        else if (d === "}" && --depth === 0) return j + 1;
        j++;
      }
    }
    this.complete = false;
    return this.end;
  }

  /** The end of a backtick substitution at `at`; its inside, unescaped, is scanned for program names. */
  private backtick(at: number): number {
    const s = this.s;
    let inner = "";
    let j = at + 1;
    while (j < this.end) {
      const d = s[j]!;
      if (d === "\\" && j + 1 < this.end) {
        const e = s[j + 1]!;
        inner += e === "$" || e === "`" || e === "\\" ? e : d + e;
        j += 2;
        continue;
      }
      if (d === "`") {
        const scan = new Scanner(inner, 0, inner.length, false, this.programs);
        scan.run();
        if (!scan.complete) this.complete = false;
        return j + 1;
      }
      inner += d;
      j++;
    }
    this.complete = false;
    return this.end;
  }
}

/** A quoted string or expansion read inside a word. */
interface Piece {
  value: string;
  expands: boolean;
  end: number;
}

function opToken(op: string, start: number, end: number, depth: number): Token {
  return { kind: "op", start, end, value: op, quoted: false, expands: false, glob: false, assignment: false, ioNumber: false, depth };
}
