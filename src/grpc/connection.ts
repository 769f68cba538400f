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
  /** Resolves once the channel is connected, or rejects after `ms` (the head is unreachable). */
  waitForReady(ms: number): Promise<void>;
  close(): void;
}

export function connectFarm(address: string, options: { token?: string } = {}): FarmConnection {
  const credentials = grpc.credentials.createInsecure();
  const channel = new grpc.Channel(address, credentials, CHANNEL_OPTIONS);
  const clientOptions: grpc.ClientOptions = {
    channelOverride: channel,
    interceptors: options.token ? [tokenInterceptor(options.token)] : [],
  };
  const blobsClient = new BlobsClient(address, credentials, clientOptions);
  const nodeClient = new NodeControlClient(address, credentials, clientOptions);
  const buildsClient = new BuildsClient(address, credentials, clientOptions);
  const metadata = () => new grpc.Metadata();
  return {
    address,
    blobs: new GrpcBlobStore({ client: blobsClient, address }),
    nodeControl: new GrpcNodeControl(nodeClient, address, metadata),
    builds: new GrpcBuilds(buildsClient, address, metadata),
    waitForReady: (ms) =>
      new Promise((resolve, reject) =>
        blobsClient.waitForReady(Date.now() + ms, (err) => (err ? reject(new Error(`cannot reach the head at ${address}: ${err.message}`)) : resolve())),
      ),
    close() {
      blobsClient.close();
      nodeClient.close();
      buildsClient.close();
      channel.close();
    },
  };
}
