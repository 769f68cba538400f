// The build graph dag-extract produces: commands with their input and output files, classified by kind.

export type CommandKind = "compile" | "archive" | "link" | "depgen" | "configure" | "script" | "other";

export interface GraphCommand {
  /** Stable within one extraction: "a1", "a2", ... in the order the build tool would run them. */
  id: string;
  kind: CommandKind;
  /** Short human label, ninja style: "CC lib/add.o", "AR lib/libcalc.a", "LINK app1/app1", "GEN include/gen.h". */
  label: string;
  /** Working directory, relative to the project root ("" = the root). */
  cwd: string;
  /** The command as argv. For host steps that need a shell, ["/bin/sh", "-c", line]. */
  argv: string[];
  /** The original command line as the build tool printed it. */
  line: string;
  /** Files the command names as inputs (sources, objects, archives), relative to the project root. */
  inputs: string[];
  /** Files the command writes, relative to the project root. */
  outputs: string[];
  /** Ids of commands that must finish first. */
  deps: string[];
  /**
   * True when the command runs on the client, in the real tree, outside the
   * cache (anything not a recognised compile, archive or link).
   */
  host: boolean;
  /**
   * A host step that only prints (echo or printf, no redirection, no shell syntax): it touches no file,
   * so it is no barrier, the tree need not be re-read after it, and a build of nothing else is a no-op.
   */
  printsOnly?: boolean;
}

export interface BuildGraph {
  /** Absolute path of the project root. */
  root: string;
  /** How the graph was found. */
  source: "make" | "compile_commands";
  commands: GraphCommand[];
  /** What the user should know about how the graph was found (a compile database that nothing links), one line each. */
  notes?: string[];
}
