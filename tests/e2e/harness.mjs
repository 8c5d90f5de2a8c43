// Test harness: starts the real `realtime-host` binary on a free loopback port with its
// own data dir, and gives tests small clients for HTTP GraphQL and raw graphql-ws sockets.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { BehindNginx } from './nginx.mjs';

export const BIN = process.env.REALTIME_HOST_BIN ?? new URL('../../target/debug/realtime-host', import.meta.url).pathname;
export const PROTOCOL = 'graphql-transport-ws';
/** Compiled components are cached across the servers of a test run. */
export const CACHE_DIR = join(tmpdir(), 'realtime-e2e-compiled');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** A running server. `stop()` sends SIGTERM and waits; `kill()` sends SIGKILL. */
export class Server {
  static async start(options = {}) {
    // E2E_CLUSTER=N: the suite runs against N nodes of a cluster instead (see ClusterServer).
    if (CLUSTER_NODES > 0 && !options.standalone) return ClusterServer.start({ ...options, nodes: CLUSTER_NODES });
    // E2E_NGINX=1: behind nginx with TLS, as docs/deploy.md sets it up (see nginx.mjs).
    if (process.env.E2E_NGINX && !options.standalone) return BehindNginx.start(options);
    const server = new Server(options);
    await server.launch();
    return server;
  }

  /** Run `body` against a server of its own (started with `options`), stopped and removed after. */
  static async with(options, body) {
    const server = await Server.start(options);
    try {
      await body(server);
    } finally {
      await server.stop();
      server.cleanup();
    }
  }

  constructor({ dataDir, port, args = [], env = {} } = {}) {
    this.ownsDataDir = !dataDir;
    this.dataDir = dataDir ?? mkdtempSync(join(tmpdir(), 'realtime-e2e-'));
    this.port = port;
    this.args = args;
    this.env = env;
    this.logs = '';
  }

  get url() { return `http://127.0.0.1:${this.port}`; }
  get wsUrl() { return `ws://127.0.0.1:${this.port}/graphql`; }

  async launch() {
    this.port ??= await freePort();
    const trusted = TRUSTED_DOCUMENTS_ONLY ? trustedDocumentArgs(this.dataDir) : [];
    this.proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--cache-dir', CACHE_DIR, ...trusted, ...this.args], {
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...ONE_ADDRESS_LOAD, ...this.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc.stderr.on('data', (d) => { this.logs += d; if (process.env.E2E_LOGS) process.stderr.write(d); });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`server exited at start:\n${this.logs}`);
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return;
      } catch {}
      await sleep(50);
    }
    throw new Error(`server did not become healthy:\n${this.logs}`);
  }

  async stop(signal = 'SIGTERM') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }

  kill() { return this.stop('SIGKILL'); }

  async restart() {
    await this.stop();
    await this.launch();
  }

  cleanup() {
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** POST /graphql; returns `{status, body}`. */
  async gql(query, variables, token, headers = {}) {
    const res = await fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: JSON.stringify({ query, variables }),
    });
    const text = await res.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: res.status, body };
  }

  /** POST /graphql, expecting data without errors. */
  async data(query, variables, token) {
    const { status, body } = await this.gql(query, variables, token);
    if (status !== 200 || body.errors) throw new Error(`GraphQL failed (${status}): ${JSON.stringify(body)}`);
    return body.data;
  }

  async signUp(email, password = 'correct horse battery', name = null) {
    const data = await this.data(SIGN_UP, { e: email, p: password, n: name });
    return data.signUp;
  }

  async metrics() {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const values = {};
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const [name, value] = line.split(' ');
      values[name] = Number(value);
    }
    return values;
  }
}

const SIGN_UP = 'mutation($e: String!, $p: String!, $n: String) { signUp(email: $e, password: $p, name: $n) { token user { id email name } } }';

/** The web app's manifest of trusted documents, as scripts/build-web.sh writes it. */
export const WEB_MANIFEST = new URL('../../web/dist/persisted-documents.json', import.meta.url).pathname;

/**
 * E2E_TRUSTED_DOCUMENTS=1: every server runs only trusted documents (`--trusted-documents-only`):
 * the web app's manifest, and the documents the tests themselves send to set up (the harness's
 * sign-up and those a suite lists with `trustTestDocuments`), sent as text and accepted because
 * that very text is in a manifest.
 */
export const TRUSTED_DOCUMENTS_ONLY = Boolean(process.env.E2E_TRUSTED_DOCUMENTS);
const testDocuments = new Set([SIGN_UP]);

export function trustTestDocuments(...texts) {
  for (const text of texts) testDocuments.add(text);
}

