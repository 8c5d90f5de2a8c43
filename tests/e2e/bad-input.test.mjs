// Bad input gets a documented answer, never a crash: HTTP 401 for a bad token at upgrade,
// close codes for bad frames, an `error` message for bad operations (socket stays open).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Server, RawSocket, settled } from './harness.mjs';

let server;
let token;
before(async () => {
  server = await Server.start({ args: ['--max-frame-bytes', '64KiB', '--init-timeout', '500ms'] });
  ({ token } = await server.signUp('bad@example.com'));
});
after(async () => { await server?.stop(); server?.cleanup(); });

test('a wrong token at upgrade gets HTTP 401', async () => {
  const socket = RawSocket.open(server, { token: 'not-a-token' });
  await assert.rejects(socket.opened, (e) => e.status === 401);
});

test('a bad init token closes 4403', async () => {
  const socket = RawSocket.open(server);
  await socket.opened;
  socket.send({ type: 'connection_init', payload: { token: 'nope' } });
  assert.deepEqual(await socket.closed, { code: 4403, reason: 'Forbidden' });
});

test('no token at all closes 4403', async () => {
  const socket = RawSocket.open(server);
  await socket.opened;
  socket.send({ type: 'connection_init' });
  assert.equal((await socket.closed).code, 4403);
});

for (const [name, frame] of [
  ['not JSON', '{nope'],
  ['JSON that is not an object', '[1,2]'],
  ['an unknown type', { type: 'hello' }],
  ['a subscribe without id', { type: 'subscribe', payload: { query: '{ me { id } }' } }],
]) {
  test(`a malformed frame (${name}) closes 4400`, async () => {
    const socket = RawSocket.open(server, { token });
    await socket.init();
    socket.send(frame);
    assert.equal((await socket.closed).code, 4400);
  });
}

test('a binary frame closes 4400', async () => {
  const socket = RawSocket.open(server, { token });
  await socket.init();
  socket.ws.send(Buffer.from([1, 2, 3]));
  assert.equal((await socket.closed).code, 4400);
});

test('an oversized frame closes 1009 and the server carries on', async () => {
  const socket = RawSocket.open(server, { token });
  await socket.init();
  socket.send({ type: 'ping', payload: { big: 'x'.repeat(100 * 1024) } });
  assert.equal((await socket.closed).code, 1009);
  const other = RawSocket.open(server, { token });
  await other.init();
  other.close();
});

test('no connection_init in time closes 4408 by the timer', async () => {
  const socket = RawSocket.open(server, { token });
  await socket.opened;
  const started = Date.now();
  assert.deepEqual(await socket.closed, { code: 4408, reason: 'Connection initialisation timeout' });
  assert.ok(Date.now() - started < 3000);
});

test('an unknown channel and invalid GraphQL get an error message and the socket stays open', async () => {
  const socket = RawSocket.open(server, { token });
  await socket.init();
  socket.subscribe('u', 'subscription { channel(name: "nope") { __typename } }');
  const unknown = await socket.next();
  assert.equal(unknown.id, 'u');
  assert.equal(unknown.type, 'error');
  assert.ok(Array.isArray(unknown.payload) && unknown.payload.length > 0);
  assert.match(unknown.payload[0].message, /Unknown channel "nope"/);

  socket.subscribe('v', 'subscription { channel(name: "library") { nosuchfield } }');
  const invalid = await socket.next();
  assert.equal(invalid.type, 'error');
  assert.equal(invalid.id, 'v');
  assert.ok(invalid.payload.length > 0);

  socket.subscribe('w', '{ this is not graphql');
  const syntax = await socket.next();
  assert.equal(syntax.type, 'error');

  // Still open, and the ids are reusable.
  socket.subscribe('u', '{ me { email } }');
  assert.deepEqual(await socket.next(), { id: 'u', type: 'next', payload: { data: { me: { email: 'bad@example.com' } } } });
  assert.deepEqual(await socket.next(), { id: 'u', type: 'complete' });
  await settled(socket);
  socket.close();
});

test('HTTP: a bad token is 401, a bad body is 400, a GET mutation is 405', async () => {
  const bad = await server.gql('{ me { id } }', {}, 'wrong');
  assert.equal(bad.status, 401);
  const notJson = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
  assert.equal(notJson.status, 400);
  const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent('mutation { signOut }')}`);
  assert.equal(get.status, 405);
  const invalid = await server.gql('{ nosuchfield }');
  assert.equal(invalid.status, 400);
  assert.ok(invalid.body.errors.length > 0);
  assert.equal(invalid.body.data, undefined);
});
