// Splits a POSIX shell command line into argv words and says whether running those words directly would differ from running the line through /bin/sh.

export interface ShellWords {
  /** The words with quotes and escapes removed, as the shell would pass them to a program. */
  words: string[];
  /**
   * True when the line uses something only a shell can do (operators, redirections,
   * expansions, globs, assignments, builtins); the words are then a best effort and
   * the line must run as `/bin/sh -c line`.
   */
  needsShell: boolean;
}

/** Characters that end a word and start an operator or redirection when unquoted. */
const OPERATOR_CHARS = new Set([";", "&", "|", "<", ">", "(", ")"]);

/** Unquoted characters that trigger expansion or pathname globbing anywhere in a word. */
const EXPANSION_CHARS = new Set(["$", "`", "*", "?", "["]);

/**
 * First words that are shell keywords or builtins whose effect argv execution cannot
 * reproduce (`cd` changes the shell's own directory; `exit` has no program).
 */
const SHELL_ONLY_COMMANDS = new Set([
  "cd", "if", "then", "else", "fi", "for", "while", "until", "do", "done", "case", "esac",
  "!", "{", "}", "export", "unset", "set", "exec", "eval", ".", "source", "exit", "return",
  "shift", "trap", "umask", "ulimit", "readonly", "local", "alias",
]);

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

export function splitShellWords(line: string): ShellWords {
  const s = new WordSplitter(line);
  while (s.i < line.length) {
    const c = line[s.i]!;
    if (c === " " || c === "\t") s.blank();
    else if (c === "\n") s.newline();
    else if (c === "\\") s.backslash();
    else if (c === "'") {
      if (!s.singleQuoted()) break;
    } else if (c === '"') s.doubleQuoted();
    else if (!s.inWord && c === "#") s.comment();
    else s.plain(c);
  }
  s.endWord();

  if (s.words.length > 0 && SHELL_ONLY_COMMANDS.has(s.words[0]!)) s.needsShell = true;
  return { words: s.words, needsShell: s.needsShell };
}

/** The splitter's state as it walks the line: each method reads one construct at `i` and moves past it. */
class WordSplitter {
  readonly words: string[] = [];
  needsShell = false;
  /** Where the next character to read is. */
  i = 0;
  private word = "";
  /** A word exists once anything was read for it, even an empty quoted string (''). */
  inWord = false;
  /** The unquoted prefix of the current word, for detecting `VAR=value` assignments. */
  private rawPrefix = "";
  private quotedYet = false;

  constructor(private readonly line: string) {}

  endWord(): void {
    if (!this.inWord) return;
    if (this.words.length === 0 && ASSIGNMENT.test(this.rawPrefix)) this.needsShell = true;
    this.words.push(this.word);
    this.word = "";
    this.inWord = false;
    this.rawPrefix = "";
    this.quotedYet = false;
  }

  blank(): void {
    this.endWord();
    this.i++;
  }

  newline(): void {
    this.needsShell = true;
    this.endWord();
    this.i++;
  }

  backslash(): void {
    const next = this.line[this.i + 1];
    if (next === undefined) {
      // A trailing backslash is literal in sh.
      this.word += "\\";
      this.inWord = true;
    } else if (next !== "\n") {
      // Backslash-newline is a line continuation and vanishes; anything else is quoted literally.
      this.word += next;
      this.inWord = true;
      this.quotedYet = true;
    }
    this.i += 2;
  }

  /** A '...' string; false when it is never closed (the rest of the line is then its content). */
  singleQuoted(): boolean {
    const line = this.line;
    const end = line.indexOf("'", this.i + 1);
    if (end < 0) {
      // Unterminated quote: leave the error to the shell.
      this.needsShell = true;
      this.word += line.slice(this.i + 1);
      this.inWord = true;
      return false;
    }
    this.word += line.slice(this.i + 1, end);
    this.inWord = true;
    this.quotedYet = true;
    this.i = end + 1;
    return true;
  }

  doubleQuoted(): void {
    const line = this.line;
    let j = this.i + 1;
    let closed = false;
    while (j < line.length) {
      const d = line[j]!;
      if (d === '"') {
        closed = true;
        break;
      }
      if (d === "$" || d === "`") this.needsShell = true;
      if (d === "\\" && j + 1 < line.length) {
        const e = line[j + 1]!;
        // Inside double quotes a backslash only escapes these; elsewhere it stays.
        if (e === "$" || e === "`" || e === '"' || e === "\\") {
          this.word += e;
          j += 2;
          continue;
        }
        if (e === "\n") {
          j += 2;
          continue;
        }
      }
      this.word += d;
      j++;
    }
    if (!closed) this.needsShell = true;
    this.inWord = true;
    this.quotedYet = true;
    this.i = j + 1;
  }

  comment(): void {
    // A comment runs to the end of the line and is ignored by sh, so it adds no word
    // (Lua's Makefile, built by Redis: `ar rc liblua.a lapi.o ...\t# DLL needs all object files`).
    const end = this.line.indexOf("\n", this.i);
    this.i = end < 0 ? this.line.length : end;
  }

  /** An unquoted character: part of the word, or an operator that is a word of its own. */
  plain(c: string): void {
    const line = this.line;
    if (OPERATOR_CHARS.has(c) || EXPANSION_CHARS.has(c)) this.needsShell = true;
    if (!this.inWord && c === "~") this.needsShell = true;
    if (OPERATOR_CHARS.has(c)) {
      // Operators separate words even without spaces (`a&&b`); keep them as their own words.
      this.endWord();
      let op = c;
      while (this.i + op.length < line.length && OPERATOR_CHARS.has(line[this.i + op.length]!)) op += line[this.i + op.length];
      this.words.push(op);
      this.i += op.length;
      return;
    }
    this.word += c;
    if (!this.quotedYet) this.rawPrefix += c;
    this.inWord = true;
    this.i++;
  }
}

/** Quotes one word so that /bin/sh reads it back unchanged. */
export function quoteShellWord(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Joins argv into one line /bin/sh would split back into the same words. */
export function joinShellWords(words: readonly string[]): string {
  return words.map(quoteShellWord).join(" ");
}
