// A simple command is words, leading assignments and redirections only; its words are the argv the program gets.
import { describe, expect, it } from "vitest";
import { splitLine } from "./scan.js";
import { simpleCommand } from "./simple.js";

function simple(line: string) {
  const { parts } = splitLine(line);
  expect(parts).toHaveLength(1);
  return simpleCommand(parts[0]!);
}

describe("simpleCommand", () => {
  it("gives the argv with quotes removed and where the command word starts", () => {
    const line = `CCACHE_DISABLE=1 X='a b' 2>/dev/null >>log cc -DREDIS_STATIC='' -DV="\\"1\\"" -c x.c <in 2>&1`;
    expect(simple(line)).toEqual({
      assignments: ["CCACHE_DISABLE=1", "X=a b"],
      words: ["cc", "-DREDIS_STATIC=", '-DV="1"', "-c", "x.c"],
      wordOffsets: [line.indexOf("cc "), line.indexOf("-DREDIS"), line.indexOf("-DV"), line.indexOf("-c "), line.indexOf("x.c")],
      commandOffset: line.indexOf("cc "),
      glob: false,
      expands: false,
      commandExpands: false,
    });
  });

  it("reads Redis's QUIET_CC printf", () => {
    const cmd = simple(`printf '    %b %b\\n' "\\033[34m"CC"\\033[0m" "\\033[33m"quicklist.o"\\033[0m" 1>&2`);
    expect(cmd?.words).toEqual(["printf", "    %b %b\\n", "\\033[34mCC\\033[0m", "\\033[33mquicklist.o\\033[0m"]);
  });

  it("joins backslash-newline continuations", () => {
    expect(simple("cc -c \\\n\tx.c -I\\\ninc")?.words).toEqual(["cc", "-c", "x.c", "-Iinc"]);
  });

  it("keeps assignments and redirections without a command word", () => {
    expect(simple("X=1 >f")).toMatchObject({ assignments: ["X=1"], words: [], commandOffset: undefined });
  });

  it("marks unquoted globs, not quoted ones or a lone [", () => {
    expect(simple("ar rcs l.a *.o")?.glob).toBe(true);
    expect(simple("cc -c x?.c")?.glob).toBe(true);
    expect(simple("[ -f x ]")?.glob).toBe(false);
    expect(simple("echo '*.o' \\*")?.glob).toBe(false);
  });

  it("keeps a literal $ and single-quoted $", () => {
    expect(simple("grep 'x$' f b$")?.words).toEqual(["grep", "x$", "f", "b$"]);
  });

  it("refuses pipelines, groups, control constructs, here-documents and expansions", () => {
    for (const line of [
      "nm x.o | awk 1",
      "(cd sub && cc -c y.c)",
      "{ cc -c y.c; }",
      "for f in a; do cc -c $f; done",
      "if true; then cc; fi",
      "! cc -c x.c",
      "cat <<EOF\nx\nEOF",
      "cc -c $f",
      'cc -c "$f"',
      "cc $(pkg-config --cflags x) -c x.c",
      "cc `echo -O2` -c x.c",
      "cc -c ~/x.c",
      "X=$Y cc -c x.c",
      "cc -c x.c >$LOG",
    ]) {
      const { parts } = splitLine(line);
      expect(parts.length === 1 ? simpleCommand(parts[0]!) : undefined, line).toBeUndefined();
    }
  });

  it("accepts a quoted reserved word as a program name", () => {
    expect(simple("'if' x")?.words).toEqual(["if", "x"]);
  });
});
