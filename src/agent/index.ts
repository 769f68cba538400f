// The orion cc agent's public surface: the wire format, the socket path rule, the server and the pass-through handler.
export { PROTOCOL_VERSION, ReplyStatus, ProtocolError, FrameReader, encodeRequest, decodeRequest, encodeReply, decodeReply, type Reply } from "./protocol.js";
export { agentSocketPath, agentSideFiles, type SocketPathInput } from "./socket-path.js";
export { startAgent, socketAnswers, AgentAlreadyRunning, type Agent, type AgentOptions } from "./server.js";
export { PassThroughHandler } from "./passthrough.js";
