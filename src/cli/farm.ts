// The farm's commands — `orion head`, `orion node`, `orion status` and the transport of `orion build --head`: their
// flags, TLS files, pid files and signals; the processes themselves are composed in src/wiring/.
// Loaded only by those commands: it pulls in grpc-js, which an embedded `orion build` never pays for.
import { randomUUID } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { makeDirSync, writeFileAtomic } from "../core/fs.js";
import { availableParallelism, homedir, hostname } from "node:os";
import { isIP } from "node:net";
import { join } from "node:path";
import { ExitCode, type Logger, OrionError, UsageError, errorMessage } from "../core/index.js";
import { createRootLogger } from "../core/logger.js";
import { LOOPBACK_HOSTS as LOOPBACK, parseAddress } from "../core/address.js";
import { MAX_SLOTS, nodeNameProblem } from "../head/requests.js";
import { detectNodeToolchains, parseToolchainSpec } from "../node/index.js";
import { createSandbox, type ActionSandbox } from "../exec/index.js";
import { clientTlsProblem, type FarmConnection } from "../grpc/index.js";
import { farmConnection, openNodeDaemon, startHeadDaemon } from "../wiring/index.js";

export const DEFAULT_HEAD = "127.0.0.1:50050";

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
  const server = await startHeadDaemon({
    dataDir,
    logger,
    heartbeatMs,
    nodeTtlMs: o.nodeTtlMs ?? heartbeatMs * 3,
    // Long enough for a client to collect every result (and re-attach after a blip), short enough not to grow forever.
    keepFinishedMs: 10 * 60_000,
    listen,
    token,
    nodeToken,
    tls,
  });
  const removePid = writePidFile(o.pidFile);
  process.stdout.write(JSON.stringify({ type: "listening", grpc: server.address }) + "\n");
  logger.info({ grpc: server.address, dataDir, auth: !!token, nodeAuth: !!nodeToken, tls: !!tls, clientCertificates: !!tls?.clientCa }, "head listening");
  if (token && !nodeToken) {
    logger.warn("--token without --node-token: nodes and clients share one token, so a client can act as a node (register, lease, report results); give nodes their own with --node-token (ORION_NODE_TOKEN)");
  }
  await stopSignal(logger);
  await server.close();
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
  writeFileAtomic(file, JSON.stringify(id) + "\n");
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

/** The node's flags checked before anything starts: the head's address, the listen address and the token a node presents. */
function nodeFlags(o: NodeCommandOptions, env: NodeJS.ProcessEnv): { headAddress: string; headHost: string; listen: string; token?: string } {
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
  return { headAddress, headHost, listen, token };
}

/** The node's sandbox, probed before the head hears of it: a node that would run a token holder's arguments unconfined does not join. */
async function nodeSandbox(o: NodeCommandOptions, dataDir: string, logger: Logger): Promise<ActionSandbox | undefined> {
  if (o.unsandboxed) {
    logger.warn("actions run unsandboxed (--unsandboxed): any client holding the token runs code as this node's user");
    return undefined;
  }
  let sandbox: ActionSandbox;
  try {
    sandbox = await createSandbox({ probeDir: join(dataDir, "work", "sb"), logger });
  } catch (err) {
    throw new OrionError(`${errorMessage(err)}; this node refuses to run actions unsandboxed (give --unsandboxed to accept that)`, { exitCode: ExitCode.INFRASTRUCTURE, cause: err });
  }
  logger.info({ sandbox: sandbox.description }, "actions run sandboxed");
  return sandbox;
}

export async function nodeCommand(o: NodeCommandOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { headAddress, headHost, listen, token } = nodeFlags(o, env);
  const specs = (o.toolchain ?? []).map(parseToolchainSpec);
  const dataDir = ensureDir(o.dataDir ?? stateDir(env, "node"), "--data-dir");
  const logger = createRootLogger({ level: o.logLevel, file: o.logFile });
  const identityFile = join(dataDir, "node.json");
  const kept = readIdentity(identityFile);
  const identity: NodeIdentity = { name: o.name ?? kept?.name ?? hostname(), instanceId: kept?.instanceId ?? randomUUID() };
  const toolchains = await detectNodeToolchains(specs, { memoFile: join(dataDir, "toolchains.json"), env });
  if (toolchains.length === 0) throw new UsageError("no toolchain found on PATH; give --toolchain NAME=PATH");
  const sandbox = await nodeSandbox(o, dataDir, logger);

  // A node may start before its head: it waits a little for it.
  const auth: ClientAuth = { token, tlsCa: o.tlsCa ?? env.ORION_TLS_CA, tlsCert: o.tlsCert, tlsKey: o.tlsKey };
  // The node's certificate serves its peers, and is the client certificate it shows the head and peers.
  const tls = serverTls(o);
  const peerTls = clientTls(auth);
  const conn = await connect(headAddress, auth, true);
  const daemon = await openNodeDaemon({
    conn,
    headHost,
    dataDir,
    identity,
    slots: o.slots ?? availableParallelism(),
    toolchains,
    sandbox,
    listen,
    advertise: o.advertise,
    token,
    tls,
    peerTls,
    expectsTls: !!auth.tlsCa,
    onRegistered: (name) => writeIdentity(identityFile, { name, instanceId: identity.instanceId }),
    logger,
  });
  const stopped = stopSignal(logger);
  await daemon.start();
  const { node, advertise } = daemon;
  const removePid = writePidFile(o.pidFile);
  process.stdout.write(JSON.stringify({ type: "registered", name: node.id, head: headAddress, toolchains: toolchains.map((t) => t.name), blobs: advertise }) + "\n");
  logger.info({ name: node.id, head: headAddress, blobs: daemon.blobAddress, advertise, toolchains: toolchains.map((t) => `${t.name}=${t.path}`) }, "node registered");
  await stopped;
  await daemon.stop();
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
