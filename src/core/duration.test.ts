import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it("reads a number and a unit; a bare number is seconds", () => {
    expect(parseDuration("500ms", "--x")).toBe(500);
    expect(parseDuration("90s", "--x")).toBe(90_000);
    expect(parseDuration("2m", "--x")).toBe(120_000);
    expect(parseDuration("1h", "--x")).toBe(3_600_000);
    expect(parseDuration("30d", "--x")).toBe(30 * 86_400_000);
    expect(parseDuration("1.5s", "--x")).toBe(1_500);
    expect(parseDuration("60", "--x")).toBe(60_000);
    expect(parseDuration("0", "--x")).toBe(0);
  });

  it("names the flag and what a duration looks like when the text is not one", () => {
    for (const bad of ["", "s", "-5s", "5 weeks", "1e3s", "10y"]) {
      expect(() => parseDuration(bad, "--no-node-timeout")).toThrow(/^--no-node-timeout: ".*" is not a duration \(a number and a unit: 500ms, 90s, 2m, 1h, 30d\)$/);
    }
    expect(() => parseDuration("99999999999999999d", "--x")).toThrow(/too long/);
    expect(() => parseDuration("8d", "--x", 7 * 86_400_000)).toThrow(/^--x: "8d" is too long a duration \(at most 7 d\)$/);
  });
});

describe("formatDuration", () => {
  it("says a duration in the unit a reader expects", () => {
    expect(formatDuration(250)).toBe("250 ms");
    expect(formatDuration(60_000)).toBe("60 s");
    expect(formatDuration(1_500)).toBe("1.5 s");
    expect(formatDuration(300_000)).toBe("5 min");
    expect(formatDuration(7 * 86_400_000)).toBe("7 d");
  });
});
