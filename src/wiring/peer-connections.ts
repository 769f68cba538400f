// The farm connections a daemon opens: one to a head (TLS files it cannot use are one line, exit 2), and one per peer a node fetches blobs from.
import { UsageError, errorMessage } from "../core/index.js";
import { type ConnectOptions, connectFarm, type FarmConnection, type GrpcBlobStore } from "../grpc/index.js";

/** connectFarm, with PEM files grpc-js cannot use (not a certificate, a key that does not match) as one line, exit 2. */
export function farmConnection(address: string, options: ConnectOptions): FarmConnection {
  try {
    return connectFarm(address, options);
  } catch (err) {
    throw new UsageError(`cannot use the TLS files (--tls-ca, --tls-cert, --tls-key): ${errorMessage(err)}`, err);
  }
}

/** Open peer channels a node keeps; the least recently used one is closed beyond this. */
const MAX_PEER_CONNECTIONS = 32;

/** One connection per peer address, made on first use; a node talks to few peers. */
export class PeerConnections {
  private readonly conns = new Map<string, FarmConnection>();

  constructor(private readonly options: ConnectOptions) {}

  blobs(address: string): GrpcBlobStore {
    let c = this.conns.get(address);
    if (c) {
      // Most recently used last: a restarted peer comes back on a new port, and its old channel ages out.
      this.conns.delete(address);
    } else {
      c = farmConnection(address, this.options);
      if (this.conns.size >= MAX_PEER_CONNECTIONS) {
        const [oldest, conn] = this.conns.entries().next().value!;
        conn.close();
        this.conns.delete(oldest);
      }
    }
    this.conns.set(address, c);
    return c.blobs;
  }

  close(): void {
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }
}
