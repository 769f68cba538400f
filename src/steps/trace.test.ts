import { describe, expect, it } from "vitest";
import { parseCall, parseTrace, str } from "./trace.js";

describe("parseCall", () => {
  it("splits arguments, keeping quoted commas and brackets together", () => {
    const c = parseCall(7, 'execve("/bin/sh", ["sh", "-c", "a, (b)"], 0x7ffd /* 3 vars */) = 0');
    expect(c).toEqual({ pid: 7, name: "execve", args: ['"/bin/sh"', '["sh", "-c", "a, (b)"]', "0x7ffd /* 3 vars */"], ret: 0, errno: undefined });
  });

  it("reads errors", () => {
    const c = parseCall(1, 'openat(AT_FDCWD, "x.h", O_RDONLY|O_NOCTTY) = -1 ENOENT (No such file or directory)');
    expect(c).toMatchObject({ ret: -1, errno: "ENOENT" });
  });
});

describe("str", () => {
  it("undoes C escapes", () => {
    expect(str('"a\\"b\\\\c\\n\\x41\\101"')).toBe('a"b\\c\nAA');
    expect(str("AT_FDCWD")).toBeUndefined();
  });
});

describe("parseTrace", () => {
  const ops = (log: string, cwd = "/p") => parseTrace(log, cwd).accesses.map((a) => `${a.op} ${a.path}${"fresh" in a && a.fresh ? " fresh" : ""}`);

  it("classifies opens by flags and resolves relative paths against the process's cwd", () => {
    const log = [
      '10 openat(AT_FDCWD, "in.c", O_RDONLY) = 3',
      '10 openat(AT_FDCWD, "out.h", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4',
      '10 openat(AT_FDCWD, ".make-settings", O_WRONLY|O_CREAT|O_APPEND, 0666) = 5',
      '10 openat(AT_FDCWD, "src", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 6',
      '10 openat(AT_FDCWD, "/usr/include/none.h", O_RDONLY) = -1 ENOENT (No such file or directory)',
      '10 access("/usr/bin/gcc", X_OK) = 0',
    ].join("\n");
    expect(ops(log)).toEqual([
      "read /p/in.c",
      "write /p/out.h fresh",
      "write /p/.make-settings",
      "list /p/src",
      "absent /usr/include/none.h",
      "present /usr/bin/gcc",
    ]);
  });

  it("follows chdir and hands the cwd to children, even when a child's lines come before its parent's clone returns", () => {
    const log = [
      '10 chdir("sub") = 0',
      "10 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>",
      '11 openat(AT_FDCWD, "a.c", O_RDONLY) = 3',
      "10 <... clone resumed>, child_tidptr=0x7f) = 11",
      '11 chdir("/q") = 0',
      '11 openat(AT_FDCWD, "b.c", O_RDONLY) = 3',
      '10 openat(AT_FDCWD, "c.c", O_RDONLY) = 3',
    ].join("\n");
    expect(ops(log)).toEqual(["read /p/sub/a.c", "read /q/b.c", "read /p/sub/c.c"]);
  });

  it("resolves *at calls against directory fds, also duplicated ones (rm -r)", () => {
    const log = [
      '10 openat(AT_FDCWD, "d", O_RDONLY|O_DIRECTORY) = 3',
      "10 fcntl(3, F_DUPFD_CLOEXEC, 3) = 4",
      '10 unlinkat(4, "x.o", 0) = 0',
      '10 unlinkat(AT_FDCWD, "d", AT_REMOVEDIR) = 0',
      '10 renameat2(AT_FDCWD, "t.tmp", AT_FDCWD, "t", RENAME_NOREPLACE) = 0',
    ].join("\n");
    expect(ops(log)).toEqual(["list /p/d", "remove /p/d/x.o", "remove /p/d", "read /p/t.tmp", "remove /p/t.tmp", "write /p/t fresh"]);
  });

  it("gives up on what it cannot place: an unknown fd, a truncated path, an orphan process", () => {
    expect(parseTrace('10 unlinkat(9, "x", 0) = 0', "/p").untraceable).toMatch(/fd 9/);
    expect(parseTrace('10 openat(AT_FDCWD, "aaaa"..., O_RDONLY) = 3', "/p").untraceable).toMatch(/string limit/);
    expect(parseTrace('10 chdir("a") = 0\n12 openat(AT_FDCWD, "x", O_RDONLY) = 3', "/p").untraceable).toMatch(/without a parent/);
  });
});
