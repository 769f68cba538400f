// What `printf FORMAT ARGS…` prints, worked out without running it — for the plain forms build systems use to announce a
// step (Redis's `printf '    %b %b\n' "\033[34m"CC"\033[0m" …`), so a line made of such a printf and one tool call
// can be answered without a shell. Anything beyond %s, %b and %% and the escapes below is declined (undefined).

/** The escapes both the format and %b arguments take, by letter. */
const SIMPLE: Record<string, number> = { "\\": 92, a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };

/** The bytes `printf` prints for argv (argv[0] is "printf"), or undefined when this reading cannot be sure of them. */
export function staticPrintf(argv: readonly string[]): Buffer | undefined {
  const format = argv[1];
  if (format === undefined || format.startsWith("-")) return undefined;
  const args = argv.slice(2);
  const out: Buffer[] = [];
  let used = 0;
  // POSIX: the format is reused while arguments remain, as long as it consumes some.
  for (;;) {
    const before = used;
    const pass = formatOnce(format, () => (used < args.length ? args[used++]! : undefined), out);
    if (pass === undefined) return undefined;
    if (used >= args.length || used === before) break;
  }
  return Buffer.concat(out);
}

/** One pass of the format; false-y (undefined) when it holds something not understood here. */
function formatOnce(format: string, next: () => string | undefined, out: Buffer[]): true | undefined {
  let text = "";
  const flush = () => {
    if (text) out.push(Buffer.from(text, "utf8"));
    text = "";
  };
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c === "\\") {
      const esc = escape(format, i, false);
      if (!esc) return undefined;
      flush();
      out.push(esc.bytes);
      i = esc.end - 1;
    } else if (c === "%") {
      const conv = format[++i];
      if (conv === "%") text += "%";
      else if (conv === "s") text += next() ?? "";
      else if (conv === "b") {
        const arg = next() ?? "";
        const bytes = withEscapes(arg);
        if (!bytes) return undefined;
        flush();
        out.push(bytes);
      } else return undefined;
    } else text += c;
  }
  flush();
  return true;
}

/** A %b argument with its backslash escapes done (\0NNN for octal); undefined for \c or an escape not known here. */
function withEscapes(arg: string): Buffer | undefined {
  const out: Buffer[] = [];
  let text = "";
  for (let i = 0; i < arg.length; i++) {
    if (arg[i] !== "\\") {
      text += arg[i];
      continue;
    }
    const esc = escape(arg, i, true);
    if (!esc) return undefined;
    if (text) out.push(Buffer.from(text, "utf8"));
    text = "";
    out.push(esc.bytes);
    i = esc.end - 1;
  }
  if (text) out.push(Buffer.from(text, "utf8"));
  return Buffer.concat(out);
}

/** The escape at s[i] (a backslash): its byte and where it ends. In %b, octal is \0NNN; in the format, \NNN. */
function escape(s: string, i: number, inArg: boolean): { bytes: Buffer; end: number } | undefined {
  const c = s[i + 1];
  if (c === undefined) return undefined;
  if (c in SIMPLE) return { bytes: Buffer.from([SIMPLE[c]!]), end: i + 2 };
  const start = inArg ? (c === "0" ? i + 2 : -1) : /[0-7]/.test(c) ? i + 1 : -1;
  if (start < 0) return undefined;
  let end = start;
  while (end < s.length && end < start + 3 && /[0-7]/.test(s[end]!)) end++;
  return { bytes: Buffer.from([parseInt(s.slice(start, end) || "0", 8) & 0xff]), end };
}
