// The head's gRPC server (Blobs, NodeControl and Builds on one port, behind one gate that checks each caller's role), and a node's read-only blob server for its peers.
import { makeDirSync } from "../core/fs.js";
import * as grpc from "@grpc/grpc-js";
import { type Logger, OrionError, UsageError, errorMessage } from "../core/index.js";
import type { BlobStore } from "../cas/index.js";
import type { BuildsApi, FarmStatusApi, NodeAttachments, NodeControlApi } from "../head/api.js";
import { BlobsService } from "../gen/orion/v1/blobs.js";
import { BuildsService, NodeControlService } from "../gen/orion/v1/scheduler.js";
import { type AuthPolicy, alreadyAuthenticated } from "./auth.js";
import { HEAD_METHOD_ROLES, type MethodRoles, PEER_METHOD_ROLES, authInterceptor } from "./auth-interceptor.js";
import { blobService } from "./blob-service.js";
import { buildsService, nodeControlService } from "./head-services.js";
import { SERVER_OPTIONS } from "./limits.js";
import { messageCapInterceptor, SERVER_RECEIVE_LIMIT, withMessageCaps } from "./message-caps.js";

export interface FarmServerOptions {
  head: NodeControlApi & NodeAttachments & BuildsApi & FarmStatusApi;
  store: BlobStore;
  /** HOST:PORT; port 0 binds a free port. */
  listen: string;
  /** The clients' token (and the nodes', without `nodeToken`). */
  token?: string;
  /** The nodes' token: NodeControl (and a node's peer blob server) accept it, Builds refuses it. */
  nodeToken?: string;
  /** Spool folder for streamed uploads. */
  tmpDir: string;
  /**
   * PEM certificate chain and private key: serve TLS instead of plaintext. With `clientCa`, every peer must
   * present a certificate signed by it (mutual TLS); one without is refused in the handshake.
   */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  logger: Logger;
}

export interface FarmServer {
  /** HOST:PORT actually bound. */
  address: string;
  close(): Promise<void>;
}

export async function startFarmServer(o: FarmServerOptions): Promise<FarmServer> {
  makeDirSync(o.tmpDir);
  // The gate in front of the services has checked the caller and its role before a handler runs.
  const auth = alreadyAuthenticated;
  return serve(o, HEAD_METHOD_ROLES, (server) => {
    server.addService(withMessageCaps(BlobsService), blobService({ store: o.store, auth, tmpDir: o.tmpDir, logger: o.logger }));
    server.addService(withMessageCaps(NodeControlService), nodeControlService(o.head, auth, o.logger));
    server.addService(withMessageCaps(BuildsService), buildsService(o.head, auth, o.logger));
  });
}

/** A node's blob server: its own store, read-only, to peers (DESIGN.md, source context: P2P). */
export async function startPeerBlobServer(o: Omit<FarmServerOptions, "head">): Promise<FarmServer> {
  makeDirSync(o.tmpDir);
  const auth = alreadyAuthenticated;
  // Its peers are nodes: they present the node token (the shared one on a farm without --node-token).
  return serve({ ...o, token: undefined, nodeToken: o.nodeToken ?? o.token }, PEER_METHOD_ROLES, (server) =>
    server.addService(withMessageCaps(BlobsService), blobService({ store: o.store, auth, tmpDir: o.tmpDir, logger: o.logger, readOnly: true })),
  );
}

async function serve(
  o: Pick<FarmServerOptions, "listen" | "tls" | "token" | "nodeToken" | "logger">,
  methodRoles: MethodRoles,
  addServices: (server: grpc.Server) => void,
): Promise<FarmServer> {
  const policy: AuthPolicy = { clientToken: o.token, nodeToken: o.nodeToken };
  // Both before a request body is read: the caller and its role from the metadata, and each method's own request cap
  // from the message's length prefix (services wrapped by withMessageCaps). The cap's interceptor comes first: it
  // needs grpc-js's own call, which only the first interceptor is handed.
  const server = new grpc.Server({
    ...SERVER_OPTIONS,
    "grpc.max_receive_message_length": SERVER_RECEIVE_LIMIT,
    interceptors: [messageCapInterceptor, authInterceptor({ policy, methodRoles, logger: o.logger })],
  });
  addServices(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(o.listen, credentials(o.tls), (err, p) => (err ? reject(err) : resolve(p))),
  ).catch((err) => {
    const msg = `cannot listen on ${o.listen}: ${errorMessage(err)}`;
    throw /EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOTFOUND/.test(msg) ? new UsageError(msg, err) : new OrionError(msg, { cause: err });
  });
  const host = o.listen.slice(0, o.listen.lastIndexOf(":"));
  return {
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Open streams (a watch, a waiting lease) would hold a graceful shutdown forever: give them a moment, then cut.
        const timer = setTimeout(() => server.forceShutdown(), 1000);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

function credentials(tls: FarmServerOptions["tls"]): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  try {
    return grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], !!tls.clientCa);
  } catch (err) {
    throw new UsageError(`cannot use the TLS certificate and key: ${errorMessage(err)}`, err);
  }
}
