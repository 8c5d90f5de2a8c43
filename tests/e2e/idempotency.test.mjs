// A client's retry does not apply a mutation twice (issue 23): a mutation sent again with the
// same `clientMutationId` is answered from the first one's result, over HTTP and over a
// graphql-ws socket alike, and its events are published once. With E2E_CLUSTER=3 each attempt
// goes to another node (the first to one node, the retry to the next, the socket to the third),
// as a client's retry would after a lost answer. And in a cluster of its own: the owner killed
// (and its disk lost) after the first attempt, the retry on a survivor is answered from the key,
// which came with the mutation's entry in the user's log.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { CLUSTER_NODES, ClusterServer, Server, RawSocket, settled, sleep } from './harness.mjs';

const LIBRARY = `subscription {
  channel(name: "library") {
    __typename
    ... on StoryCreateEvent { story { id title } }
    ... on StoryDeleteEvent { deletedStoryId }
    ... on LibraryChangeEvent { totalStories }
  }
}`;
const CREATE = `mutation($input: CreateStoryInput!) {
  createStory(input: $input) { clientMutationId story { id title } storyEdge { cursor } }
}`;
const DELETE = `mutation($input: DeleteStoryInput!) {
  deleteStory(input: $input) { clientMutationId deletedStoryId success error { code } }
}`;
const CREATE_TAG = `mutation($input: CreateTagInput!) {
  createTag(input: $input) { clientMutationId tag { id } error { __typename } }
}`;
const TOTAL = '{ me { library { stories { totalCount } } } }';

let server;
before(async () => { server = await Server.start(); });
after(async () => { await server?.stop(); server?.cleanup(); });

/** Three endpoints for three attempts: three nodes of a cluster, or the one server three times. */
function endpoints() {
  return server.nodes ?? [server, server, server];
}

/** Quiet long enough for an event to cross nodes. */
const QUIET_MS = CLUSTER_NODES > 0 ? 1500 : 500;

async function tab(token) {
  const socket = RawSocket.open(endpoints()[2], { token });
  await socket.init();
  socket.subscribe('lib', LIBRARY);
  await settled(socket);
  return socket;
}

/** The one `next` of an operation sent over a graphql-ws socket, after its `complete`. */
async function overSocket(socket, id, query, variables) {
  socket.subscribe(id, query, variables);
  const next = await socket.next(10_000);
  assert.equal(next.type, 'next', JSON.stringify(next));
  assert.deepEqual(await socket.next(), { id, type: 'complete' });
  return next.payload;
}

async function totalStories(token) {
  return (await server.data(TOTAL, {}, token)).me.library.stories.totalCount;
}

test('a createStory sent three times with one clientMutationId creates one story, publishes once and answers alike', async () => {
  const { token } = await server.signUp('retry@example.com');
  const [first, second, third] = endpoints();
  const watcher = await tab(token);
  const key = randomUUID();
  const input = { url: 'https://example.com/once', title: 'once', clientMutationId: key };

  const a = (await first.data(CREATE, { input }, token)).createStory;
  assert.equal(a.clientMutationId, key, 'the payload echoes the key');
  const b = (await second.data(CREATE, { input }, token)).createStory;
  assert.deepEqual(b, a, 'the retry over HTTP gets the first answer');
  const socket = RawSocket.open(third, { token });
  await socket.init();
  const c = await overSocket(socket, 'm', CREATE, { input });
  assert.deepEqual(c, { data: { createStory: a } }, 'the retry over the socket gets the first answer');
  socket.close();

  assert.deepEqual((await watcher.next()).payload.data.channel, { __typename: 'StoryCreateEvent', story: { id: a.story.id, title: 'once' } });
  assert.deepEqual((await watcher.next()).payload.data.channel, { __typename: 'LibraryChangeEvent', totalStories: 1 });
  assert.deepEqual(await watcher.drain(QUIET_MS), [], 'one story:create, one library:change, nothing more');
  assert.equal(await totalStories(token), 1);

  // Another key is another mutation; no key at all is one too.
  const other = (await second.data(CREATE, { input: { ...input, clientMutationId: randomUUID() } }, token)).createStory;
  assert.notEqual(other.story.id, a.story.id);
  const unkeyed = (await third.data(CREATE, { input: { url: input.url, title: input.title } }, token)).createStory;
  assert.equal(unkeyed.clientMutationId, null);
  assert.notEqual(unkeyed.story.id, other.story.id);
  assert.equal(await totalStories(token), 3);
  watcher.close();
});

