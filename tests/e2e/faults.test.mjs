// Faults in one user's call: a trap, an endless loop and a memory bomb in the library
// component (a test-only build, tests/fault-component) fail that call with a clear GraphQL
// error; the instance is replaced and every other user carries on, events included.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, RawSocket, settled } from './harness.mjs';

const BUILT = new URL('../../target/wasm32-wasip2/release/', import.meta.url).pathname;

/** A fresh components dir holding these built files as library, graphql and user-channel. */
function componentsDir({ library = 'library.wasm', graphql = 'graphql.wasm', userChannel = 'user_channel.wasm' } = {}) {
  const path = mkdtempSync(join(tmpdir(), 'realtime-faulty-'));
  copyFileSync(join(BUILT, library), join(path, 'library.wasm'));
  copyFileSync(join(BUILT, graphql), join(path, 'graphql.wasm'));
  copyFileSync(join(BUILT, userChannel), join(path, 'user_channel.wasm'));
  return path;
}

/** Run `body` against a server of its own over `components` (see `componentsDir`). */
async function withServer(components, args, body) {
  const path = componentsDir(components);
  try {
    await Server.with({ args: ['--components-dir', path, ...args] }, body);
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}

let server;
let dir;
before(async () => {
  dir = componentsDir({ library: 'faulty_library.wasm' });
  server = await Server.start({ args: ['--components-dir', dir, '--max-call-time', '300ms', '--max-instance-memory', '32MiB'] });
});
after(async () => { await server?.stop(); server?.cleanup(); rmSync(dir, { recursive: true, force: true }); });

const CREATE = 'mutation($t: String!) { createStory(input: {url: "https://example.com", title: $t}) { story { title } } }';

test('a trap, an endless loop and a memory bomb fail only their own call', async () => {
  const mallory = await server.signUp('mallory@example.com');
  const bob = await server.signUp('bob@example.com');
  const tab = RawSocket.open(server, { token: bob.token });
  await tab.init();
  tab.subscribe('s', 'subscription { channel(name: "library") { __typename ... on StoryCreateEvent { story { title } } } }');
  await settled(tab);

  const expected = { trap: /trapped/, loop: /CPU time limit/, bomb: /trapped|memory|unreachable/ };
  let n = 0;
  for (const [fault, message] of Object.entries(expected)) {
    const started = Date.now();
    const failed = await server.gql(CREATE, { t: fault }, mallory.token);
    assert.equal(failed.status, 200);
    assert.equal(failed.body.data, null, JSON.stringify(failed.body));
    assert.match(failed.body.errors[0].message, message, JSON.stringify(failed.body));
    assert.ok(Date.now() - started < 10_000, `${fault} took ${Date.now() - started} ms`);

    // Bob is unaffected: his mutation succeeds and his tab gets both events.
    n += 1;
    const ok = await server.data(CREATE, { t: `bob ${n}` }, bob.token);
    assert.equal(ok.createStory.story.title, `bob ${n}`);
    assert.deepEqual(await tab.next(), { id: 's', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent', story: { title: `bob ${n}` } } } } });
    assert.deepEqual(await tab.next(), { id: 's', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent' } } } });

    // Mallory's next good call gets a fresh instance and works.
    const recovered = await server.data(CREATE, { t: `mallory after ${fault}` }, mallory.token);
    assert.equal(recovered.createStory.story.title, `mallory after ${fault}`);
  }
  const metrics = await server.metrics();
  assert.equal(metrics['realtime_traps_total{component="library"}'], 3);
  assert.deepEqual(await tab.drain(200), []);
  tab.close();
});

test('a trap in a socket\'s user-channel call closes that socket with 4500, and only that one', async () => {
  await withServer({ userChannel: 'faulty_user_channel.wasm' }, [], async (faulty) => {
    const alice = await faulty.signUp('alice@example.com');
    const bob = await faulty.signUp('bob@example.com');
    const [a1, a2, b1] = [RawSocket.open(faulty, { token: alice.token }), RawSocket.open(faulty, { token: alice.token }), RawSocket.open(faulty, { token: bob.token })];
    for (const s of [a1, a2, b1]) await s.init();
    a1.send({ type: 'trap' });
    assert.deepEqual(await a1.closed, { code: 4500, reason: 'Internal server error' });
    // Alice's other socket and Bob's are still served (by fresh instances).
    a2.send({ type: 'connection_init' });
    assert.deepEqual(await a2.next(), { type: 'connection_ack' });
    b1.send({ type: 'connection_init' });
    assert.deepEqual(await b1.next(), { type: 'connection_ack' });
    const m = await faulty.metrics();
    assert.equal(m['realtime_traps_total{component="user-channel"}'], 1);
    assert.equal(m.realtime_open_sockets, 2);

    // A trap while delivering a batch of events: every socket of that user learns it (4500),
    // since each missed the batch; other users' sockets are untouched.
    const a3 = RawSocket.open(faulty, { token: alice.token });
    await a3.init();
    await faulty.data('mutation { createStory(input: {url: "https://example.com", title: "trap"}) { story { title } } }', {}, alice.token);
    assert.deepEqual(await a2.closed, { code: 4500, reason: 'Internal server error' });
    assert.deepEqual(await a3.closed, { code: 4500, reason: 'Internal server error' });
    assert.equal((await faulty.metrics())['realtime_traps_total{component="user-channel"}'], 2);
    b1.send({ type: 'connection_init' });
    assert.equal((await Promise.race([b1.next(), b1.closed])).type, 'connection_ack', "Bob's socket is still served");
    b1.close();
  });
});

test('shutdown finishes the call in flight before the process exits', async () => {
  const slowServer = await Server.start({ args: ['--components-dir', dir] });
  try {
    const { token } = await slowServer.signUp('patient@example.com');
    const pending = slowServer.gql(CREATE, { t: 'slow' }, token);
    await new Promise((r) => setTimeout(r, 60));
    const exited = slowServer.stop();
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { data: { createStory: { story: { title: 'slow' } } } });
    assert.deepEqual(await exited, { code: 0, signal: null });
  } finally {
    slowServer.cleanup();
  }
});

test('the sql import refuses what would leave the database or the call\'s transaction', async () => {
  const eve = await server.signUp('eve@example.com');
  const tab = RawSocket.open(server, { token: eve.token });
  await tab.init();
  tab.subscribe('s', 'subscription { channel(name: "library") { ... on LibraryChangeEvent { totalStories } } }');
  await settled(tab);
  await server.data(CREATE, { t: 'first' }, eve.token);
  assert.deepEqual((await tab.next()).payload.data.channel, {});
  assert.deepEqual((await tab.next()).payload.data.channel, { totalStories: 1 });

  const elsewhere = join(dir, 'elsewhere.sqlite');
  const refused = {
    [`ATTACH DATABASE '${elsewhere}' AS other`]: /not authorized/,
    'DETACH DATABASE main': /not authorized/,
    'COMMIT': /not authorized/,
    'ROLLBACK': /not authorized/,
    'BEGIN': /not authorized/,
    'SAVEPOINT s': /not authorized/,
    'RELEASE s': /not authorized/,
    [`VACUUM INTO '${elsewhere}'`]: /not authorized|within a transaction/,
    'PRAGMA writable_schema = ON': /not authorized/,
    'PRAGMA journal_mode = DELETE': /not authorized/,
  };
  for (const [statement, message] of Object.entries(refused)) {
    const failed = await server.gql(CREATE, { t: `sql:${statement}` }, eve.token);
    assert.equal(failed.body.data, null, statement);
    assert.match(failed.body.errors[0].message, message, `${statement}: ${JSON.stringify(failed.body)}`);
  }
  assert.ok(!existsSync(elsewhere), 'no other database file was created');
  // Every refused call was rolled back whole (its story too) and published nothing.
  assert.deepEqual(await tab.drain(200), []);
  await server.data(CREATE, { t: 'second' }, eve.token);
  assert.deepEqual((await tab.next()).payload.data.channel, {});
  assert.deepEqual((await tab.next()).payload.data.channel, { totalStories: 2 });
  tab.close();
});

test('a component that never finishes starting fails the call under the CPU limit, and the server carries on', async () => {
  await withServer({ library: 'stuck_start_library.wasm' }, ['--max-call-time', '300ms'], async (stuck) => {
    const ann = await stuck.signUp('ann@example.com');
    for (let attempt = 0; attempt < 3; attempt++) {
      const started = Date.now();
      const failed = await stuck.gql(CREATE, { t: 'never' }, ann.token);
      assert.equal(failed.body.data, null, JSON.stringify(failed.body));
      assert.match(failed.body.errors[0].message, /could not start the library component.*CPU time limit/s, JSON.stringify(failed.body));
      assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    }
    // Both worker threads are free: other requests, and other users, are served.
    assert.deepEqual(await stuck.data('{ me { email } }', {}, ann.token), { me: { email: 'ann@example.com' } });
    assert.equal((await fetch(`${stuck.url}/healthz`)).status, 200);
  });
});

test('a user-channel that falls too far behind its events sheds them and tells every socket of its user to reconnect (1013)', { timeout: 60_000 }, async () => {
  await withServer({ userChannel: 'faulty_user_channel.wasm' }, ['--max-mailbox', '8'], async (slow) => {
    const alice = await slow.signUp('alice@example.com');
    const bob = await slow.signUp('bob@example.com');
    const [a1, a2, b1] = [RawSocket.open(slow, { token: alice.token }), RawSocket.open(slow, { token: alice.token }), RawSocket.open(slow, { token: bob.token })];
    for (const s of [a1, a2, b1]) await s.init();
    // Each of Alice's events keeps her user-channel busy 300 ms; 40 mutations at once pile up.
    const create = (token, title) => slow.data('mutation($t: String!) { createStory(input: {url: "https://example.com", title: $t}) { story { title } } }', { t: title }, token);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => create(alice.token, `slow ${i}`)));
    assert.equal(results.length, 40, 'every mutation itself succeeded');
    const reconnect = { code: 1013, reason: 'Too many events queued: reconnect' };
    assert.deepEqual(await a1.closed, reconnect);
    assert.deepEqual(await a2.closed, reconnect);
    assert.ok((await slow.metrics()).realtime_publishes_shed_total >= 1);
    // Bob's socket is served as before.
    await create(bob.token, 'bob is fine');
    b1.send({ type: 'connection_init' });
    assert.equal((await Promise.race([b1.next(), b1.closed])).type, 'connection_ack');
    b1.close();
  });
});

// Proves a request cannot hold a pooled graphql instance for long through its library calls:
// after 5 x --max-call-time (here 1.5 s) it starts no more of them, each refused with a clear
// error, while those already made keep their answers.
test('a request that keeps its graphql instance past 5 x --max-call-time starts no more library calls', { timeout: 60_000 }, async () => {
  const { token } = await server.signUp('holder@example.com');
  const mutations = Array.from({ length: 12 }, (_, i) => `m${i}: createStory(input: {url: "https://example.com", title: "slow"}) { story { title } }`).join(' ');
  const res = await server.gql(`mutation { ${mutations} }`, {}, token);
  // createStory's payload is non-null, so a refused field nulls `data`; the errors say which.
  const refused = (res.body.errors ?? []).map((e) => [e.path?.[0], e.message]);
  assert.ok(refused.length >= 1 && refused.length <= 9, `refused: ${JSON.stringify(refused)}`);
  const first = 12 - refused.length;
  assert.deepEqual(refused, Array.from({ length: refused.length }, (_, i) => [`m${first + i}`, 'This request took longer than its time limit of 1.5s']),
    'the calls after the limit, and only those, were refused');
});
