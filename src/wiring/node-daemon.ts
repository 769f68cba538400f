// `orion node`'s process once its flags are read: its stores, its peer blob server, the input chain and the executor, and the Node that leases from the head.
import { join } from "node:path";
import { hostname } from "node:os";
import { LOOPBACK_HOSTS, type Logger, parseAddress } from "../core/index.js";
import { createBlobStore } from "../cas/index.js";
import { LocalExecutor, type ActionSandbox } from "../exec/index.js";
import { type FarmConnection, type FarmServerOptions, startPeerBlobServer } from "../grpc/index.js";
import type { Toolchain } from "../gen/orion/v1/scheduler.js";
import { FarmExecutor, InputChain, Node } from "../node/index.js";
import { PeerConnections } from "./peer-connections.js";

export interface NodeDaemonOptions {
  /** Connected to the head; the daemon closes it. */
  conn: FarmConnection;
  /** The head's host as given: a node on loopback announces no blob address to a head on another machine. */
  headHost: string;
  dataDir: string;
  identity: { name: string; instanceId: string };
  slots: number;
  toolchains: Toolchain[];
  /** Undefined: actions run unsandboxed. The daemon closes it. */
  sandbox: ActionSandbox | undefined;
  /** Where the peer blob server listens, and the address peers are told instead (`--advertise`). */
  listen: string;
  advertise?: string;
  /** Presented to the head and to peers, and required from peers. */
  token?: string;
  /** This node's certificate (and the CA its peers' must be signed by), serving its blobs. */
  tls: FarmServerOptions["tls"];
  /** The client side of TLS towards peers. */
  peerTls: { tlsCa?: Buffer; tlsCert?: Buffer; tlsKey?: Buffer };
  /** --tls-ca given: peers expect TLS. */
  expectsTls: boolean;
  onRegistered(name: string): void;
  logger: Logger;
}

export interface NodeDaemon {
  node: Node;
  /** The peer blob server's bound address, and what peers are told ("" for nothing). */
  blobAddress: string;
  advertise: string;
  /** Registers with the head and starts leasing; on failure everything is closed. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The address peers are told: the bound one, or this host's name with the bound port when bound to every interface. */
function advertisedAddress(bound: string): string {
  const { host } = parseAddress(bound, "--listen");
  const port = bound.slice(bound.lastIndexOf(":") + 1);
  return host === "0.0.0.0" || host === "::" || host === "[::]" ? `${hostname()}:${port}` : bound;
}

/** Builds the node's parts and its peer blob server (listening); `start` registers it. */
export async function openNodeDaemon(o: NodeDaemonOptions): Promise<NodeDaemon> {
  const { conn, dataDir, logger, sandbox, token } = o;
  // The node's own folder: no other process writes or evicts its store.
  const local = createBlobStore({ dir: join(dataDir, "cas"), logger, soleWriter: true });
  // Peers read this node's own store (never through to the head: each asks the head itself).
  if (o.expectsTls && !o.tls) logger.warn("--tls-ca without --tls-cert: this node serves its blobs in plaintext, which peers reaching it over TLS cannot read; they fetch from the head instead");
  const blobServer = await startPeerBlobServer({ store: local, listen: o.listen, nodeToken: token, tls: o.tls, tmpDir: join(dataDir, "tmp"), logger }).catch((err) => {
    conn.close();
    local.close();
    throw err;
  });
  let advertise = o.advertise ?? advertisedAddress(blobServer.address);
  if (!o.advertise && !LOOPBACK_HOSTS.has(o.headHost) && LOOPBACK_HOSTS.has(parseAddress(advertise, "--listen").host)) {
    // Nodes on other machines would dial their own loopback (and show the token to whatever listens there): announce nothing.
    logger.warn({ listen: blobServer.address }, "the head is on another machine but this node serves its blobs on loopback: it serves no peers (give --listen 0.0.0.0:PORT with a token or client certificates, or --advertise HOST:PORT)");
    advertise = "";
  }
  // A peer that stops answering is given up on after 20 s per read (a minute for a whole tree): the head covers.
  const peers = new PeerConnections({ token, ...o.peerTls, readTimeoutMs: 20_000 });
  // The node's inputs in one fixed order: its own store, the peers a lease names, the head (a tar stream, then blob by blob).
  const inputs = new InputChain({ local, head: conn.blobs, peer: (address) => peers.blobs(address), logger });
  const store = inputs.store;
  // The node owns its data dir (its identity lives there): its contexts may be patched into the next one in place.
  const executor = new LocalExecutor({ store, workDir: join(dataDir, "work"), workerName: o.identity.name, logger, inputs, sandbox: async () => sandbox, ownsWorkDir: true });
  const node = new Node({
    name: o.identity.name,
    slots: o.slots,
    head: conn.nodeControl,
    executor: new FarmExecutor({ inner: executor, toolchains: o.toolchains, local: store, remote: conn.blobs, inputs }),
    logger,
    toolchains: o.toolchains,
    instanceId: o.identity.instanceId,
    advertise,
    sandbox: sandbox?.description ?? "",
    leaseWaitMs: 10_000,
    onRegistered: o.onRegistered,
  });
  return {
    node,
    blobAddress: blobServer.address,
    advertise,
    async start() {
      try {
        await node.start();
      } catch (err) {
        await blobServer.close();
        conn.close();
        store.close();
        await sandbox?.close();
        throw err;
      }
    },
    async stop() {
      await node.stop();
      await executor.close();
      await sandbox?.close();
      await blobServer.close();
      peers.close();
      // Where this node's inputs came from over its life: peers, the head blob by blob, the head as tar streams.
      logger.info(inputs.stats(), "inputs received");
      conn.close();
      store.close();
    },
  };
}
