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
  const words: string[] = [];
  let needsShell = false;
  let word = "";
  // A word exists once anything was read for it, even an empty quoted string ('').
  let inWord = false;
  // The unquoted prefix of the current word, for detecting `VAR=value` assignments.
  let rawPrefix = "";
  let quotedYet = false;

  const endWord = (): void => {
    if (!inWord) return;
    if (words.length === 0 && ASSIGNMENT.test(rawPrefix)) needsShell = true;
    words.push(word);
    word = "";
    inWord = false;
    rawPrefix = "";
    quotedYet = false;
  };

  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === " " || c === "\t") {
      endWord();
      i++;
      continue;
    }
    if (c === "\n") {
      needsShell = true;
      endWord();
      i++;
      continue;
    }
    if (c === "\\") {
      const next = line[i + 1];
      if (next === undefined) {
        // A trailing backslash is literal in sh.
        word += c;
        inWord = true;
      } else if (next !== "\n") {
        // Backslash-newline is a line continuation and vanishes; anything else is quoted literally.
        word += next;
        inWord = true;
        quotedYet = true;
      }
      i += 2;
      continue;
    }
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) {
        // Unterminated quote: leave the error to the shell.
        needsShell = true;
        word += line.slice(i + 1);
        inWord = true;
        break;
      }
      word += line.slice(i + 1, end);
      inWord = true;
      quotedYet = true;
      i = end + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let closed = false;
      while (j < line.length) {
        const d = line[j]!;
        if (d === '"') {
          closed = true;
          break;
        }
        if (d === "$" || d === "`") needsShell = true;
        if (d === "\\" && j + 1 < line.length) {
          const e = line[j + 1]!;
          // Inside double quotes a backslash only escapes these; elsewhere it stays.
          if (e === "$" || e === "`" || e === '"' || e === "\\") {
            word += e;
            j += 2;
            continue;
          }
          if (e === "\n") {
            j += 2;
            continue;
          }
        }
        word += d;
        j++;
      }
      if (!closed) needsShell = true;
      inWord = true;
      quotedYet = true;
      i = j + 1;
      continue;
    }
    if (!inWord && c === "#") {
      // A comment runs to the end of the line and is ignored by sh, so it adds no word
      // (Lua's Makefile, built by Redis: `ar rc liblua.a lapi.o ...\t# DLL needs all object files`).
      const end = line.indexOf("\n", i);
      i = end < 0 ? line.length : end;
      continue;
    }
    if (OPERATOR_CHARS.has(c) || EXPANSION_CHARS.has(c)) needsShell = true;
    if (!inWord && c === "~") needsShell = true;
    if (OPERATOR_CHARS.has(c)) {
      // Operators separate words even without spaces (`a&&b`); keep them as their own words.
      endWord();
      let op = c;
      while (i + op.length < line.length && OPERATOR_CHARS.has(line[i + op.length]!)) op += line[i + op.length];
      words.push(op);
      i += op.length;
      continue;
    }
    word += c;
    if (!quotedYet) rawPrefix += c;
    inWord = true;
    i++;
  }
  endWord();

  if (words.length > 0 && SHELL_ONLY_COMMANDS.has(words[0]!)) needsShell = true;
  return { words, needsShell };
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
