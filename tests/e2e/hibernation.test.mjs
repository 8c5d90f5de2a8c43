// Hibernation: with a short --idle-timeout, a user's actors are evicted while her sockets
// stay open; the next mutation wakes them and still reaches both tabs with their
// subscriptions intact.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Server, RawSocket, settled, sleep } from './harness.mjs';

let server;
before(async () => { server = await Server.start({ args: ['--idle-timeout', '300ms'] }); });
after(async () => { await server?.stop(); server?.cleanup(); });

const live = (m, component) => m[`realtime_live_instances{component="${component}"}`];
const evictions = (m, component) => m[`realtime_evictions_total{component="${component}"}`];

test('evicted actors keep their sockets and subscriptions, and wake on the next mutation', async () => {
  const { token } = await server.signUp('sleepy@example.com');
  const tab1 = RawSocket.open(server, { token });
  await tab1.init();
  tab1.subscribe('s1', 'subscription { channel(name: "library") { ... on LibraryChangeEvent { totalStories } } }');
  const tab2 = RawSocket.open(server);
  await tab2.init({ token });
  tab2.subscribe('s2', 'subscription { c: channel(name: "library") { __typename } }');
  tab2.subscribe('s3', 'subscription { channel(name: "library") { ... on StoryCreateEvent { story { title } } } }');
  await settled(tab1);
  await settled(tab2);

  await sleep(1200);
  const asleep = await server.metrics();
  assert.equal(live(asleep, 'user-channel'), 0, 'user-channel instances evicted');
  assert.equal(live(asleep, 'library'), 0);
  assert.ok(evictions(asleep, 'user-channel') >= 1);
  assert.equal(asleep.realtime_open_sockets, 2, 'sockets stay open');

  await server.data('mutation { createStory(input: {url: "https://example.com/wake", title: "Wake up"}) { story { id } } }', {}, token);
  assert.deepEqual(await tab1.next(), { id: 's1', type: 'next', payload: { data: { channel: {} } } });
  assert.deepEqual(await tab1.next(), { id: 's1', type: 'next', payload: { data: { channel: { totalStories: 1 } } } });
  const got = [await tab2.next(), await tab2.next(), await tab2.next(), await tab2.next()];
  assert.deepEqual(got, [
    { id: 's2', type: 'next', payload: { data: { c: { __typename: 'StoryCreateEvent' } } } },
    { id: 's3', type: 'next', payload: { data: { channel: { story: { title: 'Wake up' } } } } },
    { id: 's2', type: 'next', payload: { data: { c: { __typename: 'LibraryChangeEvent' } } } },
    { id: 's3', type: 'next', payload: { data: { channel: {} } } },
  ]);
  const awake = await server.metrics();
  assert.ok(awake['realtime_instantiations_total{component="user-channel"}'] > asleep['realtime_instantiations_total{component="user-channel"}']);

  // A client complete after a hibernation still stops exactly that subscription.
  await sleep(800);
  tab2.send({ id: 's2', type: 'complete' });
  await settled(tab2);
  await server.data('mutation { createStory(input: {url: "https://example.com/again", title: "Again"}) { story { id } } }', {}, token);
  assert.deepEqual(await tab2.next(), { id: 's3', type: 'next', payload: { data: { channel: { story: { title: 'Again' } } } } });
  assert.deepEqual(await tab2.next(), { id: 's3', type: 'next', payload: { data: { channel: {} } } });
  assert.deepEqual(await tab2.drain(200), []);
  tab1.close();
  tab2.close();
});
