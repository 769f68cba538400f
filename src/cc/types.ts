// The orion cc call and reply: what the native client forwards and the agent answers.
export interface CompilerCall { argv: string[]; cwd: string; env: Record<string, string> }
export interface CompilerReply {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  /** The call is not Orion's to answer: the caller runs the compiler itself (on its own stdio), as if Orion were absent. */
  runInClient?: boolean;
}
export interface CallHandler { handle(call: CompilerCall): Promise<CompilerReply> }
