// Composes Orion's processes from their parts, in one place: the embedded head and node of `orion build`, and the farm's head and node daemons (the embedded build imports ./embedded.js directly, so it never loads grpc-js).
export { startEmbedded, type Embedded, type EmbeddedOptions } from "./embedded.js";
export { openHeadOverCache, type HeadOverCache, type HeadTiming } from "./head-over-cache.js";
export { startHeadDaemon, type HeadDaemon, type HeadDaemonOptions } from "./head-daemon.js";
export { openNodeDaemon, type NodeDaemon, type NodeDaemonOptions } from "./node-daemon.js";
export { farmConnection, PeerConnections } from "./peer-connections.js";
