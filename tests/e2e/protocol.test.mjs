// graphql-ws conformance (the `graphql-transport-ws` subprotocol), one test per rule of the
// graphql-ws protocol document and of the brief, against the real binary over real sockets.
// Close codes, close reasons, message order and payloads are asserted exactly; the reasons are
// the ones documented in components/user-channel/README.md.
import { test as nodeTest, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { Server, RawSocket, PROTOCOL, settled, sleep } from './harness.mjs';

const INIT_TIMEOUT_MS = 1000;

/** Every test is bounded in time. */
const test = (name, fn) => nodeTest(name, { timeout: 30_000 }, fn);

const email = 'protocol@example.com';
let server;
let token;
before(async () => {
  server = await Server.start({ args: ['--init-timeout', `${INIT_TIMEOUT_MS}ms`] });
  ({ token } = await server.signUp(email));
});
after(async () => { await server?.stop(); server?.cleanup(); });

// Every close frame any test of this file sees, to check the 123-byte limit across all of them.
const closes = [];

/** Open a socket (`{token}` authenticates it at upgrade; `{}` leaves it anonymous) and wait for the upgrade. */
async function open(options) {
  const socket = RawSocket.open(server, options);
  socket.closed.then((c) => closes.push(c));
  await socket.opened;
  return socket;
}

/** Open and acknowledge a socket for the test user. */
async function ready() {
  const socket = await open({ token });
  assert.deepEqual(await socket.init(), { type: 'connection_ack' });
  return socket;
}

/** Wait for the close; assert its code and reason and that no message came before it. */
async function assertClosed(socket, code, reason) {
  const closed = await withTimeout(socket.closed, 5000, 'socket close');
  assert.deepEqual(closed, { code, reason });
  assert.deepEqual(socket.messages, [], 'no message before the close');
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms); }),
  ]);
}

const isOpen = (socket) => socket.ws.readyState === WebSocket.OPEN;

async function createStory(title) {
  return (await server.data(
    'mutation($u: String!, $t: String!) { createStory(input: {url: $u, title: $t}) { story { id title } } }',
    { u: `https://example.com/${encodeURIComponent(title)}`, t: title }, token)).createStory.story;
}

const STORY_TITLES = 'subscription { channel(name: "library") { __typename ... on StoryCreateEvent { story { title } } } }';

/**
 * A raw WebSocket handshake over TCP offering `protocols`: returns the HTTP response head
 * and the first frame the server sends (a close frame is decoded into code and reason).
 * Needed because `ws` aborts the handshake itself when the server picks no subprotocol.
 */
