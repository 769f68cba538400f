import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { staticPrintf } from "./printf.js";

/** What /bin/sh's printf prints for the same arguments. */
const real = (argv: string[]) => execFileSync("/bin/sh", ["-c", 'printf "$@"', "sh", ...argv.slice(1)]);

describe("staticPrintf", () => {
  it("prints what /bin/sh's printf prints for %s, %b, %% and escapes, reusing the format for extra arguments", () => {
    for (const argv of [
      ["printf", "    %b %b\\n", "\\033[34mCC\\033[0m", "\\033[33mquicklist.o\\033[0m"],
      ["printf", "%s\\n", "a", "b", "c"],
      ["printf", "hello"],
      ["printf", "%b", "a\\tb\\\\c"],
      ["printf", "\\101\\n%%done\\n"],
      ["printf", "%s-%s\\n", "only"],
      ["printf", "%b\\n", "\\0101x é"],
    ]) {
      expect(staticPrintf(argv), JSON.stringify(argv)).toEqual(real(argv));
    }
  });

  it("declines what it does not read: other conversions, \\c, unknown escapes, options", () => {
    for (const argv of [["printf", "%d", "3"], ["printf", "%b", "x\\c"], ["printf", "\\q"], ["printf", "-v", "x"], ["printf"], ["printf", "%5s", "a"]]) {
      expect(staticPrintf(argv), JSON.stringify(argv)).toBeUndefined();
    }
  });
});
