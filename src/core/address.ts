// HOST:PORT as the farm's flags and ORION_HEAD take it: one parser for the daemons, `orion build --head` and `orion cc`.
import { UsageError } from "./errors.js";

/** HOST:PORT (a bracketed IPv6 host allowed), or a usage error naming the flag or variable it came from. */
export function parseAddress(value: string, flag: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${flag} takes HOST:PORT, not ${JSON.stringify(value)}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Hosts that only this machine can reach: a daemon listening on one needs no token. */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
