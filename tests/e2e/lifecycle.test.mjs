// Actor lifecycle: the cap on live instances evicts the least recently used actor, and an
// evicted actor wakes on its next call with its data intact; the graphql component is served
// by a few shared instances, not one per user.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Server, RawSocket } from './harness.mjs';

let server;
before(async () => { server = await Server.start({ args: ['--max-instances', '4', '--graphql-instances', '3'] }); });
after(async () => { await server?.stop(); server?.cleanup(); });

const sum = (m, prefix) => Object.entries(m).filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);
const graphql = (m, name) => m[`${name}{component="graphql"}`];
/** Live actor instances (library and user-channel; graphql instances are the pool's). */
const actors = (m) => sum(m, 'realtime_live_instances') - graphql(m, 'realtime_live_instances');

test('at most --max-instances live instances; the least recently used is evicted and wakes again', async () => {
  const users = [];
  for (let i = 0; i < 4; i++) users.push(await server.signUp(`lru${i}@example.com`));
  for (const [i, user] of users.entries()) {
    await server.data('mutation($t: String!) { createTag(input: {name: $t, color: "#000"}) { tag { id } } }', { t: `tag${i}` }, user.token);
  }
  await new Promise((r) => setTimeout(r, 200));
  const m = await server.metrics();
  assert.ok(actors(m) <= 4, `live: ${actors(m)}`);
  assert.ok(sum(m, 'realtime_evictions_total') >= 4, `evictions: ${sum(m, 'realtime_evictions_total')}`);
  // Every user's data is still there (their actors wake on demand).
  for (const [i, user] of users.entries()) {
    const me = await server.data('{ me { library { tags { name } } } }', {}, user.token);
    assert.deepEqual(me.me.library.tags, [{ name: `tag${i}` }]);
  }
  const after = await server.metrics();
  assert.ok(actors(after) <= 4);
});

test('users coming alive share the graphql instances: no instance per user, at most --graphql-instances', async () => {
  const before = await server.metrics();
  const users = [];
  for (let i = 0; i < 6; i++) users.push(await server.signUp(`shared${i}@example.com`));
  // Twelve users' requests at once, several per user, all answered by at most 3 instances.
  const answers = await Promise.all(users.flatMap((user) => [1, 2].map(() =>
    server.data('{ me { email library { stories(first: 1) { totalCount } } } }', {}, user.token))));
  assert.deepEqual(answers.map((a) => a.me.email), users.flatMap((_, i) => [`shared${i}@example.com`, `shared${i}@example.com`]));
  assert.ok(answers.every((a) => a.me.library.stories.totalCount === 0));
  const m = await server.metrics();
  assert.ok(graphql(m, 'realtime_live_instances') <= 3, `graphql instances: ${graphql(m, 'realtime_live_instances')}`);
  const started = graphql(m, 'realtime_instantiations_total') - graphql(before, 'realtime_instantiations_total');
  assert.ok(started <= 3, `graphql instances started for 6 new users: ${started}`);
  assert.ok(graphql(m, 'realtime_calls_total') - graphql(before, 'realtime_calls_total') >= 18, 'sign-ups and queries all ran on the pool');
});

test('per-user socket cap and a client that never reads', async () => {
  const limited = await Server.start({ args: ['--max-sockets-per-user', '2', '--socket-queue', '4'] });
  try {
    const { token } = await limited.signUp('capped@example.com');
    const a = RawSocket.open(limited, { token });
    await a.init();
    const b = RawSocket.open(limited);
    await b.init({ token });
    const c = RawSocket.open(limited, { token });
    await assert.rejects(c.opened, (e) => e.status === 429);
    const d = RawSocket.open(limited);
    await d.opened;
    d.send({ type: 'connection_init', payload: { token } });
    assert.deepEqual(await d.closed, { code: 1008, reason: 'Too many sockets for this user' });
    b.close();
    await b.closed;

    // A raw client that subscribes and then never reads: once the kernel buffers are full its
    // queue overflows and the server drops it; the other socket keeps getting every event.
    const { Socket } = await import('node:net');
    const raw = new Socket();
    await new Promise((r) => raw.connect(limited.port, '127.0.0.1', r));
    const frame = (obj) => {
      const payload = Buffer.from(JSON.stringify(obj));
      const mask = Buffer.from([1, 2, 3, 4]);
      const header = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
      return Buffer.concat([header, mask, Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]))]);
    };
    raw.write(`GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    raw.write(frame({ type: 'connection_init' }));
    // Each event is about 430 KB for this client: 48 copies of a 9,000-character description.
    const copies = Array.from({ length: 48 }, (_, i) => `d${i}: description`).join(' ');
    raw.write(frame({ id: 's', type: 'subscribe', payload: { query: `subscription { channel(name: "library") { ... on StoryCreateEvent { story { ${copies} } } } }` } }));
    await new Promise((r) => setTimeout(r, 300));
    raw.pause();
    a.subscribe('s', 'subscription { channel(name: "library") { __typename } }');
    const big = 'x'.repeat(9_000);
    let opened = (await limited.metrics()).realtime_open_sockets;
    assert.equal(opened, 2);
    for (let i = 0; i < 60 && opened === 2; i++) {
      await limited.data('mutation($t: String!, $d: String!) { createStory(input: {url: "https://example.com", title: $t, description: $d}) { story { id } } }', { t: `${i}`, d: big }, token);
      opened = (await limited.metrics()).realtime_open_sockets;
    }
    assert.equal(opened, 1, 'the client that never reads was dropped');
    raw.destroy();
    // The reading socket got every event (two per mutation).
    const got = await a.drain(500);
    assert.ok(got.length >= 2 && got.every((m) => m.type === 'next' && m.id === 's'));
    a.close();
  } finally {
    await limited.stop();
    limited.cleanup();
  }
});
