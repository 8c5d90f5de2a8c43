// The workload: several users, each with clients that create (unique titles), update (a
// unique description), delete and read the whole list, over HTTP or over a graphql-ws socket,
// each time on a node picked at random; and tabs that keep a resuming subscription on random
// nodes. Every operation goes into the history with its start, end and outcome:
// - ok: the server acknowledged it;
// - failed: the server answered that it did not happen (an error other than OUTCOME_UNKNOWN);
// - unknown: no answer (timeout, connection lost) or an OUTCOME_UNKNOWN error.
// A mutation carries a clientMutationId and, after an unknown outcome, is sent again with it
// (at most twice, each time on a node picked anew), as the web app does: the history has one
// entry for it, from the first attempt's start to the last one's end, ok when an attempt was
// acknowledged, unknown when none was and one had an unknown outcome.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { PROTOCOL, sleep } from '../e2e/harness.mjs';

const CREATE = 'mutation($url: String!, $title: String!, $key: String) { createStory(input: {url: $url, title: $title, clientMutationId: $key}) { story { id title } } }';
const UPDATE = 'mutation($id: ID!, $d: String!, $key: String) { updateStory(input: {id: $id, description: $d, clientMutationId: $key}) { story { id description } error { code } } }';
const DELETE = 'mutation($id: ID!, $key: String) { deleteStory(input: {id: $id, clientMutationId: $key}) { success deletedStoryId error { code } } }';
/** Attempts of one mutation: the first, and retries with its key after an unknown outcome. */
const ATTEMPTS = 3;
export const LIST = '{ me { library { stories(first: 100) { totalCount edges { node { id title description } } } } } }';
export const TAB_SUBSCRIPTION = `subscription Chaos($after: String) {
  channel(name: "library", after: $after) {
    __typename
    ... on StoryCreateEvent { story { id title } }
    ... on StoryUpdateEvent { story { id description } }
    ... on StoryDeleteEvent { deletedStoryId }
    ... on ChannelResetEvent { reason }
  }
}`;

/** How long a client waits for an answer before it calls the outcome unknown. */
const OP_TIMEOUT_MS = 8000;
/** A client keeps at most this many of its stories, deleting before it creates more. */
const MAX_OWN_STORIES = 12;

export const now = () => performance.now();

/** The answer of one GraphQL request as an outcome: `{outcome, data?, error?}`. */
function outcomeOf(status, body) {
  if (status === 200 && body && !body.errors && body.data) return { outcome: 'ok', data: body.data };
  const codes = (body?.errors ?? []).map((e) => e.extensions?.code);
  const error = `HTTP ${status}: ${JSON.stringify(body?.errors ?? body).slice(0, 300)}`;
  return { outcome: codes.includes('OUTCOME_UNKNOWN') ? 'unknown' : 'failed', error };
}

/** POST /graphql with a deadline. */
async function overHttp(url, token, query, variables) {
  try {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(OP_TIMEOUT_MS),
    });
    const text = await res.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    return outcomeOf(res.status, body);
  } catch (e) {
    return { outcome: 'unknown', error: String(e.cause?.code ?? e.name ?? e) };
  }
}

/** One operation over a fresh graphql-ws socket (a subscribe of a query or mutation). */
function overSocket(wsUrl, token, query, variables) {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, [PROTOCOL], { headers: { authorization: `Bearer ${token}` } });
    let result = null;
    const done = (value) => {
      if (result) return;
      result = value;
      clearTimeout(timer);
      ws.terminate();
      resolve(value);
    };
    const timer = setTimeout(() => done({ outcome: 'unknown', error: 'timeout' }), OP_TIMEOUT_MS);
    let sent = false;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init' })));
    ws.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.type === 'connection_ack') {
        sent = true;
        ws.send(JSON.stringify({ id: 'op', type: 'subscribe', payload: { query, variables } }));
      } else if (message.type === 'next') {
        done(outcomeOf(200, message.payload));
      } else if (message.type === 'error') {
        done(outcomeOf(200, { errors: message.payload }));
      }
    });
    ws.on('unexpected-response', (_req, res) => done({ outcome: 'failed', error: `HTTP ${res.statusCode}` }));
    ws.on('error', (e) => done({ outcome: sent ? 'unknown' : 'failed', error: String(e.code ?? e.message) }));
    // Closed before the answer: a mutation sent may have run; one never sent did not.
    ws.on('close', (code) => done({ outcome: sent ? 'unknown' : 'failed', error: `closed ${code}` }));
  });
}

/**
 * One client of one user: a loop of random operations until `stop()`. `history.add` receives
 * each finished operation.
 */
export class Client {
  constructor({ cluster, user, index, history, random }) {
    Object.assign(this, { cluster, user, index, history, random });
    this.name = `${user.name}/c${index}`;
    this.counter = 0;
    /** Stories this client created and knows the id of (a failed delete leaves one here). */
    this.own = [];
    /** Stories whose delete had an unknown outcome: deleted again later ("not found" is fine then). */
    this.limbo = [];
    /** Titles of this client's creates with an unknown outcome (adopted when a read shows them). */
    this.unsure = new Set();
    this.running = true;
  }

  stop() { this.running = false; }

  async run() {
    while (this.running) {
      const roll = this.random();
      if (this.limbo.length > 0 && roll < 0.2) await this.remove(this.limbo.shift(), { again: true });
      else if (this.own.length >= MAX_OWN_STORIES || (roll < 0.12 && this.own.length > 0)) await this.remove(this.pickOwn());
      else if (roll < 0.3 && this.own.length > 0) await this.update();
      else if (roll < 0.55) await this.read();
      else await this.create();
      await sleep(this.random() * 40);
    }
  }

