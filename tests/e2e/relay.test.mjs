// Relay: a relay-runtime Environment whose network subscribes through the unmodified
// graphql-ws client, exactly as the Relay docs wire it. Without the Relay compiler the
// subscription's ConcreteRequest is written by hand, in the shape the compiler emits (reader
// fragment + normalization operation + params). After mutations, the store must hold exactly
// what the events carried: records keyed by `id` with their `__typename`, and the channel
// record with the fields of the events' selections.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import relay from 'relay-runtime';
import { POSITION, Server, sleep } from './harness.mjs';

const { Environment, Network, Observable, RecordSource, Store, requestSubscription } = relay;

let server;
let token;
before(async () => {
  server = await Server.start();
  ({ token } = await server.signUp('relay@example.com'));
});
after(async () => { await server?.stop(); server?.cleanup(); });

// ---- the hand-written ConcreteRequests (what relay-compiler would generate) ----

const scalar = (name, alias = null) => ({ alias, args: null, kind: 'ScalarField', name, storageKey: null });
const linked = (name, concreteType, selections, { alias = null, args = null, storageKey = null } = {}) => ({
  alias, args, concreteType, kind: 'LinkedField', name, plural: false, selections, storageKey,
});
const inline = (type, selections) => ({ kind: 'InlineFragment', selections, type, abstractKey: null });

const STORY = [scalar('id'), scalar('url'), scalar('title'), scalar('description'), scalar('createdAt')];
const TAG = [scalar('id'), scalar('name'), scalar('color'), scalar('createdAt')];
const EVENT = [
  scalar('__typename'),
  inline('StoryCreateEvent', [scalar('type'), linked('story', 'StoryPayload', STORY)]),
  inline('StoryUpdateEvent', [scalar('type'), linked('story', 'StoryPayload', STORY)]),
  inline('StoryDeleteEvent', [scalar('type'), scalar('deletedStoryId')]),
  inline('TagCreateEvent', [scalar('type'), linked('tag', 'TagPayload', TAG)]),
  inline('TagUpdateEvent', [scalar('type'), linked('tag', 'TagPayload', TAG)]),
  inline('TagDeleteEvent', [scalar('type'), scalar('deletedTagId')]),
  inline('StoryTagEvent', [scalar('type'), scalar('storyId'), scalar('tagIds')]),
  inline('StoryUntagEvent', [scalar('type'), scalar('storyId'), scalar('tagIds')]),
  inline('LibraryChangeEvent', [scalar('type'), scalar('totalStories'), scalar('totalTags')]),
];
const LIBRARY_TEXT = `subscription LibrarySubscription {
  channel(name: "library") {
    __typename
    ... on StoryCreateEvent { type story { id url title description createdAt } }
    ... on StoryUpdateEvent { type story { id url title description createdAt } }
    ... on StoryDeleteEvent { type deletedStoryId }
    ... on TagCreateEvent { type tag { id name color createdAt } }
    ... on TagUpdateEvent { type tag { id name color createdAt } }
    ... on TagDeleteEvent { type deletedTagId }
    ... on StoryTagEvent { type storyId tagIds }
    ... on StoryUntagEvent { type storyId tagIds }
    ... on LibraryChangeEvent { type totalStories totalTags }
  }
}`;

function request(name, text, argumentDefinitions, selections) {
  return {
    fragment: { argumentDefinitions, kind: 'Fragment', metadata: null, name, selections, type: 'Subscription', abstractKey: null },
    kind: 'Request',
    operation: { argumentDefinitions, kind: 'Operation', name, selections },
    params: { cacheID: name, id: null, metadata: {}, name, operationKind: 'subscription', text },
  };
}

const LibrarySubscription = request('LibrarySubscription', LIBRARY_TEXT, [], [
  linked('channel', null, EVENT, { args: [{ kind: 'Literal', name: 'name', value: 'library' }], storageKey: 'channel(name:"library")' }),
]);

// Aliases and a variable: the same channel, so Relay stores it in the same record.
const COUNTS_TEXT = `subscription CountsSubscription($name: String!) {
  counts: channel(name: $name) { __typename ... on LibraryChangeEvent { totalStories } }
}`;
const CountsSubscription = request('CountsSubscription', COUNTS_TEXT,
  [{ defaultValue: null, kind: 'LocalArgument', name: 'name' }],
  [linked('channel', null, [scalar('__typename'), inline('LibraryChangeEvent', [scalar('totalStories')])], {
    alias: 'counts', args: [{ kind: 'Variable', name: 'name', variableName: 'name' }],
  })]);

// ---- the environment ----

