// What one client build is given (the graph, the head, its stores and callbacks) and what it ends with.
import type { Logger } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { StatCache } from "../merkle/index.js";
import type { BuildsApi } from "../head/api.js";
import type { BuildEvent, Summary } from "../scheduler/index.js";
import type { BuildGraph } from "../../dag-extract/index.js";
import type { ProgramDigests } from "../cache/index.js";
import type { StepCache } from "../steps/step-cache.js";

export interface ClientBuildOptions {
  /** What to build, as dag-extract found it. */
  graph: BuildGraph;
  noCache: boolean;
  retries: number;
  /** On a farm, how long actions wait while no registered node can run them before they fail (absent or 0: at once). */
  noNodeTimeoutMs?: number;
  head: BuildsApi;
  /** Where the head reads blobs from (embedded: its own store). */
  store: BlobStore;
  statCache: StatCache;
  programs: ProgramDigests;
  logger: Logger;
  onEvent(event: BuildEvent): void;
  /** Diagnostics and host-step output: never stdout, which belongs to the reporter. */
  diagnostics(chunk: string | Uint8Array): void;
  signal?: AbortSignal;
  /** Pass the context's file map in-process instead of making the head read it back (embedded only). */
  inProcess?: boolean;
  env?: NodeJS.ProcessEnv;
  /** The whole-step cache for host steps (absent: they run every time). */
  stepCache?: StepCache;
  /** Tools a sub-make run as a host step may start at once (default 1). */
  hostJobs?: number;
  /** The client cache's folder (ORION_CACHE_DIR), named when it fills up. */
  cacheDir?: string;
}

export interface ClientBuildOutcome {
  summary: Summary;
  exitCode: number;
  graph: BuildGraph;
}