function trustedDocumentArgs(dataDir) {
  const manifest = join(dataDir, 'test-documents.json');
  writeFileSync(manifest, JSON.stringify(Object.fromEntries([...testDocuments].map((text, i) => [`test-${i}`, text]))));
  return ['--trusted-documents', WEB_MANIFEST, '--trusted-documents', manifest, '--trusted-documents-only'];
}

/**
 * Every test client comes from 127.0.0.1, so the per-address shares meant for the public
 * (sign-ups, connections, unauthenticated sockets) are lifted; the tests of those limits set
 * them with flags, which win over these.
 */
export const ONE_ADDRESS_LOAD = {
  REALTIME_MAX_SIGNUPS_PER_ADDRESS: '1000000/1s',
  REALTIME_MAX_CONNECTIONS_PER_ADDRESS: '1000000',
  REALTIME_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS: '1000000',
};

/** With E2E_CLUSTER=N, `Server.start` starts a cluster of N nodes (see ClusterServer). */
export const CLUSTER_NODES = Number(process.env.E2E_CLUSTER ?? 0);
export const NATS_BIN = process.env.NATS_SERVER_BIN ?? 'nats-server';

/** A `nats-server -js` on a free loopback port with a store of its own. */
export class NatsServer {
  static async start() {
    const nats = new NatsServer();
    await nats.launch();
    return nats;
  }

  /**
   * `n` servers forming one NATS cluster (JetStream clustered); resolves once it has a leader,
   * or as soon as every server is up with `waitForLeader: false`.
   */
  static async startCluster(n, { waitForLeader = true } = {}) {
    const clusterPorts = await Promise.all([...Array(n)].map(() => freePort()));
    const routes = clusterPorts.map((port) => `nats://127.0.0.1:${port}`).join(',');
    const servers = clusterPorts.map((clusterPort, i) => new NatsServer({ name: `nats-${i + 1}`, clusterPort, routes }));
    await Promise.all(servers.map((server) => server.launch()));
    const deadline = Date.now() + 20_000;
    while (waitForLeader && !servers.some((server) => /metadata leader/.test(server.logs))) {
      if (Date.now() > deadline) throw new Error(`no JetStream leader:\n${servers.map((s) => s.logs).join('\n')}`);
      await sleep(50);
    }
    return servers;
  }

  constructor({ name, clusterPort, routes } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'realtime-nats-'));
    this.logs = '';
    this.clusterArgs = name ? ['-n', name, '--cluster_name', 'realtime-e2e', '--cluster', `nats://127.0.0.1:${clusterPort}`, '--routes', routes] : [];
  }

  get url() { return `nats://127.0.0.1:${this.port}`; }

  async launch() {
    this.port ??= await freePort();
    // As the README recommends: JetStream syncs every write to disk before it acknowledges it.
    const config = join(this.dir, 'nats.conf');
    writeFileSync(config, 'jetstream {\n  sync_interval: always\n}\n');
    this.proc = spawn(NATS_BIN, ['-c', config, '-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.dir, ...this.clusterArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr.on('data', (d) => { this.logs += d; });
    this.exited = new Promise((resolve) => this.proc.once('exit', resolve));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.logs.includes('Server is ready')) return;
      if (this.proc.exitCode !== null) break;
      await sleep(20);
    }
    throw new Error(`nats-server did not start:\n${this.logs}`);
  }

  async stop(signal = 'SIGTERM') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    await this.exited;
  }

  cleanup() { rmSync(this.dir, { recursive: true, force: true }); }
}

/**
 * N realtime-host nodes on one NATS server, looking like one `Server` to a suite: each
 * request and each socket goes to a node picked at random; restart, stop and kill act on
 * every node; metrics are summed over the nodes.
 */
export class ClusterServer {
  static async start({ nodes = 3, args = [], env = {}, leaseTtl = '1s' } = {}) {
    const nats = await NatsServer.start();
    const cluster = new ClusterServer(nats, [...Array(nodes).keys()].map((i) => new Server({
      args: ['--cluster', nats.url, '--node-id', `node-${i + 1}`, '--lease-ttl', leaseTtl, ...args],
      env,
    })));
    await Promise.all(cluster.nodes.map((node) => node.launch()));
    return cluster;
  }

  constructor(nats, nodes) {
    this.nats = nats;
    this.nodes = nodes;
  }

  pick() { return this.nodes[Math.floor(Math.random() * this.nodes.length)]; }
  get port() { return this.pick().port; }
  get url() { return this.pick().url; }
  get wsUrl() { return this.pick().wsUrl; }
  get logs() { return this.nodes.map((n, i) => `--- node-${i + 1}\n${n.logs}`).join('\n'); }

  gql(...args) { return Server.prototype.gql.apply(this, args); }
  data(...args) { return Server.prototype.data.apply(this, args); }
  signUp(...args) { return Server.prototype.signUp.apply(this, args); }