function environment(t) {
  const wsClient = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, connectionParams: { token }, retryAttempts: 0 });
  t.after(() => wsClient.dispose());
  const wire = []; // every payload the network delivered to Relay, per operation name
  const fetchQuery = async (params, variables) => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: params.text, variables, operationName: params.name }),
    });
    return res.json();
  };
  const subscribe = (params, variables) => Observable.create((sink) => wsClient.subscribe(
    { operationName: params.name, query: params.text, variables },
    {
      next: (payload) => { wire.push({ name: params.name, payload: structuredClone(payload) }); sink.next(payload); },
      error: (err) => sink.error(err instanceof Error ? err : new Error(JSON.stringify(err))),
      complete: () => sink.complete(),
    },
  ));
  const env = new Environment({ network: Network.create(fetchQuery, subscribe), store: new Store(new RecordSource()) });
  return { env, wsClient, wire };
}

/** Everything the client received, as plain JSON (Relay freezes what it hands out). */
const plain = (value) => JSON.parse(JSON.stringify(value));

async function waitFor(predicate, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const mutate = (query, variables) => server.data(query, variables, token);

test('Relay: subscription events land in the store exactly as they were sent', { timeout: 30_000 }, async (t) => {
  const { env, wsClient, wire } = environment(t);
  const library = [];
  const counts = [];
  const errors = [];
  const sub1 = requestSubscription(env, {
    subscription: LibrarySubscription, variables: {},
    onNext: (data) => library.push(plain(data)), onError: (e) => errors.push(e),
  });
  const sub2 = requestSubscription(env, {
    subscription: CountsSubscription, variables: { name: 'library' },
    onNext: (data) => counts.push(plain(data)), onError: (e) => errors.push(e),
  });
  // Both subscribes are on the wire once a later operation on the same socket has answered.
  await new Promise((resolve, reject) => wsClient.subscribe({ query: '{ me { id } }' }, { next() {}, error: reject, complete: resolve }));

  const tag = (await mutate('mutation { createTag(input: {name: "relay", color: "#f26b00"}) { tag { id } } }')).createTag.tag;
  const s1 = (await mutate('mutation($t: [ID!]) { createStory(input: {url: "https://relay.dev", title: "Relay", tagIds: $t}) { story { id } } }', { t: [tag.id] })).createStory.story;
  await mutate('mutation($id: ID!) { updateStory(input: {id: $id, title: "Relay, renamed", description: "GraphQL client"}) { story { id } } }', { id: s1.id });
  await mutate('mutation($id: ID!) { updateTag(input: {id: $id, color: "#000000"}) { tag { id } } }', { id: tag.id });
  const s2 = (await mutate('mutation { createStory(input: {url: "https://example.com/gone", title: "Gone soon"}) { story { id } } }')).createStory.story;
  await mutate('mutation($id: ID!) { deleteStory(input: {id: $id}) { success } }', { id: s2.id });
  await mutate('mutation($s: ID!, $t: [ID!]!) { untagStory(storyId: $s, tagIds: $t) { id } }', { s: s1.id, t: [tag.id] });

  const EXPECTED_TYPES = ['tag:create', 'library:change', 'story:create', 'story:tag', 'library:change', 'story:update',
    'tag:update', 'story:create', 'library:change', 'story:delete', 'library:change', 'story:untag'];
  await waitFor(() => library.length >= EXPECTED_TYPES.length && counts.length >= EXPECTED_TYPES.length, 'every event in Relay');
  await sleep(200);
  assert.deepEqual(errors, []);
  assert.deepEqual(library.map((d) => d.channel.type), EXPECTED_TYPES);

  // What Relay hands the app (read back from the store through the subscription's fragment)
  // is exactly what came over the wire, event by event.
  const wireLibrary = wire.filter((w) => w.name === 'LibrarySubscription').map((w) => w.payload);
  const wireCounts = wire.filter((w) => w.name === 'CountsSubscription').map((w) => w.payload);
  assert.equal(wireLibrary.length, EXPECTED_TYPES.length);
  for (const payload of [...wireLibrary, ...wireCounts]) {
    assert.deepEqual(Object.keys(payload), ['data', 'extensions'], 'no errors in any payload');
    assert.match(payload.extensions.position, POSITION, 'each event with its log position');
  }
  assert.deepEqual(library, wireLibrary.map((p) => p.data));
  assert.deepEqual(counts, wireCounts.map((p) => p.data));
  assert.deepEqual(counts.map((d) => d.counts.__typename), library.map((d) => d.channel.__typename));

  // The events, by type (each carries exactly its selection).
  const byType = (type) => wireLibrary.map((p) => p.data.channel).filter((c) => c.type === type);
  const [tagCreated] = byType('tag:create');
  const [tagUpdated] = byType('tag:update');
  const [s1Created, s2Created] = byType('story:create');
  const [s1Updated] = byType('story:update');
  const lastChange = byType('library:change').at(-1);
  assert.deepEqual(Object.keys(tagCreated).sort(), ['__typename', 'tag', 'type']);
  assert.deepEqual(tagUpdated.tag, { ...tagCreated.tag, color: '#000000' });
  assert.deepEqual(s1Updated.story, { ...s1Created.story, title: 'Relay, renamed', description: 'GraphQL client' });
  assert.equal(s1Created.story.id, s1.id);
  assert.equal(s2Created.story.id, s2.id);
  assert.deepEqual(lastChange, { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: 1, totalTags: 1 });
  assert.deepEqual(counts.at(-1), { counts: { __typename: 'StoryUntagEvent' } });
  assert.deepEqual(counts.filter((d) => 'totalStories' in d.counts).map((d) => d.counts.totalStories), [0, 1, 2, 1]);

  // The store, every record. relay-runtime normalizes each subscription payload under its own
  // root (`client:local:<n>`, handed to the reader as extensions.__relay_subscription_root_id),
  // so there is one root and one channel record per payload received, holding exactly that
  // event's fields, and one record per `id` holding the latest values an event carried.
  const records = plain(env.getStore().getSource().toJSON());
  const KEY = 'channel(name:"library")';
  const roots = Object.keys(records).filter((id) => /^client:local:\d+$/.test(id))
    .sort((a, b) => Number(a.split(':')[2]) - Number(b.split(':')[2]));
  assert.equal(roots.length, wire.length, 'one root per payload');
  const expected = { 'client:root': { __id: 'client:root', __typename: '__Root' } };
  const flatten = (event, rootId) => {
    const channelId = `${rootId}:${KEY}`;
    const channel = { __id: channelId };
    for (const [field, value] of Object.entries(event)) {
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        channel[field] = { __ref: value.id };
        expected[value.id] = { __id: value.id, __typename: field === 'story' ? 'StoryPayload' : 'TagPayload', ...value };
      } else {
        channel[field] = value;
      }
    }
    return channel;
  };
  roots.forEach((rootId, i) => {
    const { name, payload } = wire[i];
    const event = name === 'LibrarySubscription' ? payload.data.channel : payload.data.counts;
    expected[rootId] = { __id: rootId, __typename: '__Root', [KEY]: { __ref: `${rootId}:${KEY}` } };
    expected[`${rootId}:${KEY}`] = flatten(event, rootId);
  });
  assert.deepEqual(records, expected);
  // And the records by id are the latest state the events described.
  assert.deepEqual(records[tag.id], { __id: tag.id, __typename: 'TagPayload', ...tagUpdated.tag });
  assert.deepEqual(records[s1.id], { __id: s1.id, __typename: 'StoryPayload', ...s1Updated.story });
  assert.deepEqual(records[s2.id], { __id: s2.id, __typename: 'StoryPayload', ...s2Created.story });
  assert.equal(Object.keys(records).filter((id) => !id.startsWith('client:')).length, 3);

  sub1.dispose();
  sub2.dispose();
});

