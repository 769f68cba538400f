// A CallHandler that just runs the compiler: the agent's handler when the caching CcService is absent, and the benchmark's baseline.
import { runCaptured } from "../cc/compiler.js";
import type { CallHandler, CompilerCall, CompilerReply } from "../cc/types.js";

export class PassThroughHandler implements CallHandler {
  handle(call: CompilerCall): Promise<CompilerReply> {
    return runCaptured(call.argv[0] ?? "", call);
  }
}
