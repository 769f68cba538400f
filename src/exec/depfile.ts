// Rewrites a gcc dependency file written in a sandbox into the exact text gcc would have written in the project.
//
// Mapping paths is not enough on its own: gcc wraps the first rule at column 72 (libcpp mkdeps.cc,
// make_write), so a longer sandbox path moves every later line break. The first rule is therefore
// re-serialized with gcc's wrapping after its names are mapped.

/** gcc's `deps_write` column limit, as passed by c-opts.cc. */
const DEPS_COLUMN_LIMIT = 72;

/** Quotes a path the way libcpp's `munge` does for Makefile output. */
export function mungeMakePath(name: string): string {
  let out = "";
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === " " || c === "\t") {
      // Backslashes right before a blank are doubled, then the blank itself is escaped.
      for (let q = i - 1; q >= 0 && name[q] === "\\"; q--) out += "\\";
      out += "\\" + c;
    } else if (c === "#") out += "\\#";
    else if (c === "$") out += "$$";
    else out += c;
  }
  return out;
}

/** Splits the first logical line (backslash-newline continued) into its quoted names; returns them and where the line ended. */
function firstRuleTokens(text: string): { tokens: string[]; end: number } {
  const tokens: string[] = [];
  let cur = "";
  let i = 0;
  const flush = () => {
    if (cur) tokens.push(cur);
    cur = "";
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\" && text[i + 1] === "\n") {
      flush();
      i++;
    } else if (c === "\\" && i + 1 < text.length) {
      cur += c + text[i + 1]!;
      i++;
    } else if (c === " " || c === "\t") flush();
    else if (c === "\n") break;
    else cur += c;
  }
  flush();
  return { tokens, end: Math.min(i + 1, text.length) };
}

/** libcpp's `apply_vpath` drops leading "./" (and the slashes after it) from every target. */
function stripLeadingDotSlash(t: string): string {
  while (t.startsWith("./")) t = t.slice(2).replace(/^\/+/, "");
  return t;
}

/**
 * Maps every name in a Makefile dependency file with `mapName` (which receives and returns the quoted
 * form) and re-wraps the first rule as gcc does. Text that is not a rule it understands is mapped as a whole.
 */
export function rewriteDepfile(text: string, mapName: (quoted: string) => string): string {
  const { tokens, end } = firstRuleTokens(text);
  const colon = tokens.findIndex((t) => t.endsWith(":") && !t.endsWith("\\:"));
  if (colon < 0) return mapName(text);
  const targets = tokens.slice(0, colon + 1).map((t, i) => {
    const bare = i === colon ? t.slice(0, -1) : t;
    return stripLeadingDotSlash(mapName(bare));
  });
  const deps = tokens.slice(colon + 1).map(mapName);

  let out = "";
  let col = 0;
  const writeName = (name: string) => {
    if (col) {
      if (col + name.length > DEPS_COLUMN_LIMIT) {
        out += " \\\n";
        col = 0;
      }
      col++;
      out += " ";
    }
    col += name.length;
    out += name;
  };
  for (const t of targets) if (t) writeName(t);
  out += ":";
  col++;
  for (const d of deps) writeName(d);
  out += "\n";
  // The rest (the -MP phony targets, one "name:" per line) has no wrapping to redo.
  return out + mapName(text.slice(end));
}
