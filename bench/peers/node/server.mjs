// Benchmark peer: the schema subset the load generator uses (signUp, me, createStory, the
// library channel) on the graphql-ws reference server: `graphql-ws` useServer + `ws` +
// `graphql`, everything in memory. Each user's events go only to that user's subscribers.
// Auth: `Authorization: Bearer <token>` (401 before the upgrade when it names no session)
// or the `connection_init` payload `{ token }` (close 4403 when it names none).
//
//   node server.mjs --listen 127.0.0.1:8789

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { buildSchema, graphql } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';

const args = process.argv.slice(2);
const listenArg = args[args.indexOf('--listen') + 1] ?? '127.0.0.1:8789';
const [host, port] = args.includes('--listen') ? listenArg.split(':') : ['127.0.0.1', '8789'];

const schema = buildSchema(/* GraphQL */ `
  type Query { me: User }
  type Mutation {
    signUp(email: String!, password: String!, name: String): SignInResponse!
    createStory(input: CreateStoryInput!): CreateStoryPayload!
  }
  type Subscription { channel(name: String!): ChannelEvent! }
  type User { id: String! email: String! library: Library! }
  type SignInResponse { token: String! user: User! }
  type Library { id: ID! stories(first: Int): StoryConnection! }
  type StoryConnection { edges: [StoryEdge!]! totalCount: Int! }
  type StoryEdge { cursor: String! node: StoryPayload! }
  input CreateStoryInput { url: String! title: String! description: String tagIds: [ID!] }
  type CreateStoryPayload { story: StoryPayload }
  type StoryPayload { id: ID! url: String! title: String! description: String createdAt: String! }
  type StoryCreateEvent { type: String! story: StoryPayload! }
  type LibraryChangeEvent { type: String! totalStories: Int! totalTags: Int! }
  union ChannelEvent = StoryCreateEvent | LibraryChangeEvent
`);

// ---- the in-memory store ----------------------------------------------------------------
let nextId = 1;
const accounts = new Map(); // email -> { id, email, password }
const sessions = new Map(); // token -> user
const libraries = new Map(); // user id -> stories, oldest first
const listeners = new Map(); // user id -> Set of (channel, event) => void

function publish(userId, channel, event) {
  const set = listeners.get(userId);
  if (set) for (const listener of set) listener(channel, event);
}

// An async iterator over one user's events on one channel.
function subscribe(userId, channelName) {
  const queue = [];
  let pending = null;
  let done = false;
  const listener = (channel, event) => {
    if (channel !== channelName || done) return;
    if (pending) {
      const resolve = pending;
      pending = null;
      resolve({ value: event, done: false });
    } else queue.push(event);
  };
  let set = listeners.get(userId);
  if (!set) listeners.set(userId, (set = new Set()));
  set.add(listener);
  const finish = () => {
    done = true;
    set.delete(listener);
    if (set.size === 0) listeners.delete(userId);
    if (pending) {
      pending({ value: undefined, done: true });
      pending = null;
    }
    return Promise.resolve({ value: undefined, done: true });
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      if (queue.length) return Promise.resolve({ value: queue.shift(), done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => (pending = resolve));
    },
    return: finish,
    throw(error) {
      finish();
      return Promise.reject(error);
    },
  };
}

function userOf(token) {
  return token ? sessions.get(token) : undefined;
}

function bearer(headers) {
  const value = headers.authorization;
  return value && value.startsWith('Bearer ') ? value.slice(7).trim() : undefined;
}

// ---- resolvers ---------------------------------------------------------------------------
const fields = (type) => schema.getType(type).getFields();

fields('Query').me.resolve = (_, __, { user }) => user ?? null;
fields('User').library.resolve = (user) => ({ id: `Library:${user.id}`, userId: user.id });
fields('Library').stories.resolve = (library, { first }) => {
  const stories = libraries.get(library.userId) ?? [];
  const n = Math.max(0, Math.min(first ?? 20, 100));
  const edges = [];
  for (let i = stories.length - 1; i >= 0 && edges.length < n; i--) edges.push({ cursor: stories[i].id, node: stories[i] });
  return { edges, totalCount: stories.length };
};

fields('Mutation').signUp.resolve = (_, { email, password }) => {
  if (accounts.has(email)) throw new Error('Email already registered');
  const user = { id: `u${nextId++}`, email, password };
  accounts.set(email, user);
  const token = randomBytes(24).toString('hex');
  sessions.set(token, user);
  return { token, user };
};

fields('Mutation').createStory.resolve = (_, { input }, { user }) => {
  if (!user) throw new Error('Not signed in');
  if (!/^https?:\/\//.test(input.url)) throw new Error('Invalid URL');
  const story = {
    id: `Story:${nextId++}`,
    url: input.url,
    title: input.title,
    description: input.description ?? null,
    createdAt: new Date().toISOString(),
  };
  let stories = libraries.get(user.id);
  if (!stories) libraries.set(user.id, (stories = []));
  stories.push(story);
  publish(user.id, 'library', { __typename: 'StoryCreateEvent', type: 'story:create', story });
  publish(user.id, 'library', {
    __typename: 'LibraryChangeEvent',
    type: 'library:change',
    totalStories: stories.length,
    totalTags: 0,
  });
  return { story };
};

const channel = fields('Subscription').channel;
channel.subscribe = (_, { name }, { user }) => {
  if (!user) throw new Error('Not signed in');
  return subscribe(user.id, name);
};
channel.resolve = (event) => event;

// ---- HTTP: POST /graphql -------------------------------------------------------------------
function send(res, status, body, type = 'application/json; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/healthz') return send(res, 200, 'ok\n', 'text/plain');
  if (path !== '/graphql' || req.method !== 'POST') return send(res, 404, 'not found\n', 'text/plain');
  const token = bearer(req.headers);
  const user = userOf(token);
  if (token && !user) return send(res, 401, JSON.stringify({ errors: [{ message: 'Invalid token' }] }));
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', async () => {
    let params;
    try {
      params = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return send(res, 400, JSON.stringify({ errors: [{ message: 'The body is not JSON' }] }));
    }
    const result = await graphql({
      schema,
      source: params.query,
      variableValues: params.variables,
      operationName: params.operationName,
      contextValue: { user },
    });
    send(res, 200, JSON.stringify(result));
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

// ---- WebSocket: graphql-ws on /graphql -----------------------------------------------------
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  if (req.url.split('?')[0] !== '/graphql') return socket.destroy();
  const token = bearer(req.headers);
  if (token && !userOf(token)) {
    socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

useServer(
  {
    schema,
    onConnect: (ctx) => {
      const fromInit = ctx.connectionParams?.token;
      const user = fromInit !== undefined ? userOf(fromInit) : userOf(bearer(ctx.extra.request.headers));
      if (!user) return false; // close 4403 Forbidden
      ctx.extra.user = user;
      return true;
    },
    context: (ctx) => ({ user: ctx.extra.user }),
  },
  wss,
);

server.listen(Number(port), host, () => {
  console.error(`node peer serving on http://${host}:${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const client of wss.clients) client.close(1001, 'Going away');
    server.close();
    process.exit(0);
  });
}
