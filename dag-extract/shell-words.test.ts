// Tests for splitting command lines into argv and detecting lines that need a shell.

import { describe, expect, it } from "vitest";
import { joinShellWords, splitShellWords } from "./shell-words.js";

describe("splitShellWords", () => {
  it("splits plain words on spaces and tabs", () => {
    expect(splitShellWords("gcc  -O2\t-c a.c -o a.o")).toEqual({ words: ["gcc", "-O2", "-c", "a.c", "-o", "a.o"], needsShell: false });
  });

  it("removes quotes and keeps quoted spaces", () => {
    expect(splitShellWords(`gcc -DNAME='"x y"' "-DA=b c" ''`)).toEqual({
      words: ["gcc", `-DNAME="x y"`, "-DA=b c", ""],
      needsShell: false,
    });
  });

  it("handles backslash escapes outside and inside double quotes", () => {
    expect(splitShellWords(String.raw`a\ b "c\"d\n" e\\f`).words).toEqual(["a b", String.raw`c"d\n`, String.raw`e\f`]);
  });

  it("drops backslash-newline continuations", () => {
    expect(splitShellWords("gcc -c \\\n  a.c")).toEqual({ words: ["gcc", "-c", "a.c"], needsShell: false });
  });

  it.each([
    ["a; b"],
    ["a && b"],
    ["a || b"],
    ["a | b"],
    ["a > out"],
    ["a < in"],
    ["a 2>&1"],
    ["(a)"],
    ["a &"],
    ["echo $HOME"],
    ["echo `date`"],
    ['echo "$HOME"'],
    ["rm *.o"],
    ["ls a?"],
    ["ls [ab]"],
    ["ls ~/x"],
    ["a\nb"],
    ["CC=gcc make"],
    ["cd sub"],
    ["echo 'unterminated"],
    ["if true; then :; fi"],
  ])("needs a shell for %j", (line) => {
    expect(splitShellWords(line).needsShell).toBe(true);
  });

  it.each([
    ["gcc -DX=1 -c a.c"],
    ["echo 'a;b' \"c|d\" e\\>f"],
    ["ar rcs lib/x.a a.o"],
    ["echo a~b"],
    ['"CC=gcc" x'],
  ])("needs no shell for %j", (line) => {
    expect(splitShellWords(line).needsShell).toBe(false);
  });

  it("drops a trailing comment, as sh does, without needing a shell", () => {
    // Lua's Makefile (Redis's deps/lua/src): `$(AR) $@ $(CORE_O) $(LIB_O)\t# DLL needs all object files`.
    expect(splitShellWords("ar rc liblua.a lapi.o\t# DLL needs all object files")).toEqual({ words: ["ar", "rc", "liblua.a", "lapi.o"], needsShell: false });
    expect(splitShellWords("gcc -c a.c #x; rm -rf b")).toEqual({ words: ["gcc", "-c", "a.c"], needsShell: false });
    // Only an unquoted # that starts a word opens a comment.
    expect(splitShellWords("gcc -DX=a#b '#c' -c a.c")).toEqual({ words: ["gcc", "-DX=a#b", "#c", "-c", "a.c"], needsShell: false });
    // A comment ends at a newline: what follows is another command.
    expect(splitShellWords("a # c\nb").needsShell).toBe(true);
  });

  it("keeps operators as their own words", () => {
    expect(splitShellWords("cd sub&&make x").words).toEqual(["cd", "sub", "&&", "make", "x"]);
  });

  it("joins words back into a line that splits the same", () => {
    const words = ["gcc", "-DA=b c", "it's", "", "plain.c"];
    expect(splitShellWords(joinShellWords(words))).toEqual({ words, needsShell: false });
  });
});
