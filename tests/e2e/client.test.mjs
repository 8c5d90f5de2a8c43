// The unmodified `graphql-ws` npm client (Node 20, `ws` as its WebSocket) against the real
// server: query, mutation, subscription and `iterate()` end to end; reconnect and resubscribe
// across a host restart; a fatal close (4400) ends with an error and no retry.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { Server, sleep, withoutPosition } from './harness.mjs';

let server;
let token;
const EMAIL = 'client@example.com';
before(async () => {
  server = await Server.start();
  ({ token } = await server.signUp(EMAIL));
});
after(async () => { await server?.stop(); server?.cleanup(); });

const STORIES = `subscription Stories {
  channel(name: "library") {
    __typename
    ... on StoryCreateEvent { type story { id title url } }
    ... on LibraryChangeEvent { type totalStories totalTags }
  }
}`;

/** A client as an application would make it; every client made here is disposed after its test. */
function client(t, options = {}) {
  const c = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { token },
    retryAttempts: 0,
    ...options,
  });
  t.after(() => c.dispose());
  return c;
}

/** A sink that records what a subscribe delivers. */
function recorder() {
  const r = {
    results: [],
    error: undefined,
    completed: false,
    waiters: [],
    next(value) { r.results.push(withoutPosition(value)); r.wake(); },
    error_(err) { r.error = err; r.wake(); },
    complete() { r.completed = true; r.wake(); },
    wake() { for (const w of r.waiters.splice(0)) w(); },
    /** Resolves once `predicate(r)` holds, or rejects after `ms`. */
    async until(predicate, ms = 5000, what = 'condition') {
      const deadline = Date.now() + ms;
      while (!predicate(r)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${what}: ${JSON.stringify({ results: r.results, error: String(r.error), completed: r.completed })}`);
        await new Promise((resolve) => { const t = setTimeout(resolve, left); r.waiters.push(() => { clearTimeout(t); resolve(); }); });
      }
    },
  };
  r.sink = { next: (v) => r.next(v), error: (e) => r.error_(e), complete: () => r.complete() };
  return r;
}

/** Run one operation to its end through `c`; resolves with every result. */
async function execute(c, payload) {
  const r = recorder();
  c.subscribe(payload, r.sink);
  await r.until((x) => x.completed || x.error !== undefined, 5000, 'operation end');
  if (r.error !== undefined) throw r.error;
  return r.results;
}

async function mutate(query, variables) {
  return server.data(query, variables, token);
}

async function createStory(title) {
  return (await mutate('mutation($u: String!, $t: String!) { createStory(input: {url: $u, title: $t}) { story { id title url } } }',
    { u: `https://example.com/${encodeURIComponent(title)}`, t: title })).createStory.story;
}

async function totals() {
  const lib = (await server.data('{ me { library { stories { totalCount } tags { id } } } }', {}, token)).me.library;
  return { totalStories: lib.stories.totalCount, totalTags: lib.tags.length };
}

/** Resolves on the next `event` of the client. */
function once(c, event, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${event} within ${ms} ms`)); }, ms);
    const off = c.on(event, (...args) => { clearTimeout(timer); off(); resolve(args); });
  });
}

test('query: one result, then complete', { timeout: 20_000 }, async (t) => {
  const c = client(t);
  const results = await execute(c, { query: 'query Me { me { email __typename } }', operationName: 'Me' });
  assert.deepEqual(results, [{ data: { me: { email: EMAIL, __typename: 'User' } } }]);
});

test('mutation: one result, then complete; it really ran', { timeout: 20_000 }, async (t) => {
  const c = client(t);
  const results = await execute(c, {
    query: 'mutation Tag($input: CreateTagInput!) { createTag(input: $input) { tag { name color } error { __typename } } }',
    variables: { input: { name: 'from-client', color: '#123456' } },
  });
  assert.deepEqual(results, [{ data: { createTag: { tag: { name: 'from-client', color: '#123456' }, error: null } } }]);
  const tags = (await server.data('{ me { library { tags { name } } } }', {}, token)).me.library.tags;
  assert.ok(tags.some((tag) => tag.name === 'from-client'));
});

test('an invalid operation: the sink gets the GraphQL errors and nothing else, and the client carries on', { timeout: 20_000 }, async (t) => {
  const c = client(t);
  const r = recorder();
  c.subscribe({ query: 'subscription { channel(name: "library") { nosuchfield } }' }, r.sink);
  await r.until((x) => x.error !== undefined, 5000, 'error');
  assert.ok(Array.isArray(r.error), 'an array of GraphQL errors');
  assert.ok(r.error.length > 0);
  assert.match(r.error[0].message, /nosuchfield/);
  assert.deepEqual(r.results, []);
  assert.equal(r.completed, false);
  // Same client, same socket: a valid query still works.
  assert.deepEqual(await execute(c, { query: '{ me { email } }' }), [{ data: { me: { email: EMAIL } } }]);
});

test('subscription: every event in the selection\'s shape; disposing stops it', { timeout: 20_000 }, async (t) => {
  const connected = [];
  const c = client(t, { on: { connected: (_socket, payload, wasRetry) => connected.push({ payload, wasRetry }) } });
  const r = recorder();
  const before = await totals();
  const dispose = c.subscribe({ query: STORIES, operationName: 'Stories' }, r.sink);
  // The subscribe is on the wire once a later operation on the same socket has answered.
  await execute(c, { query: '{ me { id } }' });
  const story = await createStory('client subscription');
  await r.until((x) => x.results.length >= 2, 5000, 'two events');
  assert.deepEqual(r.results, [
    { data: { channel: { __typename: 'StoryCreateEvent', type: 'story:create', story } } },
    { data: { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: before.totalStories + 1, totalTags: before.totalTags } } },
  ]);
  assert.deepEqual(connected, [{ payload: undefined, wasRetry: false }], 'connection_ack without payload');
  dispose();
  await execute(c, { query: '{ me { id } }' });
  await createStory('after dispose');
  await sleep(300);
  assert.equal(r.results.length, 2, 'nothing after dispose');
  assert.equal(r.error, undefined);
});

test('iterate(): subscription events as an async iterator; break completes it; queries yield once', { timeout: 20_000 }, async (t) => {
  const c = client(t, { lazy: false });
  await once(c, 'connected');
  const before = await totals();
  const iterator = c.iterate({ query: STORIES });
  const first = iterator.next(); // starts the subscription
  await execute(c, { query: '{ me { id } }' });
  const story = await createStory('iterated');
  const got = [withoutPosition((await first).value)];
  for await (const result of iterator) {
    got.push(withoutPosition(result));
    if (got.length === 2) break;
  }
  assert.deepEqual(got, [
    { data: { channel: { __typename: 'StoryCreateEvent', type: 'story:create', story } } },
    { data: { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: before.totalStories + 1, totalTags: before.totalTags } } },
  ]);

  const query = [];
  for await (const result of c.iterate({ query: '{ me { email } }' })) query.push(result);
  assert.deepEqual(query, [{ data: { me: { email: EMAIL } } }]);
});

test('lazy: false connects at once with connectionParams {token}; a bad token is refused (4403)', { timeout: 20_000 }, async (t) => {
  const c = client(t, { lazy: false });
  const [socket, payload, wasRetry] = await once(c, 'connected');
  assert.equal(socket.protocol, 'graphql-transport-ws');
  assert.equal(payload, undefined);
  assert.equal(wasRetry, false);

  const bad = client(t, { connectionParams: { token: 'not-a-token' } });
  const r = recorder();
  bad.subscribe({ query: '{ me { id } }' }, r.sink);
  await r.until((x) => x.error !== undefined, 5000, 'error');
  assert.equal(r.error.code, 4403);
  assert.equal(r.error.reason, 'Forbidden');
  assert.deepEqual(r.results, []);
});

test('a host restart: the client reconnects, resubscribes, and events after the restart arrive', { timeout: 60_000 }, async (t) => {
  const events = { connecting: 0, connected: [], closed: [] };
  const c = client(t, {
    lazy: false,
    retryAttempts: 200,
    retryWait: () => sleep(100),
    // Connection errors (nothing listening while the host restarts) are retryable too.
    shouldRetry: () => true,
    on: {
      connecting: () => { events.connecting++; },
      connected: (_s, _p, wasRetry) => events.connected.push(wasRetry),
      closed: (e) => events.closed.push(e.code),
    },
  });
  await once(c, 'connected');
  const r = recorder();
  c.subscribe({ query: STORIES }, r.sink);
  await execute(c, { query: '{ me { id } }' });
  const start = await totals();
  const beforeRestart = await createStory('before restart');
  await r.until((x) => x.results.length >= 2, 5000, 'events before the restart');

  const reconnected = once(c, 'connected', 45_000);
  await server.restart();
  const [, , wasRetry] = await reconnected;
  assert.equal(wasRetry, true);
  assert.equal(events.closed[0], 1001, 'the host closed the socket with 1001 at shutdown');
  // The resubscribe is sent before this query on the new socket.
  await execute(c, { query: '{ me { email } }' });
  const afterRestart = await createStory('after restart');
  await r.until((x) => x.results.length >= 4, 10_000, 'events after the restart');
  assert.deepEqual(r.results, [
    { data: { channel: { __typename: 'StoryCreateEvent', type: 'story:create', story: beforeRestart } } },
    { data: { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: start.totalStories + 1, totalTags: start.totalTags } } },
    { data: { channel: { __typename: 'StoryCreateEvent', type: 'story:create', story: afterRestart } } },
    { data: { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: start.totalStories + 2, totalTags: start.totalTags } } },
  ]);
  assert.equal(r.error, undefined, 'the subscription survived the restart');
  assert.equal(r.completed, false);
  assert.ok(events.connecting >= 2);
  assert.deepEqual(events.connected, [false, true]);
});

test('a fatal close (4400) ends the operation with that close event and no retry', { timeout: 20_000 }, async (t) => {
  const events = { connecting: 0, closed: [] };
  const c = client(t, {
    retryAttempts: 5,
    retryWait: () => sleep(20),
    shouldRetry: () => true,
    // The client validates what it sends; its documented JSON replacer is how a message
    // the server must refuse gets on the wire: the subscribe's query becomes a number.
    jsonMessageReplacer: (key, value) => (key === 'query' ? 42 : value),
    on: {
      connecting: () => { events.connecting++; },
      closed: (e) => events.closed.push({ code: e.code, reason: e.reason }),
    },
  });
  const r = recorder();
  c.subscribe({ query: '{ me { id } }' }, r.sink);
  await r.until((x) => x.error !== undefined, 5000, 'error');
  assert.equal(r.error.code, 4400);
  assert.equal(r.error.reason, '"subscribe" message payload expects the \'query\' property to be a string, but got number');
  assert.deepEqual(r.results, []);
  await sleep(500);
  assert.equal(events.connecting, 1, 'no retry after a fatal close');
  assert.deepEqual(events.closed, [{ code: 4400, reason: r.error.reason }]);
});
