// The one error dag-extract throws when a build tree cannot be turned into a graph.

export class ExtractError extends Error {
  /** What the build tool wrote to stderr ("" when no tool ran). */
  readonly stderr: string;
  /** The build tool's exit code; undefined when it did not run or no tool was involved. */
  readonly exitCode: number | undefined;

  constructor(message: string, options: { stderr?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ExtractError";
    this.stderr = options.stderr ?? "";
    this.exitCode = options.exitCode;
  }
}
