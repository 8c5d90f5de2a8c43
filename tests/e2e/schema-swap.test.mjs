// Schema by swap: the schema lives in the graphql component, so installing a build with
// one more field (tests/graphql-v2) changes /graphql/schema and what validates, with no
// restart; open sockets and their subscriptions carry on. Swapping back removes it again.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Server, RawSocket, settled } from './harness.mjs';

const BUILT = new URL('../../target/wasm32-wasip2/release/', import.meta.url).pathname;
const ADMIN = 'schema-admin';

let server;
before(async () => { server = await Server.start({ args: ['--admin-token', ADMIN] }); });
after(async () => { await server?.stop(); server?.cleanup(); });

async function install(file) {
  const res = await fetch(`${server.url}/admin/components/graphql`, {
    method: 'PUT', headers: { authorization: `Bearer ${ADMIN}` }, body: readFileSync(join(BUILT, file)),
  });
  assert.equal(res.status, 200, await res.text());
}

const sdl = async () => (await fetch(`${server.url}/graphql/schema`)).text();

test('a graphql component swap changes the schema served and validated, without a restart', async () => {
  const { token } = await server.signUp('schema@example.com');
  const tab = RawSocket.open(server, { token });
  await tab.init();
  tab.subscribe('s', 'subscription { channel(name: "library") { ... on StoryCreateEvent { story { title } } } }');
  await settled(tab);

  assert.doesNotMatch(await sdl(), /schemaVersion/);
  const before = await server.gql('{ schemaVersion }', {}, token);
  assert.equal(before.status, 400);
  assert.match(before.body.errors[0].message, /Unknown field "schemaVersion"/);

  await install('graphql_v2.wasm');
  assert.match(await sdl(), /schemaVersion: String!/);
  assert.deepEqual((await server.gql('{ schemaVersion }', {}, token)).body, { data: { schemaVersion: 'v2' } });
  // The socket opened before the swap validates against the new schema too, and its
  // subscription still gets events.
  tab.subscribe('q', '{ schemaVersion }');
  assert.deepEqual(await tab.next(), { id: 'q', type: 'next', payload: { data: { schemaVersion: 'v2' } } });
  assert.deepEqual(await tab.next(), { id: 'q', type: 'complete' });
  await server.data('mutation { createStory(input: {url: "https://example.com", title: "after swap"}) { story { id } } }', {}, token);
  assert.deepEqual(await tab.next(), { id: 's', type: 'next', payload: { data: { channel: { story: { title: 'after swap' } } } } });
  assert.deepEqual(await tab.next(), { id: 's', type: 'next', payload: { data: { channel: {} } } });

  await install('graphql.wasm');
  assert.doesNotMatch(await sdl(), /schemaVersion/);
  assert.equal((await server.gql('{ schemaVersion }', {}, token)).status, 400);
  const m = await server.metrics();
  assert.equal(m['realtime_component_version{component="graphql"}'], 3);
  assert.equal(m.realtime_open_sockets, 1);
  tab.close();
});
