// A connection to a head: one keep-alive channel shared by the Blobs, NodeControl and Builds clients, with the token on every call.
import * as grpc from "@grpc/grpc-js";
import { BlobsClient } from "../gen/orion/v1/blobs.js";
import { BuildsClient, NodeControlClient } from "../gen/orion/v1/scheduler.js";
import { tokenInterceptor } from "./auth.js";
import { GrpcBlobStore } from "./grpc-blob-store.js";
import { GrpcBuilds, GrpcNodeControl } from "./head-clients.js";
import { CHANNEL_OPTIONS } from "./limits.js";

export interface FarmConnection {
  address: string;
  blobs: GrpcBlobStore;
  nodeControl: GrpcNodeControl;
  builds: GrpcBuilds;
  /**
   * Resolves once the channel is connected; rejects after `ms`, or at the first failed attempt with
   * `failFast` (a command line should not sit out a refused connection; a daemon may wait for its head).
   */
  waitForReady(ms: number, options?: { failFast?: boolean }): Promise<void>;
  close(): void;
}

export interface ConnectOptions {
  token?: string;
  /** PEM certificate(s) to trust: the connection uses TLS and checks the head's certificate against them. */
  tlsCa?: Buffer;
  /** A client certificate chain and its key (PEM), presented to a server that asks for one (mutual TLS). */
  tlsCert?: Buffer;
  tlsKey?: Buffer;
  /** A short-lived client (one build): its blob store remembers what the head holds instead of asking again. */
  shortLived?: boolean;
  /** A deadline on each blob read (see GrpcBlobStoreOptions.readTimeoutMs): for peers, which may stop answering. */
  readTimeoutMs?: number;
}

/** What is wrong with a client's TLS files, named as its caller names them (flags, variables); undefined when nothing. */
export function clientTlsProblem(
  given: { ca?: string; cert?: string; key?: string },
  names: { ca: string; cert: string; key: string },
): string | undefined {
  if (!given.cert !== !given.key) return `${names.cert} and ${names.key} go together`;
  if (given.cert && !given.ca) return `${names.cert} needs ${names.ca}: a client certificate is only presented over TLS`;
  return undefined;
}

export function connectFarm(address: string, options: ConnectOptions = {}): FarmConnection {
  const credentials = options.tlsCa ? grpc.credentials.createSsl(options.tlsCa, options.tlsKey ?? null, options.tlsCert ?? null) : grpc.credentials.createInsecure();
  const channel = new grpc.Channel(address, credentials, CHANNEL_OPTIONS);
  // A failed TLS handshake looks like any refused connection from here: name what to check.
  const tlsHint = options.tlsCa
    ? ` (over TLS: is the head's certificate signed by the --tls-ca given${options.tlsCert ? ", and this client's by the head's --tls-client-ca" : ", and does the head ask for a client certificate (--tls-cert/--tls-key)"}?)`
    : "";
  const clientOptions: grpc.ClientOptions = {
    channelOverride: channel,
    interceptors: options.token ? [tokenInterceptor(options.token)] : [],
  };
  const blobsClient = new BlobsClient(address, credentials, clientOptions);
  const nodeClient = new NodeControlClient(address, credentials, clientOptions);
  const buildsClient = new BuildsClient(address, credentials, clientOptions);
  return {
    address,
    blobs: new GrpcBlobStore({ client: blobsClient, address, rememberPresent: options.shortLived, readTimeoutMs: options.readTimeoutMs }),
    nodeControl: new GrpcNodeControl(nodeClient, address),
    builds: new GrpcBuilds(buildsClient, address),
    waitForReady: (ms, o = {}) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + ms;
        const watch = (): void => {
          const state = channel.getConnectivityState(true);
          if (state === grpc.connectivityState.READY) return resolve();
          if (o.failFast && state === grpc.connectivityState.TRANSIENT_FAILURE) {
            return reject(new Error(`cannot reach the head at ${address}: the connection failed${tlsHint}`));
          }
          channel.watchConnectivityState(state, deadline, (err) =>
            err ? reject(new Error(`cannot reach the head at ${address}: no connection within ${ms} ms`)) : watch(),
          );
        };
        watch();
      }),
    close() {
      blobsClient.close();
      nodeClient.close();
      buildsClient.close();
      channel.close();
    },
  };
}
