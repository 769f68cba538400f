// Shared by the client's unit tests: the ActionResult of a successful action whose outputs the writer fetches from the store by digest.
import type { Digest } from "../core/index.js";
import type { ActionResult } from "../gen/orion/v1/remote_execution.js";

/** Exit 0, no output text, these output files (their bytes in the store, none inline). */
export function actionResult(files: { path: string; digest: Digest; isExecutable: boolean }[]): ActionResult {
  return {
    outputFiles: files.map(({ path, digest, isExecutable }) => ({ path, digest, isExecutable, contents: Buffer.alloc(0) })),
    exitCode: 0,
    stdoutRaw: Buffer.alloc(0),
    stderrRaw: Buffer.alloc(0),
    stdoutDigest: undefined,
    stderrDigest: undefined,
    executionMetadata: undefined,
  };
}