test('a deleteStory retried with its key answers as the first time, not "not found"', async () => {
  const { token } = await server.signUp('delete-retry@example.com');
  const [first, second, third] = endpoints();
  const story = (await first.data(CREATE, { input: { url: 'https://example.com/d', title: 'd' } }, token)).createStory.story;
  const watcher = await tab(token);
  const input = { id: story.id, clientMutationId: randomUUID() };
  const deleted = (await second.data(DELETE, { input }, token)).deleteStory;
  assert.deepEqual(deleted, { clientMutationId: input.clientMutationId, deletedStoryId: story.id, success: true, error: null });
  assert.deepEqual((await third.data(DELETE, { input }, token)).deleteStory, deleted);
  assert.deepEqual((await watcher.next()).payload.data.channel, { __typename: 'StoryDeleteEvent', deletedStoryId: story.id });
  assert.deepEqual((await watcher.next()).payload.data.channel, { __typename: 'LibraryChangeEvent', totalStories: 0 });
  assert.deepEqual(await watcher.drain(QUIET_MS), []);
  // Without the key the same delete is a new one, and finds nothing.
  const again = (await first.data(DELETE, { input: { id: story.id } }, token)).deleteStory;
  assert.equal(again.error.code, 'STORY_NOT_FOUND');
  watcher.close();
});

test('a key used for another mutation, or not a key at all, is an error and changes nothing', async () => {
  const { token } = await server.signUp('misused-key@example.com');
  const [first, second] = endpoints();
  const key = randomUUID();
  await first.data(CREATE, { input: { url: 'https://example.com/k', title: 'k', clientMutationId: key } }, token);
  const reused = await second.gql(CREATE_TAG, { input: { name: 'k', color: '#123', clientMutationId: key } }, token);
  assert.equal(reused.status, 200);
  assert.match(reused.body.errors[0].message, /clientMutationId .* was used by createStory/);
  for (const bad of ['', 'x'.repeat(129)]) {
    const refused = await first.gql(CREATE_TAG, { input: { name: 'k', color: '#123', clientMutationId: bad } }, token);
    assert.match(refused.body.errors[0].message, /clientMutationId must be 1 to 128 characters/);
  }
  const tags = (await server.data('{ me { library { tags { id } } } }', {}, token)).me.library.tags;
  assert.deepEqual(tags, []);
});

/** POST until the server answers without errors (a client retrying with its key), for `ms`. */
async function untilAnswered(node, query, variables, token, ms) {
  const deadline = Date.now() + ms;
  const failures = [];
  for (;;) {
    const { status, body } = await node.gql(query, variables, token, { connection: 'close' }).catch((e) => ({ status: 0, body: String(e) }));
    if (status === 200 && !body.errors) return body.data;
    failures.push(`${status} ${JSON.stringify(body)}`);
    if (Date.now() > deadline) throw new Error(`no answer in ${ms} ms: ${failures.slice(-3).join('; ')}`);
    await sleep(200);
  }
}

test('after a fail-over the new owner answers a retry from the key the log brought', {
  timeout: 60_000,
  skip: CLUSTER_NODES > 0 ? 'it starts a cluster of its own: run it once, in the pass on one node' : false,
}, async () => {
  const cluster = await ClusterServer.start({ nodes: 3 });
  try {
    const [a, ...survivors] = cluster.nodes;
    const { token } = await a.signUp('failover-retry@example.com');
    const input = { url: 'https://example.com/failover', title: 'failover', clientMutationId: randomUUID() };
    const first = (await a.data(CREATE, { input }, token)).createStory;
    assert.equal((await a.metrics()).realtime_cluster_owned_users, 1, 'A owns the user');
    await a.kill();
    rmSync(a.dataDir, { recursive: true, force: true });
    const retried = (await untilAnswered(survivors[0], CREATE, { input }, token, 15_000)).createStory;
    assert.deepEqual(retried, first, 'the new owner answers from the key');
    const total = await untilAnswered(survivors[1], TOTAL, {}, token, 5_000);
    assert.equal(total.me.library.stories.totalCount, 1, 'one story');
  } finally {
    await cluster.stop('SIGKILL');
    cluster.cleanup();
  }
});
