// The call and reply of the agent's clients (orion cc, orion-sh): what the native client forwards and the agent answers.
export interface CompilerCall {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** Aborted: the tool this call runs is killed with its process group (orion build's Ctrl-C). */
  signal?: AbortSignal;
}
export interface CompilerReply {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  /** The call is not Orion's to answer: the caller runs the compiler itself (on its own stdio), as if Orion were absent. */
  runInClient?: boolean;
  /**
   * Run this command string in the caller's shell instead (orion-sh's calls only: the client execs its real shell with
   * the line replaced; stderr is printed first, stdout and exitCode are unused). Must not contain NUL.
   */
  rewrite?: string;
}
export interface CallHandler { handle(call: CompilerCall): Promise<CompilerReply> }
