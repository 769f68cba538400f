// The farm's transport: gRPC servers and clients for the head's services. Only the CLI's farm commands import it (lazily).
export { clientTlsProblem, connectFarm, type ConnectOptions, type FarmConnection } from "./connection.js";
export { startFarmServer, startPeerBlobServer, type FarmServer, type FarmServerOptions } from "./server.js";
export { GrpcBlobStore } from "./grpc-blob-store.js";
export { tokenAuthenticator } from "./auth.js";
