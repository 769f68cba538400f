// `orion head`'s process: a head over its data folder's stores, served over gRPC to nodes and clients.
import { join } from "node:path";
import type { Logger } from "../core/index.js";
import { DEFAULT_MAX_BYTES } from "../cas/index.js";
import { type FarmServerOptions, startFarmServer } from "../grpc/index.js";
import { type HeadTiming, openHeadOverCache } from "./head-over-cache.js";

export interface HeadDaemonOptions extends HeadTiming, Pick<FarmServerOptions, "listen" | "token" | "nodeToken" | "tls"> {
  dataDir: string;
  logger: Logger;
}

export interface HeadDaemon {
  /** HOST:PORT actually bound. */
  address: string;
  close(): Promise<void>;
}

export async function startHeadDaemon(o: HeadDaemonOptions): Promise<HeadDaemon> {
  // The same layout as a user's cache folder (cas/, action-cache.db, stat-cache.db), opened with the same errors.
  const { head, store, closeStores } = openHeadOverCache(o.dataDir, DEFAULT_MAX_BYTES, o.logger, {
    heartbeatMs: o.heartbeatMs,
    nodeTtlMs: o.nodeTtlMs,
    keepFinishedMs: o.keepFinishedMs,
  }, { soleWriter: true });
  const server = await startFarmServer({ head, store, listen: o.listen, token: o.token, nodeToken: o.nodeToken, tls: o.tls, tmpDir: join(o.dataDir, "tmp"), logger: o.logger });
  return {
    address: server.address,
    async close() {
      head.close();
      await server.close();
      closeStores();
    },
  };
}