function rawHandshake(protocols) {
  return new Promise((resolve, reject) => {
    const sock = connect(server.port, '127.0.0.1');
    let buffer = Buffer.alloc(0);
    let head = null;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('raw handshake timed out')); }, 5000);
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('connect', () => {
      sock.write([
        'GET /graphql HTTP/1.1',
        `Host: 127.0.0.1:${server.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        ...(protocols.length ? [`Sec-WebSocket-Protocol: ${protocols.join(', ')}`] : []),
        `Authorization: Bearer ${token}`,
        '', '',
      ].join('\r\n'));
    });
    sock.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!head) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buffer.subarray(0, end).toString().split('\r\n');
        const headers = {};
        for (const line of lines.slice(1)) {
          const i = line.indexOf(':');
          headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
        head = { status: Number(lines[0].split(' ')[1]), headers };
        buffer = buffer.subarray(end + 4);
      }
      if (buffer.length < 2) return;
      const opcode = buffer[0] & 0x0f;
      const len = buffer[1] & 0x7f; // control frames are < 126 bytes
      if (buffer.length < 2 + len) return;
      const body = buffer.subarray(2, 2 + len);
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...head, frame: { opcode, code: len >= 2 ? body.readUInt16BE(0) : null, reason: body.subarray(2).toString() } });
    });
  });
}

// ---- subprotocol negotiation ----

test('subprotocol: graphql-transport-ws is accepted and echoed', async () => {
  const socket = await open({ token });
  assert.equal(socket.ws.protocol, PROTOCOL);
  await socket.init();
  socket.close();
});

test('subprotocol: among several offered, graphql-transport-ws is the one chosen', async () => {
  const ws = new WebSocket(server.wsUrl, ['graphql-ws', PROTOCOL, 'other'], { headers: { authorization: `Bearer ${token}` } });
  const socket = new RawSocket(ws);
  socket.closed.then((c) => closes.push(c));
  await socket.opened;
  assert.equal(ws.protocol, PROTOCOL);
  await socket.init();
  socket.close();
});

test('subprotocol: a client offering none is upgraded and closed 4406 "Subprotocol not acceptable"', async () => {
  const socket = await open({ token, protocol: null });
  assert.equal(socket.ws.protocol, '');
  socket.send({ type: 'connection_init' });
  await assertClosed(socket, 4406, 'Subprotocol not acceptable');
});

test('subprotocol: a client offering only another subprotocol gets no subprotocol and close 4406', async () => {
  for (const offered of [['graphql-ws'], ['graphql-transport-ws-v2', 'json']]) {
    const res = await rawHandshake(offered);
    assert.equal(res.status, 101, `offered ${offered}`);
    assert.equal(res.headers['sec-websocket-protocol'], undefined, 'no subprotocol selected');
    assert.deepEqual(res.frame, { opcode: 0x8, code: 4406, reason: 'Subprotocol not acceptable' });
    closes.push({ code: res.frame.code, reason: res.frame.reason });
  }
  // The raw handshake itself is right: offering graphql-transport-ws selects it and the
  // server then waits for connection_init (its first frame is the init-timeout close).
  const ok = await rawHandshake([PROTOCOL]);
  assert.equal(ok.status, 101);
  assert.equal(ok.headers['sec-websocket-protocol'], PROTOCOL);
  assert.deepEqual(ok.frame, { opcode: 0x8, code: 4408, reason: 'Connection initialisation timeout' });
});

// ---- connection_init / connection_ack ----

test('ack: the server says nothing before connection_init; connection_ack is its first message', async () => {
  const socket = await open({ token });
  assert.deepEqual(await socket.drain(200), [], 'silent before init');
  socket.send({ type: 'connection_init' });
  socket.send({ type: 'ping', payload: { after: 'init' } });
  socket.subscribe('q', '{ me { email } }');
  assert.deepEqual(await socket.next(), { type: 'connection_ack' });
  assert.deepEqual(await socket.next(), { type: 'pong', payload: { after: 'init' } });
  assert.deepEqual(await socket.next(), { id: 'q', type: 'next', payload: { data: { me: { email } } } });
  assert.deepEqual(await socket.next(), { id: 'q', type: 'complete' });
  socket.close();
});

test('ack: a token in the connection_init payload is acknowledged the same way', async () => {
  const socket = await open({});
  assert.deepEqual(await socket.init({ token }), { type: 'connection_ack' });
  socket.subscribe('me', '{ me { email } }');
  assert.deepEqual(await socket.next(), { id: 'me', type: 'next', payload: { data: { me: { email } } } });
  assert.deepEqual(await socket.next(), { id: 'me', type: 'complete' });
  socket.close();
});

test('a connection_init with a bad token, or none on a socket without one, closes 4403 "Forbidden"', async () => {
  for (const payload of [{ token: 'not-a-token' }, undefined, { token: 42 }]) {
    const socket = await open({});
    socket.send(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload });
    await assertClosed(socket, 4403, 'Forbidden');
  }
});

test('init timeout: no connection_init closes 4408 by the timer, with no client message at all', async () => {
  const started = Date.now();
  const socket = await open({ token });
  await assertClosed(socket, 4408, 'Connection initialisation timeout');
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= INIT_TIMEOUT_MS - 50, `closed after ${elapsed} ms, before the ${INIT_TIMEOUT_MS} ms timeout`);
  assert.ok(elapsed < INIT_TIMEOUT_MS + 2000, `closed after ${elapsed} ms`);
});

test('init timeout: pings do not count as connection_init; an acknowledged socket outlives the deadline', async () => {
  const pinger = await open({ token });
  const acked = await ready();
  pinger.send({ type: 'ping' });
  assert.deepEqual(await pinger.next(), { type: 'pong' });
  const closed = await withTimeout(pinger.closed, INIT_TIMEOUT_MS + 3000, 'init timeout');
  assert.deepEqual(closed, { code: 4408, reason: 'Connection initialisation timeout' });
  await sleep(200);
  assert.ok(isOpen(acked), 'the acknowledged socket is still open after the deadline');
  acked.send({ type: 'ping' });
  assert.deepEqual(await acked.next(), { type: 'pong' });
  acked.close();
});

test('second connection_init closes 4429 "Too many initialisation requests"', async () => {
  const socket = await ready();
  socket.send({ type: 'connection_init' });
  await assertClosed(socket, 4429, 'Too many initialisation requests');
});

test('subscribe before connection_ack closes 4401 "Unauthorized"', async () => {
  const socket = await open({ token });
  socket.subscribe('early', STORY_TITLES);
  await assertClosed(socket, 4401, 'Unauthorized');
});

test('query before connection_ack closes 4401 too', async () => {
  const socket = await open({ token });
  socket.subscribe('early', '{ me { email } }');
  await assertClosed(socket, 4401, 'Unauthorized');
});

// ---- malformed messages: 4400 ----

const MALFORMED = [
  ['malformed JSON', '{"type": "ping"', 'Invalid message received'],
  ['JSON that is not an object', '[{"type":"ping"}]', 'Invalid message received'],
  ['a message without type', { id: '1', payload: {} }, 'Invalid message received'],
  ['an unknown type', { type: 'hello' }, 'Invalid message \'type\' property "hello"'],
  ['a server message type (next)', { id: '1', type: 'next', payload: { data: {} } }, 'Unexpected message of type next received'],
  ['a subscribe without id', { type: 'subscribe', payload: { query: '{ me { id } }' } },
    '"subscribe" message expects the \'id\' property to be a string, but got undefined'],
  ['a subscribe with a numeric id', { id: 1, type: 'subscribe', payload: { query: '{ me { id } }' } },
    '"subscribe" message expects the \'id\' property to be a string, but got number'],
  ['a subscribe with an empty id', { id: '', type: 'subscribe', payload: { query: '{ me { id } }' } },
    '"subscribe" message requires a non-empty \'id\' property'],
  ['a subscribe without payload', { id: '1', type: 'subscribe' },
    '"subscribe" message expects the \'payload\' property to be an object, but got undefined'],
  ['a subscribe with a string payload', { id: '1', type: 'subscribe', payload: '{ me { id } }' },
    '"subscribe" message expects the \'payload\' property to be an object, but got string'],
  ['a subscribe with an array payload', { id: '1', type: 'subscribe', payload: [{ query: '{ me { id } }' }] },
    '"subscribe" message expects the \'payload\' property to be an object, but got array'],
  ['a subscribe with a null payload', { id: '1', type: 'subscribe', payload: null },
    '"subscribe" message expects the \'payload\' property to be an object, but got null'],
  ['a subscribe with a numeric query', { id: '1', type: 'subscribe', payload: { query: 42 } },
    '"subscribe" message payload expects the \'query\' property to be a string, but got number'],
  ['a subscribe without query', { id: '1', type: 'subscribe', payload: { variables: {} } },
    '"subscribe" message payload expects the \'query\' property to be a string, but got undefined'],
  ['a subscribe with array variables', { id: '1', type: 'subscribe', payload: { query: '{ me { id } }', variables: [] } },
    '"subscribe" message payload expects the \'variables\' property to be an object or nullish or missing, but got array'],
  ['a complete without id', { type: 'complete' },
    '"complete" message expects the \'id\' property to be a string, but got undefined'],
  ['a complete with an empty id', { id: '', type: 'complete' }, '"complete" message requires a non-empty \'id\' property'],
  ['a ping with a string payload', { type: 'ping', payload: 'hi' },
    '"ping" message expects the \'payload\' property to be an object or nullish or missing, but got string'],
];

for (const [name, frame, reason] of MALFORMED) {
  test(`4400 after ack: ${name}`, async () => {
    const socket = await ready();
    socket.send(frame);
    await assertClosed(socket, 4400, reason);
  });
}

test('4400 before ack too: malformed JSON, a non-object connection_init payload, a subscribe without id', async () => {
  for (const [frame, reason] of [
    ['nope', 'Invalid message received'],
    [{ type: 'connection_init', payload: 'token' },
      '"connection_init" message expects the \'payload\' property to be an object or nullish or missing, but got string'],
    [{ type: 'subscribe', payload: { query: '{ me { id } }' } },
      '"subscribe" message expects the \'id\' property to be a string, but got undefined'],
  ]) {
    const socket = await open({ token });
    socket.send(frame);
    await assertClosed(socket, 4400, reason);
  }
});

// ---- ids ----

test('a subscribe whose id is active closes 4409 "Subscriber for <id> already exists"', async () => {
  const socket = await ready();
  socket.subscribe('dup', STORY_TITLES);
  await settled(socket);
  socket.subscribe('dup', STORY_TITLES);
  await assertClosed(socket, 4409, 'Subscriber for dup already exists');
});

test('an id is reusable after the client completes it, and after the server completes it', async () => {
  const socket = await ready();
  socket.subscribe('x', STORY_TITLES);
  await settled(socket);
  socket.send({ id: 'x', type: 'complete' });
  socket.subscribe('x', 'subscription { channel(name: "library") { __typename ... on StoryCreateEvent { story { t: title } } } }');
  await settled(socket);
  await createStory('reused id');
  assert.deepEqual(await socket.next(), { id: 'x', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent', story: { t: 'reused id' } } } } });
  assert.deepEqual(await socket.next(), { id: 'x', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent' } } } });

  socket.subscribe('q', '{ me { email } }');
  assert.deepEqual(await socket.next(), { id: 'q', type: 'next', payload: { data: { me: { email } } } });
  assert.deepEqual(await socket.next(), { id: 'q', type: 'complete' });
  socket.subscribe('q', '{ me { e: email } }');
  assert.deepEqual(await socket.next(), { id: 'q', type: 'next', payload: { data: { me: { e: email } } } });
  assert.deepEqual(await socket.next(), { id: 'q', type: 'complete' });
  assert.ok(isOpen(socket));
  socket.close();
});

// ---- ping / pong ----

test('ping before init is answered with pong echoing its payload', async () => {
  const socket = await open({ token });
  socket.send({ type: 'ping', payload: { n: 1, nested: { a: [1, 'two', null] } } });
  assert.deepEqual(await socket.next(), { type: 'pong', payload: { n: 1, nested: { a: [1, 'two', null] } } });
  socket.send({ type: 'ping' });
  assert.deepEqual(await socket.next(), { type: 'pong' });
  socket.send({ type: 'ping', payload: null });
  assert.deepEqual(await socket.next(), { type: 'pong' });
  assert.deepEqual(await socket.init(), { type: 'connection_ack' }, 'init still works after pings');
  socket.close();
});

test('ping after init is answered with pong echoing its payload', async () => {
  const socket = await ready();
  socket.send({ type: 'ping', payload: { hello: 'world' } });
  assert.deepEqual(await socket.next(), { type: 'pong', payload: { hello: 'world' } });
  socket.send({ type: 'ping' });
  assert.deepEqual(await socket.next(), { type: 'pong' });
  assert.deepEqual(await socket.drain(100), []);
  socket.close();
});

test('an unsolicited pong is ignored, before and after init', async () => {
  const socket = await open({ token });
  socket.send({ type: 'pong' });
  socket.send({ type: 'pong', payload: { unsolicited: true } });
  assert.deepEqual(await socket.drain(200), []);
  assert.ok(isOpen(socket));
  await socket.init();
  socket.send({ type: 'pong', payload: { again: 1 } });
  socket.send({ type: 'ping', payload: { probe: 1 } });
  assert.deepEqual(await socket.next(), { type: 'pong', payload: { probe: 1 } }, 'the pong produced nothing');
  assert.deepEqual(await socket.drain(100), []);
  assert.ok(isOpen(socket));
  socket.close();
});

// ---- operations ----

test('a query over the socket gets exactly one next, then complete', async () => {
  const socket = await ready();
  socket.subscribe('q1', 'query Me($x: Boolean!) { me { email @include(if: $x) __typename } }', { x: true }, 'Me');
  assert.deepEqual(await socket.next(), { id: 'q1', type: 'next', payload: { data: { me: { email, __typename: 'User' } } } });
  assert.deepEqual(await socket.next(), { id: 'q1', type: 'complete' });
  assert.deepEqual(await socket.drain(200), []);
  socket.close();
});

test('a mutation over the socket gets exactly one next, then complete', async () => {
  const socket = await ready();
  socket.subscribe('m1', 'mutation($n: String!) { createTag(input: {name: $n, color: "#abc"}) { tag { name color } error { __typename } } }', { n: 'over-socket' });
  assert.deepEqual(await socket.next(), {
    id: 'm1', type: 'next',
    payload: { data: { createTag: { tag: { name: 'over-socket', color: '#abc' }, error: null } } },
  });
  assert.deepEqual(await socket.next(), { id: 'm1', type: 'complete' });
  assert.deepEqual(await socket.drain(200), []);
  // It really ran: the tag is there over HTTP.
  const tags = (await server.data('{ me { library { tags { name } } } }', {}, token)).me.library.tags;
  assert.ok(tags.some((t) => t.name === 'over-socket'));
  socket.close();
});

function assertErrorMessage(message, id) {
  assert.equal(message.type, 'error', JSON.stringify(message));
  assert.equal(message.id, id);
  assert.deepEqual(Object.keys(message).sort(), ['id', 'payload', 'type']);
  assert.ok(Array.isArray(message.payload), 'payload is an array');
  assert.ok(message.payload.length > 0, 'payload is not empty');
  for (const error of message.payload) assert.equal(typeof error.message, 'string');
}

test('a validation error gets one error (an array of GraphQL errors), no complete; the socket stays open and the id is reusable', async () => {
  const socket = await ready();
  socket.subscribe('v', 'subscription { channel(name: "library") { nosuchfield } }');
  const error = await socket.next();
  assertErrorMessage(error, 'v');
  assert.match(error.payload[0].message, /nosuchfield/);
  socket.subscribe('v2', '{ me { email } }', { unused: 1 }, 'NoSuchOperation');
  assertErrorMessage(await socket.next(), 'v2');
  assert.deepEqual(await socket.drain(200), [], 'no complete after an error');
  assert.ok(isOpen(socket));
  socket.subscribe('v', STORY_TITLES);
  await settled(socket);
  await createStory('after validation error');
  assert.deepEqual(await socket.next(), { id: 'v', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent', story: { title: 'after validation error' } } } } });
  assert.deepEqual(await socket.next(), { id: 'v', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent' } } } });
  socket.close();
});

test('a syntax error gets one error, no complete; the socket stays open and the id is reusable', async () => {
  const socket = await ready();
  socket.subscribe('s', 'subscription { channel(name: "library") {');
  assertErrorMessage(await socket.next(), 's');
  socket.subscribe('s2', 'subscription S($n: String!) { channel(name: $n) { __typename } }', { n: 42 });
  assertErrorMessage(await socket.next(), 's2');
  assert.deepEqual(await socket.drain(200), [], 'no complete after an error');
  assert.ok(isOpen(socket));
  socket.subscribe('s', '{ me { email } }');
  assert.deepEqual(await socket.next(), { id: 's', type: 'next', payload: { data: { me: { email } } } });
  assert.deepEqual(await socket.next(), { id: 's', type: 'complete' });
  socket.close();
});

test('client complete: no more next for that id, nothing echoed; other subscriptions carry on', async () => {
  const socket = await ready();
  socket.subscribe('keep', STORY_TITLES);
  socket.subscribe('stop', 'subscription { channel(name: "library") { __typename } }');
  await settled(socket);
  await createStory('before complete');
  const before = [await socket.next(), await socket.next(), await socket.next(), await socket.next()];
  assert.deepEqual(before, [
    { id: 'keep', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent', story: { title: 'before complete' } } } } },
    { id: 'stop', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent' } } } },
    { id: 'keep', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent' } } } },
    { id: 'stop', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent' } } } },
  ]);
  socket.send({ id: 'stop', type: 'complete' });
  await settled(socket); // the pong is the only answer: nothing was echoed for the complete
  await createStory('after complete');
  assert.deepEqual(await socket.next(), { id: 'keep', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent', story: { title: 'after complete' } } } } });
  assert.deepEqual(await socket.next(), { id: 'keep', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent' } } } });
  assert.deepEqual(await socket.drain(300), [], 'nothing for the completed id');
  socket.close();
});

test('complete for an unknown id is ignored', async () => {
  const socket = await ready();
  socket.send({ id: 'never-seen', type: 'complete' });
  socket.send({ id: 'never-seen', type: 'complete' });
  await settled(socket);
  assert.deepEqual(await socket.drain(200), []);
  assert.ok(isOpen(socket));
  // Completing an id twice is ignored as well.
  socket.subscribe('once', STORY_TITLES);
  socket.send({ id: 'once', type: 'complete' });
  socket.send({ id: 'once', type: 'complete' });
  await settled(socket);
  assert.deepEqual(await socket.drain(100), []);
  assert.ok(isOpen(socket));
  socket.close();
});

test('several operations interleaved on one socket, each answered under its own id', async () => {
  const socket = await ready();
  socket.subscribe('sub-a', 'subscription { e: channel(name: "library") { kind: __typename } }');
  socket.subscribe('q', '{ me { email } }');
  socket.subscribe('sub-b', 'subscription S($n: String!) { channel(name: $n) { __typename ...Created } } fragment Created on StoryCreateEvent { story { title } }', { n: 'library' }, 'S');
  socket.subscribe('bad', '{ nope }');
  socket.subscribe('m', 'mutation { createStory(input: {url: "https://example.com/interleaved", title: "interleaved"}) { story { title } } }');
  socket.send({ type: 'ping', payload: { mid: true } });
  socket.subscribe('q2', '{ me { __typename } }');

  // The socket's own operations are answered in order; the mutation's events come to the
  // subscriptions made before it, after its own answer or interleaved with it.
  const got = [];
  for (let i = 0; i < 12; i++) got.push(await socket.next());
  const forId = (id) => got.filter((m) => m.id === id);
  assert.deepEqual(forId('q'), [
    { id: 'q', type: 'next', payload: { data: { me: { email } } } },
    { id: 'q', type: 'complete' },
  ]);
  assertErrorMessage(forId('bad')[0], 'bad');
  assert.equal(forId('bad').length, 1);
  assert.deepEqual(forId('m'), [
    { id: 'm', type: 'next', payload: { data: { createStory: { story: { title: 'interleaved' } } } } },
    { id: 'm', type: 'complete' },
  ]);
  assert.deepEqual(forId('q2'), [
    { id: 'q2', type: 'next', payload: { data: { me: { __typename: 'User' } } } },
    { id: 'q2', type: 'complete' },
  ]);
  assert.deepEqual(forId('sub-a'), [
    { id: 'sub-a', type: 'next', payload: { data: { e: { kind: 'StoryCreateEvent' } } } },
    { id: 'sub-a', type: 'next', payload: { data: { e: { kind: 'LibraryChangeEvent' } } } },
  ]);
  assert.deepEqual(forId('sub-b'), [
    { id: 'sub-b', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent', story: { title: 'interleaved' } } } } },
    { id: 'sub-b', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent' } } } },
  ]);
  assert.deepEqual(got.filter((m) => m.type === 'pong'), [{ type: 'pong', payload: { mid: true } }]);
  // Per-operation order on the wire: q, bad, m, pong, q2 answered in the order they were sent.
  const order = got.filter((m) => ['q', 'bad', 'm', 'q2', undefined].includes(m.id)).map((m) => `${m.id ?? 'pong'}:${m.type}`);
  assert.deepEqual(order, ['q:next', 'q:complete', 'bad:error', 'm:next', 'm:complete', 'pong:pong', 'q2:next', 'q2:complete']);
  assert.deepEqual(await socket.drain(200), []);
  socket.close();
});

test('several subscriptions to the same channel with different selections on one socket', async () => {
  const socket = await ready();
  socket.subscribe('1', 'subscription { channel(name: "library") { __typename ... on LibraryChangeEvent { totalStories } } }');
  socket.subscribe('2', 'subscription { c: channel(name: "library") { kind: __typename ... on LibraryChangeEvent { t: totalTags } } }');
  await settled(socket);
  const library = (await server.data('{ me { library { stories { totalCount } tags { id } } } }', {}, token)).me.library;
  const totalStories = library.stories.totalCount;
  const totalTags = library.tags.length;
  await createStory('same channel');
  assert.deepEqual(await socket.next(), { id: '1', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent' } } } });
  assert.deepEqual(await socket.next(), { id: '2', type: 'next', payload: { data: { c: { kind: 'StoryCreateEvent' } } } });
  assert.deepEqual(await socket.next(), { id: '1', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent', totalStories: totalStories + 1 } } } });
  assert.deepEqual(await socket.next(), { id: '2', type: 'next', payload: { data: { c: { kind: 'LibraryChangeEvent', t: totalTags } } } });
  socket.close();
});

test('an event that matches none of a selection\'s fragments gives an empty object (channel is non-null), not null', async () => {
  const socket = await ready();
  socket.subscribe('only-create', 'subscription { channel(name: "library") { ... on StoryCreateEvent { story { title } } } }');
  await settled(socket);
  await createStory('empty selection');
  assert.deepEqual(await socket.next(), { id: 'only-create', type: 'next', payload: { data: { channel: { story: { title: 'empty selection' } } } } });
  // library:change: the selection has nothing for it. `channel: ChannelEvent!` cannot be
  // null, and an object whose selection set selects no field is the empty map.
  assert.deepEqual(await socket.next(), { id: 'only-create', type: 'next', payload: { data: { channel: {} } } });
  // Known gap, not asserted: over HTTP a *nullable* object whose whole selection is skipped
  // (`{ me { ... @include(if: false) { id } } }`) reads null instead of {} (async-graphql 7.2
  // turns an empty object into null; the component restores {} only where the field is non-null).
  socket.close();
});

// ---- close reasons ----

test('close reasons that would exceed 123 bytes are shortened', async () => {
  const longId = 'i'.repeat(200);
  const dup = await ready();
  dup.subscribe(longId, STORY_TITLES);
  await settled(dup);
  dup.subscribe(longId, STORY_TITLES);
  await assertClosed(dup, 4409, 'Subscriber already exists');

  const unknown = await ready();
  unknown.send({ type: 't'.repeat(200) });
  await assertClosed(unknown, 4400, 'Invalid message received');
});

test('every close reason seen in this file is at most 123 bytes', async () => {
  // Runs last: `closes` holds every close frame of the tests above.
  assert.ok(closes.length >= 25, `saw ${closes.length} closes`);
  const codes = new Set(closes.map((c) => c.code));
  for (const code of [4400, 4401, 4403, 4406, 4408, 4409, 4429]) assert.ok(codes.has(code), `saw a ${code}`);
  for (const { code, reason } of closes) {
    assert.ok(Buffer.byteLength(reason) <= 123, `${code} reason of ${Buffer.byteLength(reason)} bytes: ${reason}`);
  }
});

// ---- closing ----

test('a client-initiated close is answered with a close frame (clean closing handshake, RFC 6455 5.5.1)', async () => {
  // The graphql-ws client closes its socket with 1000 when its last operation ends; without
  // the server's close frame it sees 1006, and an operation started meanwhile fails or waits
  // for a retry backoff instead of reconnecting at once.
  for (const acknowledged of [true, false]) {
    const socket = acknowledged ? await ready() : await open({ token });
    socket.ws.close(1000, 'Normal Closure');
    const closed = await withTimeout(socket.closed, 5000, 'close');
    assert.equal(socket.ws._closeFrameReceived, true, `the server sent a close frame (acknowledged: ${acknowledged})`);
    assert.deepEqual(closed, { code: 1000, reason: 'Normal Closure' });
  }
});

// ---- shutdown ----

test('server shutdown (SIGTERM) closes every socket with 1001', async () => {
  const own = await Server.start();
  try {
    const { token: t } = await own.signUp('shutdown@example.com');
    const subscribed = RawSocket.open(own, { token: t });
    await subscribed.init();
    subscribed.subscribe('s', STORY_TITLES);
    await settled(subscribed);
    const waiting = RawSocket.open(own, { token: t });
    await waiting.opened;
    const anonymous = RawSocket.open(own);
    await anonymous.opened;
    const exit = own.stop('SIGTERM');
    for (const socket of [subscribed, waiting, anonymous]) {
      const closed = await withTimeout(socket.closed, 10_000, 'close at shutdown');
      assert.deepEqual(closed, { code: 1001, reason: 'Server shutting down' });
      assert.ok(Buffer.byteLength(closed.reason) <= 123);
    }
    assert.deepEqual(subscribed.messages, []);
    const { code, signal } = await withTimeout(exit, 15_000, 'server exit');
    assert.ok(code === 0 || signal === 'SIGTERM', `exit code ${code}, signal ${signal}`);
  } finally {
    await own.kill();
    own.cleanup();
  }
});
