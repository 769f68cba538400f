// Learned durations: remembered across instances, averaged, unknown until seen.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SqliteDurationHistory } from "./durations.js";

describe("SqliteDurationHistory", () => {
  it("learns a moving average per kind and label, and keeps it on disk", () => {
    const path = join(mkdtempSync(join(tmpdir(), "orion-durations-")), "d.db");
    const h = new SqliteDurationHistory(path);
    expect(h.estimate("compile", "CC a.o")).toBeUndefined();
    h.record("compile", "CC a.o", 100);
    h.record("compile", "CC a.o", 300);
    expect(h.estimate("compile", "CC a.o")).toBe(200);
    expect(h.estimate("link", "CC a.o")).toBeUndefined();
    h.close();
    const again = new SqliteDurationHistory(path);
    expect(again.estimate("compile", "CC a.o")).toBe(200);
    again.close();
  });
});