  /** One request on a random node, over HTTP or a socket: `{via, node, answer}`. */
  async send(query, variables) {
    const node = Math.floor(this.random() * this.cluster.nodes.length);
    const via = this.random() < 0.5 ? 'http' : 'ws';
    const answer = via === 'http'
      ? await overHttp(this.cluster.clientUrl(node), this.user.token, query, variables)
      : await overSocket(this.cluster.clientWsUrl(node), this.user.token, query, variables);
    return { via, node: `node-${node + 1}`, answer };
  }

  /** A read (sent once) or a mutation (with a key, sent again after an unknown outcome). */
  async op(type, query, variables, fields) {
    const start = now();
    const mutation = type !== 'read';
    const key = mutation ? `${this.name}!${++this.counter}` : undefined;
    let sent;
    let unknown = false;
    for (let attempt = 1; attempt <= (mutation ? ATTEMPTS : 1); attempt++) {
      sent = await this.send(query, mutation ? { ...variables, key } : variables);
      sent.attempts = attempt;
      if (sent.answer.outcome !== 'unknown') break;
      unknown = true;
      await sleep(300);
    }
    const { via, node, answer, attempts } = sent;
    const outcome = answer.outcome === 'failed' && unknown ? 'unknown' : answer.outcome;
    const entry = { kind: 'op', type, user: this.user.name, client: this.name, via, node, start, end: now(), outcome, attempts, ...fields };
    if (answer.error) entry.error = answer.error;
    return { entry, data: answer.data };
  }

  async create() {
    const title = `${this.name}#${++this.counter}`;
    const { entry, data } = await this.op('create', CREATE, { url: `https://example.com/${this.counter}`, title }, { title });
    if (entry.outcome === 'ok') {
      entry.id = data.createStory.story.id;
      this.own.push(entry.id);
    } else if (entry.outcome === 'unknown') {
      this.unsure.add(title);
    }
    this.history.add(entry);
  }

  pickOwn() { return this.own[Math.floor(this.random() * this.own.length)]; }

  async update() {
    const id = this.pickOwn();
    const description = `${this.name}@${++this.counter}`;
    const { entry, data } = await this.op('update', UPDATE, { id, d: description }, { id, description });
    // A story of this client's own, never deleted: "not found" would be an anomaly.
    if (entry.outcome === 'ok' && data.updateStory.error) { entry.outcome = 'failed'; entry.error = data.updateStory.error.code; entry.notFound = true; }
    this.history.add(entry);
  }

  /** Delete a story; `again` for one whose earlier delete had an unknown outcome. */
  async remove(id, { again = false } = {}) {
    const { entry, data } = await this.op('delete', DELETE, { id }, { id, again });
    if (entry.outcome === 'ok' && !data.deleteStory.success) {
      // "Not found" is the answer a repeated delete expects when the first one happened.
      if (again) entry.alreadyGone = true;
      else { entry.outcome = 'failed'; entry.error = data.deleteStory.error?.code; entry.notFound = true; }
    }
    this.own = this.own.filter((own) => own !== id);
    if (entry.outcome === 'unknown' || (entry.outcome === 'failed' && again)) this.limbo.push(id);
    else if (entry.outcome === 'failed' && !entry.notFound) this.own.push(id);
    this.history.add(entry);
  }

  async read() {
    const { entry, data } = await this.op('read', LIST, {}, {});
    if (entry.outcome === 'ok') {
      const { totalCount, edges } = data.me.library.stories;
      entry.stories = edges.map(({ node }) => node);
      // More than a page: the read shows only the newest (the checker skips absence checks).
      if (totalCount > edges.length) entry.truncated = true;
      for (const story of entry.stories) {
        if (this.unsure.delete(story.title)) this.limbo.push(story.id);
      }
    }
    this.history.add(entry);
  }
}

/**
 * A tab: one resuming subscription on a random node. It pings every second and drops a
 * connection that stays silent for 4 s (a blackholed or paused node), then reconnects to a
 * random node with `after` = the last position it got. Records every event and every connect.
 */
export class Tab {
  constructor({ cluster, user, index, random }) {
    Object.assign(this, { cluster, user, random });
    this.name = `${user.name}/t${index}`;
    this.events = [];
    this.connections = [];
    this.last = null;
    this.stopped = false;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    const node = Math.floor(this.random() * this.cluster.nodes.length);
    const ws = new WebSocket(this.cluster.clientWsUrl(node), [PROTOCOL], { headers: { authorization: `Bearer ${this.user.token}` } });
    this.ws = ws;
    const connection = { node: `node-${node + 1}`, at: now(), after: this.last };
    this.connections.push(connection);
    let heard = now();
    const pinger = setInterval(() => {
      if (now() - heard > 4000) { connection.dropped = 'silent'; ws.terminate(); return; }
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ping' }));
    }, 1000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init' })));
    ws.on('message', (raw) => {
      heard = now();
      const message = JSON.parse(raw.toString());
      if (message.type === 'connection_ack') {
        ws.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query: TAB_SUBSCRIPTION, variables: this.last ? { after: this.last } : {} } }));
      } else if (message.type === 'next') {
        const position = message.payload.extensions?.position ?? null;
        this.events.push({ position, at: now(), node: connection.node, data: message.payload.data?.channel ?? null, errors: message.payload.errors });
        if (position) this.last = position;
      } else if (message.type === 'error' || message.type === 'complete') {
        connection.ended = message;
        ws.close();
      }
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      clearInterval(pinger);
      connection.closed = code;
      if (this.ws === ws && !this.stopped) setTimeout(() => this.connect(), 50 + this.random() * 200);
    });
  }

  stop() {
    this.stopped = true;
    this.ws?.terminate();
  }

  record() {
    return { kind: 'tab', user: this.user.name, tab: this.name, events: this.events, connections: this.connections };
  }
}