  async metrics() {
    const sum = {};
    for (const node of this.nodes) {
      for (const [name, value] of Object.entries(await node.metrics())) sum[name] = (sum[name] ?? 0) + value;
    }
    return sum;
  }

  async launch() { await Promise.all(this.nodes.map((node) => node.launch())); }

  async stop(signal = 'SIGTERM') {
    const [first] = await Promise.all(this.nodes.map((node) => node.stop(signal)));
    return first;
  }

  kill() { return this.stop('SIGKILL'); }

  async restart() {
    await this.stop();
    await this.launch();
  }

  cleanup() {
    for (const node of this.nodes) node.cleanup();
    this.nats.stop().then(() => this.nats.cleanup());
  }
}

/** What a log position looks like: `<epoch>:<seq>` (opaque to clients; checked here). */
export const POSITION = /^[0-9a-f]{16}:[1-9][0-9]*$/;

/**
 * Every `next` of a channel subscription carries `payload.extensions.position`. Tests assert
 * payloads exactly, and a position is random (its epoch) and ordered, not a constant: so a
 * well-formed position is moved from the payload to `positions` (with its subscription id),
 * and a malformed one is left in place, where the exact assertion catches it.
 */
export function takePosition(message, positions) {
  const position = message?.type === 'next' ? message.payload?.extensions?.position : undefined;
  if (typeof position !== 'string' || !POSITION.test(position)) return message;
  positions.push({ id: message.id, position });
  const { position: _, ...otherExtensions } = message.payload.extensions;
  const payload = { ...message.payload };
  if (Object.keys(otherExtensions).length) payload.extensions = otherExtensions;
  else delete payload.extensions;
  return { ...message, payload };
}

/** A graphql-ws client's result (a `next` payload) without its well-formed position. */
export function withoutPosition(result) {
  return takePosition({ type: 'next', payload: result }, []).payload;
}

/** The sequence number of a position (for ordering assertions; clients treat it as opaque). */
export function seqOf(position) {
  return Number(position.split(':')[1]);
}

/** A raw graphql-ws socket that records every message and its close. */
export class RawSocket {
  static open(server, { token, protocol = PROTOCOL, headers = {} } = {}) {
    const ws = new WebSocket(server.wsUrl, protocol === null ? [] : [protocol], {
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });
    return new RawSocket(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.waiters = [];
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    /** The log position of every `next` that carried one, in arrival order (see takePosition). */
    this.positions = [];
    ws.on('message', (data, isBinary) => {
      const message = isBinary ? data : takePosition(JSON.parse(data.toString()), this.positions);
      this.messages.push(message);
      this.flush();
    });
    ws.on('error', () => {});
  }

  flush() {
    while (this.waiters.length && this.messages.length) this.waiters.shift().resolve(this.messages.shift());
  }

  send(message) {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The next message, or an error after `ms`. */
  next(ms = 5000) {
    return new Promise((resolve, reject) => {
      const waiter = { resolve: (m) => { clearTimeout(timer); resolve(m); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no message within ${ms} ms`));
      }, ms);
      this.waiters.push(waiter);
      this.flush();
    });
  }

  /** Resolves with the messages received within `ms` (asserting silence when empty). */
  async drain(ms = 300) {
    await sleep(ms);
    const got = this.messages;
    this.messages = [];
    return got;
  }

  async init(payload) {
    await this.opened;
    this.send(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload });
    const ack = await this.next();
    if (ack.type !== 'connection_ack') throw new Error(`expected connection_ack, got ${JSON.stringify(ack)}`);
    return ack;
  }

  subscribe(id, query, variables, operationName) {
    this.send({ id, type: 'subscribe', payload: { query, ...(variables ? { variables } : {}), ...(operationName ? { operationName } : {}) } });
  }

  close() { this.ws.close(); }
}

/**
 * A raw TCP connection to `port` on loopback, resolved once connected: `{socket, response}`,
 * where `response` resolves with everything the server sent once the connection closes.
 */
export function rawConnection(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => { data += d; });
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, response: new Promise((done) => socket.once('close', () => done(data))) }));
    socket.once('error', reject);
  });
}

/** Wait until a subscription is registered: a ping round trip after subscribe is ordered behind it. */
export async function settled(socket) {
  socket.send({ type: 'ping', payload: { settle: true } });
  const pong = await socket.next();
  if (pong.type !== 'pong') throw new Error(`expected pong, got ${JSON.stringify(pong)}`);
}

/**
 * A WebAssembly custom section (id 0) with the given name and no payload: appended to a
 * component, the same code with other bytes (another digest), for swap tests.
 */
export function customSection(name) {
  const nameBytes = Buffer.from(name);
  return Buffer.concat([Buffer.from([0, nameBytes.length + 1, nameBytes.length]), nameBytes]);
}
