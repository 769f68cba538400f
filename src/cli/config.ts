// Configuration: flags > ORION_* environment > the project's .orion.json > the user's config file; validated with zod, unknown keys refused.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { z } from "zod";
import { UsageError } from "../core/errors.js";
import { MAX_NO_NODE_TIMEOUT_MS, parseDuration } from "../core/duration.js";

/** The one config type; zod is loaded only when there is something to validate (it costs ~120 ms to load, a no-op build 0.3 s). */
async function makeSchema() {
  const { z } = await import("zod");
  return z
    .object({
      /** Where the CAS, the action cache and the stat cache live. */
      cacheDir: z.string().min(1),
      /** Actions in flight (embedded: the node's slots). */
      jobs: z.number().int().min(1).max(1024),
      /** Extra attempts after an infrastructure failure. */
      retries: z.number().int().min(0).max(100),
      /** How long a farm build waits while no registered node can run its actions ("60s", "2m"), then exits 3. */
      noNodeTimeout: z.string().refine((t) => isDuration(t, MAX_NO_NODE_TIMEOUT_MS), "expected a duration of at most 7d such as 500ms, 60s, 2m, 1h"),
      /** Neither read nor write the action cache. */
      noCache: z.boolean(),
      /** CAS size bound; least recently used blobs go first. */
      maxCacheBytes: z.number().int().min(1024 * 1024),
      logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
      logFile: z.string().min(1),
      /** A farm's head (HOST:PORT); absent = the embedded default. */
      head: z.string().regex(/^[^:\s]+:\d{1,5}$/, "expected HOST:PORT"),
      token: z.string().min(1),
      /** The token nodes present to a head that tells them from clients (orion head/node --node-token). */
      nodeToken: z.string().min(1),
      /** PEM file of the certificate authority a farm's head is checked against (TLS). */
      tlsCa: z.string().min(1),
      /** PEM client certificate and key presented to a head that asks for one (mutual TLS). */
      tlsCert: z.string().min(1),
      tlsKey: z.string().min(1),
      /** The embedded node runs actions without its bubblewrap sandbox (benchmarks, machines without user namespaces). */
      unsandboxed: z.boolean(),
      /** Who drives a build: make itself, its tool calls reaching Orion through shims ("make"), or Orion's own graph from make's dry run ("graph"). */
      driver: z.enum(["make", "graph"]),
    })
    .partial()
    .strict();
}

export type Config = z.infer<Awaited<ReturnType<typeof makeSchema>>>;


export type ResolvedConfig = Config & Required<Pick<Config, "cacheDir" | "jobs" | "retries" | "noNodeTimeout" | "noCache" | "maxCacheBytes" | "logLevel">>;

/** ORION_* variables → config keys, with their parsers. */
const ENV_KEYS: [string, keyof Config, (v: string) => unknown][] = [
  ["ORION_CACHE_DIR", "cacheDir", String],
  ["ORION_JOBS", "jobs", Number],
  ["ORION_RETRIES", "retries", Number],
  ["ORION_NO_NODE_TIMEOUT", "noNodeTimeout", String],
  ["ORION_NO_CACHE", "noCache", (v) => v === "1" || v === "true"],
  ["ORION_MAX_CACHE_BYTES", "maxCacheBytes", Number],
  ["ORION_LOG_LEVEL", "logLevel", String],
  ["ORION_LOG_FILE", "logFile", String],
  ["ORION_HEAD", "head", String],
  ["ORION_TOKEN", "token", String],
  ["ORION_NODE_TOKEN", "nodeToken", String],
  ["ORION_TLS_CA", "tlsCa", String],
  ["ORION_TLS_CERT", "tlsCert", String],
  ["ORION_TLS_KEY", "tlsKey", String],
  ["ORION_UNSANDBOXED", "unsandboxed", (v) => v === "1" || v === "true"],
  ["ORION_DRIVER", "driver", String],
];

function isDuration(text: string, maxMs: number): boolean {
  try {
    parseDuration(text, "", maxMs);
    return true;
  } catch {
    return false;
  }
}

function describe(err: z.ZodError, where: string): string {
  const issue = err.issues[0]!;
  const key = issue.path.join(".");
  if (issue.code === "unrecognized_keys") return `${where}: unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
  return `${where}: ${key ? `${key}: ` : ""}${issue.message}`;
}

let schema: Awaited<ReturnType<typeof makeSchema>> | undefined;

async function parsePart(raw: unknown, where: string): Promise<Config> {
  if (raw && typeof raw === "object" && Object.values(raw).every((v) => v === undefined)) return {};
  // The schema only checks (no defaults, no transforms): a part it passed before is passed again as it is, and the
  // ~100 ms zod takes to load is spent once per new configuration, not on every build (ORION_CACHE_DIR set, say).
  const memoKey = createHash("sha256").update(JSON.stringify([where, raw])).digest("hex");
  const memo = validMemo();
  if (memo.keys.has(memoKey)) return raw as Config;
  schema ??= await makeSchema();
  const r = schema.safeParse(raw);
  if (!r.success) throw new UsageError(describe(r.error, where));
  memo.add(memoKey);
  return r.data;
}

/** Configurations zod passed on this machine (by digest), in a small file per user; losing it only costs a reload of zod. */
let memoFile: { keys: Set<string>; add(key: string): void } | undefined;
function validMemo(): { keys: Set<string>; add(key: string): void } {
  if (memoFile) return memoFile;
  const file = join(tmpdir(), `orion-${process.getuid?.() ?? 0}`, "config-valid");
  let keys: Set<string>;
  try {
    keys = new Set(readFileSync(file, "utf8").split("\n").filter(Boolean));
  } catch {
    keys = new Set();
  }
  memoFile = {
    keys,
    add(key) {
      if (keys.has(key)) return;
      keys.add(key);
      try {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
        // The newest few hundred are enough: a machine has few configurations.
        writeFileSync(file, [...keys].slice(-500).join("\n") + "\n", { mode: 0o600 });
      } catch {
        // Unwritable /tmp: zod loads next time too.
      }
    },
  };
  return memoFile;
}

async function readJson(file: string): Promise<Config> {
  if (!existsSync(file)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new UsageError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parsePart(raw, file);
}

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "orion");
}

export interface LoadConfigInput {
  env: NodeJS.ProcessEnv;
  /** The project directory, for .orion.json (optional). */
  projectDir?: string;
  flags: Config;
  cores: number;
}

export async function loadConfig(input: LoadConfigInput): Promise<ResolvedConfig> {
  const userFile = join(input.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "orion", "config.json");
  const user = await readJson(userFile);
  const project = input.projectDir ? await readJson(join(input.projectDir, ".orion.json")) : {};
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key, parse] of ENV_KEYS) {
    const v = input.env[name];
    if (v !== undefined && v !== "") fromEnv[key] = parse(v);
  }
  const envConfig = await parsePart(fromEnv, "environment (ORION_*)");
  const flags = await parsePart(input.flags, "command line");
  const merged = { ...user, ...project, ...envConfig, ...stripUndefined(flags) };
  return {
    cacheDir: defaultCacheDir(input.env),
    jobs: input.cores,
    retries: 2,
    noNodeTimeout: "60s",
    noCache: false,
    maxCacheBytes: 10 * 1024 ** 3,
    logLevel: "warn",
    ...merged,
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
