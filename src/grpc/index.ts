// The farm's transport: gRPC servers and clients for the head's services. Loaded only on the farm's paths (the daemons in wiring/, `orion build --head`, `orion cc`'s farm), never by an embedded build.
export { clientTlsProblem, connectFarm, type ConnectOptions, type FarmConnection } from "./connection.js";
export { startFarmServer, startPeerBlobServer, type FarmServer, type FarmServerOptions } from "./server.js";
export { GrpcBlobStore } from "./grpc-blob-store.js";
export { tokenAuthenticator } from "./auth.js";
