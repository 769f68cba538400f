// The splitter cuts only at top-level operators, keeps each part's exact text and offsets, and finds program names inside pipelines, loops and substitutions.
import { describe, expect, it } from "vitest";
import { splitLine } from "./scan.js";

function parts(line: string): [string, string | undefined][] {
  const split = splitLine(line);
  expect(split.complete).toBe(true);
  for (const p of split.parts) expect(line.slice(p.start, p.end)).toBe(p.text);
  return split.parts.map((p) => [p.text, p.op]);
}

function programs(line: string): string[][] {
  return splitLine(line).parts.map((p) => p.programs.map((c) => (c.expands ? `?${c.word}` : c.word)));
}

describe("splitLine", () => {
  it("cuts at ; && || & and newlines, keeping each operator", () => {
    expect(parts("a 1;b 2 && c||d & e\nf")).toEqual([
      ["a 1", ";"],
      ["b 2", "&&"],
      ["c", "||"],
      ["d", "&"],
      ["e", "\n"],
      ["f", undefined],
    ]);
    expect(parts("  a  ;  ")).toEqual([["a", ";"]]);
    expect(parts("")).toEqual([]);
  });

  it("gives offsets in the whole line", () => {
    const split = splitLine("printf x 1>&2;cc -c x.c");
    expect(split.parts.map((p) => [p.start, p.end])).toEqual([[0, 13], [14, 23]]);
  });

  it("does not cut inside quotes, escapes or words", () => {
    expect(parts(`echo 'a;b' "c&&d" e\\;f;x`)).toEqual([[`echo 'a;b' "c&&d" e\\;f`, ";"], ["x", undefined]]);
    expect(parts(`echo "it's; \\"here\\"; ok" && y`)).toEqual([[`echo "it's; \\"here\\"; ok"`, "&&"], ["y", undefined]]);
  });

  it("keeps groups, subshells, substitutions and control constructs whole", () => {
    expect(parts("for f in a b; do cc -c $f.c; done && echo ok")).toEqual([["for f in a b; do cc -c $f.c; done", "&&"], ["echo ok", undefined]]);
    expect(parts("( a; b ) && { c; d; }; e")).toEqual([["( a; b )", "&&"], ["{ c; d; }", ";"], ["e", undefined]]);
    expect(parts("x=$(a; b) && y=`c; d`; e")).toEqual([["x=$(a; b)", "&&"], ["y=`c; d`", ";"], ["e", undefined]]);
    expect(parts("if a; then b; elif c; then d; else e; fi; f")).toEqual([["if a; then b; elif c; then d; else e; fi", ";"], ["f", undefined]]);
    expect(parts("while read l; do echo $l; done < f; g")).toEqual([["while read l; do echo $l; done < f", ";"], ["g", undefined]]);
    expect(parts("case $x in a|b) c;; (*) d; e;; esac; f")).toEqual([["case $x in a|b) c;; (*) d; e;; esac", ";"], ["f", undefined]]);
    expect(parts(`echo "$(case x in x) echo ")";; esac)"; g`)).toEqual([[`echo "$(case x in x) echo ")";; esac)"`, ";"], ["g", undefined]]);
    expect(parts("echo ${x:-a;b} $((1+(2*3))); y")).toEqual([["echo ${x:-a;b} $((1+(2*3)))", ";"], ["y", undefined]]);
    expect(parts("f() { cc -c x.c; }; f")).toEqual([["f() { cc -c x.c; }", ";"], ["f", undefined]]);
  });

  it("treats keywords only in command position", () => {
    expect(parts("echo if done; echo }")).toEqual([["echo if done", ";"], ["echo }", undefined]]);
    expect(parts("for do in a; do echo; done; b")).toEqual([["for do in a; do echo; done", ";"], ["b", undefined]]);
  });

  it("skips comments (a # starting a word), not # inside a word", () => {
    expect(parts("ar rc l.a a.o\t# DLL needs; all\nranlib l.a")).toEqual([["ar rc l.a a.o", "\n"], ["ranlib l.a", undefined]]);
    expect(parts("echo a#b; c")).toEqual([["echo a#b", ";"], ["c", undefined]]);
    expect(parts("# only a comment")).toEqual([]);
  });

  it("reads .ONESHELL strings: newlines cut, continuations and newlines after && or | do not", () => {
    const line = "cd sub\ncc -c \\\n  x.c &&\n  echo ok\nnm x.o |\n  grep T";
    expect(parts(line)).toEqual([
      ["cd sub", "\n"],
      ["cc -c \\\n  x.c", "&&"],
      ["echo ok", "\n"],
      ["nm x.o |\n  grep T", undefined],
    ]);
  });

  it("keeps a here-document's body with its command", () => {
    expect(parts("cat <<EOF > f\nx; y\nEOF\ncc -c x.c")).toEqual([["cat <<EOF > f\nx; y\nEOF", "\n"], ["cc -c x.c", undefined]]);
    expect(parts("cat <<-'E'\n\ta\n\tE\nb")).toEqual([["cat <<-'E'\n\ta\n\tE", "\n"], ["b", undefined]]);
  });

  it("says when the string is not complete", () => {
    for (const line of ["echo 'x", 'echo "x', "( a", "a )", "if a; then b", "for f in a; do b", "echo $(a", "echo `a", "a > ;", "{ a; }}"]) {
      expect(splitLine(line).complete, line).toBe(false);
    }
  });

  it("finds program names in pipelines, loops, groups and substitutions", () => {
    expect(programs("nm -a src/x.o | awk -f p.awk > src/x.sym")).toEqual([["nm", "awk"]]);
    expect(programs("for f in *.c; do cc -c $f; done")).toEqual([["cc"]]);
    expect(programs("echo $(python3 gen.py) `perl -e 1`; X=1 2>/dev/null ./configure")).toEqual([["echo", "python3", "perl"], ["./configure"]]);
    expect(programs("case $x in a) sh a.sh;; esac; if test -f x; then make; fi")).toEqual([["sh"], ["test", "make"]]);
    expect(programs("$CC -c x.c; (cd sub && \"$M\" all)")).toEqual([["?$CC"], ["cd", "?$M"]]);
  });

  it("marks words: quotes removed, assignments, IO numbers, globs, expansions", () => {
    const [part] = splitLine(`A=1 printf '  %b\\n' "\\033[34m"CC"\\033[0m" -DX='' 1>&2 *.o [ x ] a[bc] ~/x "$y" '$z' b$`).parts;
    const words = part!.tokens.filter((t) => t.kind === "word");
    expect(words.map((t) => t.value)).toEqual(["A=1", "printf", "  %b\\n", "\\033[34mCC\\033[0m", "-DX=", "1", "2", "*.o", "[", "x", "]", "a[bc]", "~/x", "$y", "$z", "b$"]);
    expect(words.filter((t) => t.assignment).map((t) => t.value)).toEqual(["A=1"]);
    expect(words.filter((t) => t.ioNumber).map((t) => t.value)).toEqual(["1"]);
    expect(words.filter((t) => t.glob).map((t) => t.value)).toEqual(["*.o", "a[bc]"]);
    expect(words.filter((t) => t.expands).map((t) => t.value)).toEqual(["~/x", "$y"]);
  });
});
