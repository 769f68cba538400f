// Where the paths of any tool's command line sit (gcc/clang, ar, ranlib, ld), and what policy refuses on the way, from each tool's parsed call.
import { parseAr, parseRanlib } from "./archive.js";
import { driverSlots } from "./driver-slots.js";
import { LinkerWalker } from "./linker.js";
import { type Found, type PathRole, refuse } from "./slot.js";
import type { ToolFamily } from "./tools.js";

/** A whole-argument slot. */
function whole(argv: readonly string[], index: number, role: PathRole, option: string): Found {
  return { slot: { index, start: 0, end: argv[index]!.length, role, option } };
}

/** Findings placed by argv position, pushed in argv order. */
function inOrder(found: [number, Found][], out: Found[]): void {
  for (const [, f] of found.sort((x, y) => x[0] - y[0])) out.push(f);
}

/** `ar [--plugin P] [--target T] [-]op[mods] [relpos] [count] archive members…`. */
function arSlots(argv: readonly string[], out: Found[]): void {
  const call = parseAr(argv);
  inOrder([
    ...call.plugins.map((w): [number, Found] => [w.index, refuse("--plugin", "it loads a plugin into ar")]),
    ...call.outputDirs.map((w): [number, Found] => [w.index, { slot: { index: w.index, start: w.start, end: argv[w.index]!.length, role: "write", option: "--output" } }]),
    ...call.operands.filter((w) => w.text.startsWith("@")).map((w): [number, Found] => [w.index, { slot: { index: w.index, start: 1, end: w.text.length, role: "read", option: "@file" } }]),
  ], out);
  if (call.op === undefined) return;
  if (/x/.test(call.op) && /P/.test(call.op)) out.push(refuse("P", "extracting with full path names writes wherever the archive says"));
  if (call.archive) out.push(whole(argv, call.archive.index, "write", "archive"));
  for (const m of call.members) out.push(whole(argv, m.index, "read", "member"));
}

function ranlibSlots(argv: readonly string[], out: Found[]): void {
  const call = parseRanlib(argv);
  inOrder([
    ...call.plugins.map((w): [number, Found] => [w.index, refuse("--plugin", "it loads a plugin into ranlib")]),
    ...call.responseFiles.map((w): [number, Found] => [w.index, { slot: { index: w.index, start: 1, end: w.text.length, role: "read", option: "@file" } }]),
    ...call.archives.map((w): [number, Found] => [w.index, whole(argv, w.index, "write", "archive")]),
  ], out);
}

function ldSlots(argv: readonly string[], out: Found[]): void {
  const linker = new LinkerWalker();
  for (let i = 1; i < argv.length; i++) {
    linker.feed(argv[i]!, (role, option, start, end) => ({ slot: { index: i, start, end, role, option } }), 0, out);
  }
  linker.done();
}

/** Every path slot and policy refusal of `argv` read as `family`'s command line, in argv order. */
export function slotsOf(argv: readonly string[], family: ToolFamily): Found[] {
  const out: Found[] = [];
  if (family === "driver") driverSlots(argv, out);
  else if (family === "ar") arSlots(argv, out);
  else if (family === "ranlib") ranlibSlots(argv, out);
  else ldSlots(argv, out);
  return out;
}
