// Where the agent listens: the one rule the TypeScript agent and the C client (native/cc/orion-cc.c) both apply.
import { Buffer } from "node:buffer";

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export interface SocketPathInput {
  env: Record<string, string | undefined>;
  uid: number;
  /** The user's home directory, used only when neither XDG_RUNTIME_DIR, ORION_CACHE_DIR nor XDG_CACHE_HOME is set. */
  home: string;
}

/**
 * $ORION_AGENT_SOCKET when set; else `<runtime dir>/orion-agent-<uid>.sock`, where the runtime dir is
 * $XDG_RUNTIME_DIR, else the cache dir ($ORION_CACHE_DIR, $XDG_CACHE_HOME/orion, ~/.cache/orion);
 * when that path does not fit in a sockaddr_un, `/tmp/orion-<uid>/orion-agent-<uid>.sock`.
 * Empty variables count as unset, as in the config loader.
 */
export function agentSocketPath({ env, uid, home }: SocketPathInput): string {
  const set = (name: string): string | undefined => (env[name] ? env[name] : undefined);
  const explicit = set("ORION_AGENT_SOCKET");
  if (explicit) return explicit;
  const dir = set("XDG_RUNTIME_DIR") ?? set("ORION_CACHE_DIR") ?? under(set("XDG_CACHE_HOME") ?? under(home, ".cache"), "orion");
  const path = under(dir, `orion-agent-${uid}.sock`);
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES ? path : `/tmp/orion-${uid}/orion-agent-${uid}.sock`;
}

/** dir + "/" + name with dir's trailing slashes dropped — no other normalisation, so the C client's byte count agrees. */
function under(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, "")}/${name}`;
}

/**
 * The files kept beside the socket: the client's start-up lock, the agent's pid file and its log, and `starting`: the
 * pid of an agent a build started in the background that does not listen yet (orion-build waits for it, briefly).
 */
export function agentSideFiles(socketPath: string): { lock: string; pid: string; log: string; starting: string } {
  return { lock: `${socketPath}.lock`, pid: `${socketPath}.pid`, log: `${socketPath}.log`, starting: `${socketPath}.starting` };
}
