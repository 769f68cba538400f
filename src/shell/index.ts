// The recipe-line logic of make's Orion shell: split a sh command string into its top-level parts, read simple commands, and plan a line (rewrite its tool calls, run it as a step, or leave it to /bin/sh).
export { splitLine, RESERVED_WORDS, type SplitLine, type LinePart, type JoinOp, type Token, type CommandWord } from "./scan.js";
export { simpleCommand, type SimpleCommand } from "./simple.js";
export { CHEAP_PROGRAMS, isBuildTool, programKind, programIndex, type ProgramKind } from "./programs.js";
export { planLine, shellQuote, type LinePlan, type ToolCall, type PlanOptions } from "./plan.js";