test('Relay: a disposed subscription leaves the store alone', { timeout: 30_000 }, async (t) => {
  const { env, wsClient, wire } = environment(t);
  const got = [];
  const sub = requestSubscription(env, { subscription: LibrarySubscription, variables: {}, onNext: (d) => got.push(plain(d)) });
  await new Promise((resolve, reject) => wsClient.subscribe({ query: '{ me { id } }' }, { next() {}, error: reject, complete: resolve }));
  const tag = (await mutate('mutation { createTag(input: {name: "before-dispose", color: "#111"}) { tag { id } } }')).createTag.tag;
  await waitFor(() => got.length >= 2, 'two events');
  // The complete is on the wire once a later operation has answered (started in the same
  // tick, so the lazy client keeps its socket).
  sub.dispose();
  await new Promise((resolve, reject) => wsClient.subscribe({ query: '{ me { id } }' }, { next() {}, error: reject, complete: resolve }));
  const before = plain(env.getStore().getSource().toJSON());
  await mutate('mutation($id: ID!) { updateTag(input: {id: $id, name: "after-dispose"}) { tag { id } } }', { id: tag.id });
  await sleep(300);
  assert.equal(got.length, 2);
  assert.equal(wire.length, 2, 'nothing more over the wire');
  assert.deepEqual(plain(env.getStore().getSource().toJSON()), before);
  assert.equal(before[tag.id].name, 'before-dispose');
});
