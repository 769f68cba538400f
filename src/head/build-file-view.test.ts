// Tests for the head's file view: tree paths inside the project, absolute paths outside, the build now for look-ups and the context for records.
import { describe, expect, it } from "vitest";
import { digestOf } from "../core/index.js";
import { type BuildView, buildFileView } from "./build-file-view.js";
import { ContextIndex } from "./context-index.js";

function build(): BuildView {
  const context = new ContextIndex(digestOf("root"), new Map([["src/gen.h", { digest: digestOf("old"), executable: false }]]));
  return { projectRoot: "/proj", context, produced: new Map([["src/gen.h", { digest: digestOf("new"), executable: false }]]), noCache: false };
}

describe("buildFileView", () => {
  const outside = async (p: string) => (p === "/opt/x/x.h" ? digestOf("x") : undefined);

  it("names files in the tree by tree path and the rest by absolute path", () => {
    const files = buildFileView(build(), "src", outside);
    expect(files.keyPath("gen.h")).toBe("src/gen.h");
    expect(files.keyPath("/proj/src/./gen.h")).toBe("src/gen.h");
    expect(files.keyPath("../../opt/x/x.h")).toBe("/opt/x/x.h");
    expect(files.keyPath("/opt/x/x.h")).toBe("/opt/x/x.h");
  });

  it("looks up the build as it is now, records what the context held, and probes the context", async () => {
    const files = buildFileView(build(), "src", outside);
    expect(await files.digestOf("src/gen.h")).toEqual(digestOf("new"));
    expect(await files.readDigestOf("src/gen.h")).toEqual(digestOf("old"));
    expect(await files.digestOf("/opt/x/x.h")).toEqual(digestOf("x"));
    expect(await files.readDigestOf("/opt/x/y.h")).toBeUndefined();
    expect(files.exists("src/gen.h")).toBe(true);
    expect(files.exists("src/other.h")).toBe(false);
  });
});
