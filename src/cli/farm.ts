// Wiring of the farm's commands — `orion head`, `orion node`, `orion status` and the transport of `orion build --head`.
// Loaded only by those commands: it pulls in grpc-js, which an embedded `orion build` never pays for.
import { randomUUID } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { makeDirSync } from "../core/fs.js";
import { availableParallelism, homedir, hostname } from "node:os";
import { isIP } from "node:net";
import { join } from "node:path";
import { type Digest, ExitCode, type Logger, OrionError, UsageError, errorMessage, randomIds, systemClock } from "../core/index.js";
import { createRootLogger } from "../core/logger.js";
import { parseAddress } from "../core/address.js";
import { createBlobStore, DEFAULT_MAX_BYTES } from "../cas/index.js";
import { openCacheDir } from "../client/embedded.js";
import { Head, SqliteDurationHistory } from "../head/index.js";
import { MAX_SLOTS, nodeNameProblem } from "../head/requests.js";
import { FarmExecutor, InputChain, Node, detectNodeToolchains, parseToolchainSpec } from "../node/index.js";
import { LocalExecutor, createSandbox, type ActionSandbox } from "../exec/index.js";
import { clientTlsProblem, type ConnectOptions, connectFarm, type FarmConnection, type GrpcBlobStore, startFarmServer, startPeerBlobServer } from "../grpc/index.js";

export const DEFAULT_HEAD = "127.0.0.1:50050";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

export { parseAddress };

function stateDir(env: NodeJS.ProcessEnv, role: string): string {
  return join(env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "orion", role);
}

function ensureDir(dir: string, flag: string): string {
  try {
    makeDirSync(dir);
    return dir;
  } catch (err) {
    throw new UsageError(`${flag} ${dir}: ${errorMessage(err)}`, err);
  }
}

/** Resolves when the process is asked to stop (SIGTERM, SIGINT). */
function stopSignal(log: Logger): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => {
      log.info({ signal: sig }, "stopping");
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve(sig);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
}

