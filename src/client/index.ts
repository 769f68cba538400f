// The build client: submits a build's graph and source context to a head (in-process or over gRPC), runs its host steps, and writes its outputs into the tree.
export { runBuild, reportUnsubmitted, type ClientBuildOptions, type ClientBuildOutcome } from "./build.js";
export { orderedBefore } from "./host-step-loop.js";
export { reportEmptyBuild } from "./empty.js";
export { OutputWriter } from "./outputs.js";
export { OutputPathGuard } from "./output-path.js";
export { reuploadBlobs, type WrittenOutputs } from "./reupload.js";
