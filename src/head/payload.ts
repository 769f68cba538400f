// What a task in the head's scheduler carries — a prepared action for nodes, or nothing for a host step — and the toolchain a prepared action needs.
import type { Prepared } from "./prepare.js";

/** What a queued task carries: a prepared action for nodes, or nothing for a host step. */
export type Payload = { prepared: Prepared } | { host: true };

export function toolchainOf(prepared: Prepared): string {
  return prepared.command.platform?.properties.find((x) => x.name === "toolchain")?.value ?? "";
}