function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${flag} ${file}: ${errorMessage(err)}`, err);
  }
}

/** How a client reaches a head: its token and, for TLS, the CA file to check it against and its own certificate (mutual TLS). */
export interface ClientAuth {
  token?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** The PEM files of a client's TLS, read (a missing file is one line, exit 2). */
function clientTls(auth: ClientAuth): { tlsCa?: Buffer; tlsCert?: Buffer; tlsKey?: Buffer } {
  const problem = clientTlsProblem({ ca: auth.tlsCa, cert: auth.tlsCert, key: auth.tlsKey }, { ca: "--tls-ca", cert: "--tls-cert", key: "--tls-key" });
  if (problem) throw new UsageError(problem);
  return {
    tlsCa: auth.tlsCa ? readPem(auth.tlsCa, "--tls-ca") : undefined,
    tlsCert: auth.tlsCert ? readPem(auth.tlsCert, "--tls-cert") : undefined,
    tlsKey: auth.tlsKey ? readPem(auth.tlsKey, "--tls-key") : undefined,
  };
}

/** A daemon's TLS: its certificate and key, and with --tls-client-ca the CA every caller's certificate must be signed by. */
function serverTls(o: { tlsCert?: string; tlsKey?: string; tlsClientCa?: string }): { cert: Buffer; key: Buffer; clientCa?: Buffer } | undefined {
  if (!o.tlsCert !== !o.tlsKey) throw new UsageError("--tls-cert and --tls-key go together");
  if (o.tlsClientCa && !o.tlsCert) throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over TLS");
  if (!o.tlsCert || !o.tlsKey) return undefined;
  return {
    cert: readPem(o.tlsCert, "--tls-cert"),
    key: readPem(o.tlsKey, "--tls-key"),
    clientCa: o.tlsClientCa ? readPem(o.tlsClientCa, "--tls-client-ca") : undefined,
  };
}

function writePidFile(file: string | undefined): () => void {
  if (!file) return () => {};
  try {
    writeFileSync(file, `${process.pid}\n`);
  } catch (err) {
    throw new UsageError(`--pid-file ${file}: ${errorMessage(err)}`, err);
  }
  return () => rmSync(file, { force: true });
}

export interface HeadCommandOptions {
  listen?: string;
  dataDir?: string;
  token?: string;
  /** The nodes' own token; without it nodes present `token`, and so could a client. */
  nodeToken?: string;
  heartbeatMs?: number;
  nodeTtlMs?: number;
  insecure?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  logFile?: string;
  pidFile?: string;
  logLevel: string;
}

export async function headCommand(o: HeadCommandOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const listen = o.listen ?? DEFAULT_HEAD;
  const { host } = parseAddress(listen, "--listen");
  const token = o.token ?? env.ORION_TOKEN ?? undefined;
  const nodeToken = o.nodeToken ?? env.ORION_NODE_TOKEN ?? undefined;
  // Callers must prove who they are on an open address: a token, or a client certificate from --tls-client-ca.
  if (!LOOPBACK.has(host) && !token && !o.tlsClientCa && !o.insecure) {
    throw new UsageError(`--listen ${listen} is not a loopback address: give --token (or ORION_TOKEN) or --tls-client-ca, or --insecure to serve without either`);
  }
  if (token && nodeToken && token === nodeToken) throw new UsageError("--node-token must differ from --token: it is what tells a node from a client");
  const tls = serverTls(o);
  const dataDir = ensureDir(o.dataDir ?? stateDir(env, "head"), "--data-dir");
  const logger = createRootLogger({ level: o.logLevel, file: o.logFile });
  const heartbeatMs = o.heartbeatMs ?? 5000;
  // The same layout as a user's cache folder (cas/, action-cache.db, stat-cache.db), opened with the same errors.
  const open = openCacheDir(dataDir);
  const store = open.store(DEFAULT_MAX_BYTES, logger);
  const cache = open.cache();
  const statCache = open.statCache();
  const durations = new SqliteDurationHistory(join(dataDir, "durations.db"));
  const head = new Head({
    store,
    cache,
    durations,
    clock: systemClock,
    ids: randomIds,
    logger,
    heartbeatMs,
    nodeTtlMs: o.nodeTtlMs ?? heartbeatMs * 3,
    // Long enough for a client to collect every result (and re-attach after a blip), short enough not to grow forever.
    keepFinishedMs: 10 * 60_000,
    // Files outside a project (system libraries, -I/opt/...) are named by their bytes on the head's machine.
    externalDigest: (p): Promise<Digest | undefined> => statCache.digestOf(p).catch(() => undefined),
  });
  const server = await startFarmServer({ head, store, listen, token, nodeToken, tls, tmpDir: join(dataDir, "tmp"), logger });
  const removePid = writePidFile(o.pidFile);
  process.stdout.write(JSON.stringify({ type: "listening", grpc: server.address }) + "\n");
  logger.info({ grpc: server.address, dataDir, auth: !!token, nodeAuth: !!nodeToken, tls: !!tls, clientCertificates: !!tls?.clientCa }, "head listening");
  if (token && !nodeToken) {
    logger.warn("--token without --node-token: nodes and clients share one token, so a client can act as a node (register, lease, report results); give nodes their own with --node-token (ORION_NODE_TOKEN)");
  }
  await stopSignal(logger);
  head.close();
  await server.close();
  statCache.close();
  durations.close();
  cache.close();
  store.close();
  removePid();
  logger.flush();
  return ExitCode.OK;
}

export interface NodeCommandOptions {
  head?: string;
  name?: string;
  slots?: number;
  dataDir?: string;
  /** A farm's shared token, presented when there is no node token. */
  token?: string;
  /** The node token: presented to the head, and required from peers fetching this node's blobs. */
  nodeToken?: string;
  tlsCa?: string;
  /** The node's certificate: it serves its blobs over TLS with it and presents it to the head and to peers. */
  tlsCert?: string;
  tlsKey?: string;
  /** Peers must present a certificate signed by this CA. */
  tlsClientCa?: string;
  toolchain?: string[];
  /** Where the node serves its blobs to peers (default 127.0.0.1:0). */
  listen?: string;
  advertise?: string;
  insecure?: boolean;
  logFile?: string;
  pidFile?: string;
  logLevel: string;
  /** Run actions without bubblewrap; otherwise a node that cannot sandbox refuses to start (exit 3). */
  unsandboxed?: boolean;
}

interface NodeIdentity {
  name: string;
  instanceId: string;
}

function readIdentity(file: string): NodeIdentity | undefined {
  try {
    const j = JSON.parse(readFileSync(file, "utf8")) as Partial<NodeIdentity>;
    return typeof j.name === "string" && typeof j.instanceId === "string" ? { name: j.name, instanceId: j.instanceId } : undefined;
  } catch {
    return undefined;
  }
}

function writeIdentity(file: string, id: NodeIdentity): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(id) + "\n");
  renameSync(tmp, file);
}

/** The address peers are told: the bound one, or this host's name with the bound port when bound to every interface. */
function advertisedAddress(bound: string): string {
  const { host } = parseAddress(bound, "--listen");
  const port = bound.slice(bound.lastIndexOf(":") + 1);
  return host === "0.0.0.0" || host === "::" || host === "[::]" ? `${hostname()}:${port}` : bound;
}

/** connectFarm, with PEM files grpc-js cannot use (not a certificate, a key that does not match) as one line, exit 2. */
function farmConnection(address: string, options: ConnectOptions): FarmConnection {
  try {
    return connectFarm(address, options);
  } catch (err) {
    throw new UsageError(`cannot use the TLS files (--tls-ca, --tls-cert, --tls-key): ${errorMessage(err)}`, err);
  }
}

/** Open peer channels a node keeps; the least recently used one is closed beyond this. */
const MAX_PEER_CONNECTIONS = 32;

/** One connection per peer address, made on first use; a node talks to few peers. */
class PeerConnections {
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

/** Connects and checks the head answers, so an unreachable or misnamed head is one clear line (exit 3). */
async function connect(address: string, auth: ClientAuth, patient = false, shortLived = false): Promise<FarmConnection> {
  const { host } = parseAddress(address, "--head");
  // grpc-js names an IP-addressed head as the TLS server name, which Node flags with a deprecation warning on
  // every connection; the certificate is still checked against the IP, so the warning only adds noise to stderr.
  if (auth.tlsCa && isIP(host.replace(/^\[|\]$/g, ""))) process.noDeprecation = true;
  const conn = farmConnection(address, { token: auth.token, ...clientTls(auth), shortLived });
  try {
    await conn.waitForReady(10_000, { failFast: !patient });
  } catch (err) {
    conn.close();
    throw new OrionError(errorMessage(err), { exitCode: ExitCode.INFRASTRUCTURE });
  }
  return conn;
}

export async function nodeCommand(o: NodeCommandOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const headAddress = o.head ?? env.ORION_HEAD;
  if (!headAddress) throw new UsageError("orion node needs --head HOST:PORT (or ORION_HEAD)");
  const { host: headHost } = parseAddress(headAddress, "--head");
  if (o.advertise) parseAddress(o.advertise, "--advertise");
  const listen = o.listen ?? "127.0.0.1:0";
  const { host: listenHost } = parseAddress(listen, "--listen");
  // A node shows the head (and asks of its peers) the node token; on a farm with one shared token, that one.
  const token = o.nodeToken ?? env.ORION_NODE_TOKEN ?? o.token ?? env.ORION_TOKEN ?? undefined;
  if (!LOOPBACK.has(listenHost) && !token && !o.tlsClientCa && !o.insecure) {
    throw new UsageError(`--listen ${listen} is not a loopback address: give --token or --node-token (ORION_TOKEN, ORION_NODE_TOKEN) or --tls-client-ca, or --insecure to serve blobs without either`);
  }
  // The head refuses these too; saying so here names the flag (exit 2) instead of failing registration.
  const nameProblem = o.name !== undefined ? nodeNameProblem(o.name) : undefined;
  if (nameProblem) throw new UsageError(`--name ${nameProblem}`);
  if (o.slots !== undefined && o.slots > MAX_SLOTS) throw new UsageError(`--slots takes at most ${MAX_SLOTS}, not ${o.slots}`);
  const specs = (o.toolchain ?? []).map(parseToolchainSpec);
  const dataDir = ensureDir(o.dataDir ?? stateDir(env, "node"), "--data-dir");
  const logger = createRootLogger({ level: o.logLevel, file: o.logFile });
  const identityFile = join(dataDir, "node.json");
  const kept = readIdentity(identityFile);
  const identity: NodeIdentity = { name: o.name ?? kept?.name ?? hostname(), instanceId: kept?.instanceId ?? randomUUID() };
  const toolchains = await detectNodeToolchains(specs, { memoFile: join(dataDir, "toolchains.json"), env });
  if (toolchains.length === 0) throw new UsageError("no toolchain found on PATH; give --toolchain NAME=PATH");
  // Before the head hears of it: a node that would run a token holder's arguments unconfined does not join.
  let sandbox: ActionSandbox | undefined;
  if (o.unsandboxed) {
    logger.warn("actions run unsandboxed (--unsandboxed): any client holding the token runs code as this node's user");
  } else {
    try {
      sandbox = await createSandbox({ probeDir: join(dataDir, "work", "sb"), logger });
    } catch (err) {
      throw new OrionError(`${errorMessage(err)}; this node refuses to run actions unsandboxed (give --unsandboxed to accept that)`, { exitCode: ExitCode.INFRASTRUCTURE, cause: err });
    }
    logger.info({ sandbox: sandbox.description }, "actions run sandboxed");
  }

  // A node may start before its head: it waits a little for it.
  const auth: ClientAuth = { token, tlsCa: o.tlsCa ?? env.ORION_TLS_CA, tlsCert: o.tlsCert, tlsKey: o.tlsKey };
  // The node's certificate serves its peers, and is the client certificate it shows the head and peers.
  const tls = serverTls(o);
  const peerTls = clientTls(auth);
  const conn = await connect(headAddress, auth, true);
  const local = createBlobStore({ dir: join(dataDir, "cas"), logger });
  // The node's inputs in one fixed order: its own store, the peers a lease names, the head (a tar stream, then blob by blob).
  const inputs = new InputChain({ local, head: conn.blobs, peer: (address) => peers.blobs(address), logger });
  const store = inputs.store;
  // Peers read this node's own store (never through to the head: each asks the head itself).
  if (auth.tlsCa && !tls) logger.warn("--tls-ca without --tls-cert: this node serves its blobs in plaintext, which peers reaching it over TLS cannot read; they fetch from the head instead");
  const blobServer = await startPeerBlobServer({ store: local, listen, nodeToken: token, tls, tmpDir: join(dataDir, "tmp"), logger }).catch((err) => {
    conn.close();
    local.close();
    throw err;
  });
  let advertise = o.advertise ?? advertisedAddress(blobServer.address);
  if (!o.advertise && !LOOPBACK.has(headHost) && LOOPBACK.has(parseAddress(advertise, "--listen").host)) {
    // Nodes on other machines would dial their own loopback (and show the token to whatever listens there): announce nothing.
    logger.warn({ listen: blobServer.address }, "the head is on another machine but this node serves its blobs on loopback: it serves no peers (give --listen 0.0.0.0:PORT with a token or client certificates, or --advertise HOST:PORT)");
    advertise = "";
  }
  // A peer that stops answering is given up on after 20 s per read (a minute for a whole tree): the head covers.
  const peers = new PeerConnections({ token, ...peerTls, readTimeoutMs: 20_000 });
  const executor = new LocalExecutor({ store, workDir: join(dataDir, "work"), workerName: identity.name, logger, inputs, sandbox: async () => sandbox });
  const node = new Node({
    name: identity.name,
    slots: o.slots ?? availableParallelism(),
    head: conn.nodeControl,
    executor: new FarmExecutor({ inner: executor, toolchains, local: store, remote: conn.blobs, inputs }),
    logger,
    toolchains,
    instanceId: identity.instanceId,
    advertise,
    sandbox: sandbox?.description ?? "",
    leaseWaitMs: 10_000,
    onRegistered: (name) => writeIdentity(identityFile, { name, instanceId: identity.instanceId }),
  });
  const stopped = stopSignal(logger);
  try {
    await node.start();
  } catch (err) {
    await blobServer.close();
    conn.close();
    store.close();
    await sandbox?.close();
    throw err;
  }
  const removePid = writePidFile(o.pidFile);
  process.stdout.write(JSON.stringify({ type: "registered", name: node.id, head: headAddress, toolchains: toolchains.map((t) => t.name), blobs: advertise }) + "\n");
  logger.info({ name: node.id, head: headAddress, blobs: blobServer.address, advertise, toolchains: toolchains.map((t) => `${t.name}=${t.path}`) }, "node registered");
  await stopped;
  await node.stop();
  await executor.close();
  await sandbox?.close();
  await blobServer.close();
  peers.close();
  // Where this node's inputs came from over its life: peers, the head blob by blob, the head as tar streams.
  logger.info(inputs.stats(), "inputs received");
  conn.close();
  store.close();
  removePid();
  logger.flush();
  return ExitCode.OK;
}

export async function statusCommand(o: { head: string; json?: boolean } & ClientAuth): Promise<number> {
  const conn = await connect(o.head, o);
  try {
    const s = await conn.builds.getStatus();
    if (o.json) {
      process.stdout.write(JSON.stringify({ head: o.head, ...s }) + "\n");
      return ExitCode.OK;
    }
    const lines = [`head ${o.head}: ${s.nodes.length} node${s.nodes.length === 1 ? "" : "s"}, ${s.builds.length} running build${s.builds.length === 1 ? "" : "s"}`];
    for (const n of s.nodes) {
      lines.push(`  ${n.name}  ${n.state}  ${n.running}/${n.slots} running  load ${n.load.toFixed(2)}  seen ${(n.lastSeenMsAgo / 1000).toFixed(1)} s ago  ${n.address || "-"}  [${n.toolchains.join(" ")}]  ${n.sandbox ? `sandboxed: ${n.sandbox}` : "UNSANDBOXED"}`);
    }
    for (const b of s.builds) lines.push(`  build ${b.buildId}  ${b.done}/${b.actions} actions  ${(b.runningMs / 1000).toFixed(1)} s  ${b.projectRoot}`);
    process.stdout.write(lines.join("\n") + "\n");
    return ExitCode.OK;
  } finally {
    conn.close();
  }
}

/** The farm side of `orion build --head`: the head's Builds service and its blob store. */
export async function connectBuild(address: string, auth: ClientAuth): Promise<FarmConnection> {
  return connect(address, auth, false, true);
}
