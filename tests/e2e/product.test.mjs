// The product end to end: two users, user A with two tabs (each its own selection), user B
// with one. Every mutation of A reaches both of A's tabs, shaped by each tab's selection,
// and nothing reaches B. A restart keeps the data.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Server, RawSocket, settled } from './harness.mjs';

const FULL = `subscription LibraryChannel {
  channel(name: "library") {
    __typename
    ... on StoryCreateEvent { type story { id url title description createdAt } }
    ... on StoryUpdateEvent { type story { id title description } }
    ... on StoryDeleteEvent { type deletedStoryId }
    ... on TagCreateEvent { type tag { id name color createdAt } }
    ... on TagUpdateEvent { type tag { id name color } }
    ... on TagDeleteEvent { type deletedTagId }
    ... on StoryTagEvent { type storyId tagIds }
    ... on StoryUntagEvent { type storyId tagIds }
    ... on LibraryChangeEvent { type totalStories totalTags }
  }
}`;

const ALIASED = `subscription Changes($name: String!) {
  event: channel(name: $name) {
    kind: __typename
    ...Counts
    ... on StoryCreateEvent { s: story { t: title } }
  }
}
fragment Counts on LibraryChangeEvent { stories: totalStories }`;

const TAGS_ONLY = `subscription { channel(name: "library") { ... on LibraryChangeEvent { totalTags } } }`;

let server;
before(async () => { server = await Server.start(); });
after(async () => { await server?.stop(); server?.cleanup(); });

async function expectEvents(socket, id, channels) {
  for (const channel of channels) {
    assert.deepEqual(await socket.next(), { id, type: 'next', payload: { data: channel } });
  }
}

test('mutations reach every tab of their user, in each tab\'s own shape, and no other user', async () => {
  const alice = await server.signUp('alice@example.com', 'alice password', 'Alice');
  const bob = await server.signUp('bob@example.com', 'bob password');
  assert.equal(alice.user.name, 'Alice');

  const tab1 = RawSocket.open(server, { token: alice.token });
  await tab1.init();
  tab1.subscribe('1', FULL);
  await settled(tab1);

  const tab2 = RawSocket.open(server);
  await tab2.init({ token: alice.token });
  tab2.subscribe('a', ALIASED, { name: 'library' }, 'Changes');
  tab2.subscribe('b', TAGS_ONLY);
  await settled(tab2);

  const bobTab = RawSocket.open(server, { token: bob.token });
  await bobTab.init();
  bobTab.subscribe('1', FULL);
  await settled(bobTab);

  const tag = (await server.data(
    'mutation { createTag(input: {name: "rust", color: "#f74c00"}) { tag { id name color } error { __typename } } }',
    {}, alice.token)).createTag;
  assert.equal(tag.error, null);
  const rust = tag.tag;
  const rustCreated = await tab1.next();
  const rustCreatedAt = rustCreated.payload.data.channel.tag.createdAt;
  assert.match(rustCreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(rustCreated, { id: '1', type: 'next', payload: { data: { channel: { __typename: 'TagCreateEvent', type: 'tag:create', tag: { ...rust, createdAt: rustCreatedAt } } } } });
  await expectEvents(tab1, '1', [
    { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: 0, totalTags: 1 } },
  ]);
  assert.deepEqual(await tab2.next(), { id: 'a', type: 'next', payload: { data: { event: { kind: 'TagCreateEvent' } } } });
  assert.deepEqual(await tab2.next(), { id: 'b', type: 'next', payload: { data: { channel: {} } } });
  assert.deepEqual(await tab2.next(), { id: 'a', type: 'next', payload: { data: { event: { kind: 'LibraryChangeEvent', stories: 0 } } } });
  assert.deepEqual(await tab2.next(), { id: 'b', type: 'next', payload: { data: { channel: { totalTags: 1 } } } });

  const created = (await server.data(
    `mutation($input: CreateStoryInput!) { createStory(input: $input) {
       story { id url title description createdAt tags { id } } storyEdge { cursor node { id } } } }`,
    { input: { url: 'https://example.com/a', title: 'A story', description: 'about a', tagIds: [rust.id] } },
    alice.token)).createStory;
  const story = created.story;
  assert.deepEqual(story.tags, [{ id: rust.id }]);
  assert.equal(created.storyEdge.node.id, story.id);
  const { tags: _tags, ...storyPayload } = story;
  await expectEvents(tab1, '1', [
    { channel: { __typename: 'StoryCreateEvent', type: 'story:create', story: storyPayload } },
    { channel: { __typename: 'StoryTagEvent', type: 'story:tag', storyId: story.id, tagIds: [rust.id] } },
    { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: 1, totalTags: 1 } },
  ]);
  assert.deepEqual(await tab2.next(), { id: 'a', type: 'next', payload: { data: { event: { kind: 'StoryCreateEvent', s: { t: 'A story' } } } } });
  assert.deepEqual(await tab2.next(), { id: 'b', type: 'next', payload: { data: { channel: {} } } });
  assert.deepEqual(await tab2.next(), { id: 'a', type: 'next', payload: { data: { event: { kind: 'StoryTagEvent' } } } });
  assert.deepEqual(await tab2.next(), { id: 'b', type: 'next', payload: { data: { channel: {} } } });
  assert.deepEqual(await tab2.next(), { id: 'a', type: 'next', payload: { data: { event: { kind: 'LibraryChangeEvent', stories: 1 } } } });
  assert.deepEqual(await tab2.next(), { id: 'b', type: 'next', payload: { data: { channel: { totalTags: 1 } } } });

  // A title change: story:update only.
  await server.data('mutation($id: ID!) { updateStory(input: {id: $id, title: "New title"}) { story { title } error { code } } }', { id: story.id }, alice.token);
  await expectEvents(tab1, '1', [
    { channel: { __typename: 'StoryUpdateEvent', type: 'story:update', story: { id: story.id, title: 'New title', description: 'about a' } } },
  ]);

  // The same change again publishes nothing.
  await server.data('mutation($id: ID!) { updateStory(input: {id: $id, title: "New title"}) { story { title } } }', { id: story.id }, alice.token);

  const web = (await server.data('mutation { createTag(input: {name: "web", color: "#00f"}) { tag { id name color } } }', {}, alice.token)).createTag.tag;
  const webCreated = await tab1.next();
  assert.deepEqual(webCreated.payload.data.channel, { __typename: 'TagCreateEvent', type: 'tag:create', tag: { ...web, createdAt: webCreated.payload.data.channel.tag.createdAt } });
  await expectEvents(tab1, '1', [
    { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: 1, totalTags: 2 } },
  ]);

  // Replacing the tags: story:tag for exactly the added, story:untag for exactly the removed.
  await server.data('mutation($id: ID!, $tags: [ID!]) { updateStory(input: {id: $id, tagIds: $tags}) { story { tags { name } } } }', { id: story.id, tags: [web.id] }, alice.token);
  await expectEvents(tab1, '1', [
    { channel: { __typename: 'StoryTagEvent', type: 'story:tag', storyId: story.id, tagIds: [web.id] } },
    { channel: { __typename: 'StoryUntagEvent', type: 'story:untag', storyId: story.id, tagIds: [rust.id] } },
  ]);

  const tagged = await server.data('mutation($s: ID!, $t: [ID!]!) { tagStory(storyId: $s, tagIds: $t) { tags { name } } }', { s: story.id, t: [rust.id, web.id] }, alice.token);
  assert.deepEqual(tagged.tagStory.tags.map((t) => t.name).sort(), ['rust', 'web']);
  await expectEvents(tab1, '1', [{ channel: { __typename: 'StoryTagEvent', type: 'story:tag', storyId: story.id, tagIds: [rust.id] } }]);

  await server.data('mutation($s: ID!, $t: [ID!]!) { untagStory(storyId: $s, tagIds: $t) { id } }', { s: story.id, t: [web.id] }, alice.token);
  await expectEvents(tab1, '1', [{ channel: { __typename: 'StoryUntagEvent', type: 'story:untag', storyId: story.id, tagIds: [web.id] } }]);

  const renamed = (await server.data('mutation($id: ID!) { updateTag(input: {id: $id, name: "rustlang"}) { tag { id name color } } }', { id: rust.id }, alice.token)).updateTag.tag;
  await expectEvents(tab1, '1', [{ channel: { __typename: 'TagUpdateEvent', type: 'tag:update', tag: renamed } }]);

  const deleted = await server.data('mutation($id: ID!) { deleteStory(input: {id: $id}) { deletedStoryId success } }', { id: story.id }, alice.token);
  assert.deepEqual(deleted.deleteStory, { deletedStoryId: story.id, success: true });
  await expectEvents(tab1, '1', [
    { channel: { __typename: 'StoryDeleteEvent', type: 'story:delete', deletedStoryId: story.id } },
    { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: 0, totalTags: 2 } },
  ]);

  await server.data('mutation($id: ID!) { deleteTag(input: {id: $id}) { deletedTagId success } }', { id: rust.id }, alice.token);
  await expectEvents(tab1, '1', [
    { channel: { __typename: 'TagDeleteEvent', type: 'tag:delete', deletedTagId: rust.id } },
    { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: 0, totalTags: 1 } },
  ]);

  // Bob's own mutation reaches Bob only.
  await server.data('mutation { createTag(input: {name: "bob", color: "#0f0"}) { tag { id } } }', {}, bob.token);
  const bobEvents = [await bobTab.next(), await bobTab.next()];
  assert.deepEqual(bobEvents.map((m) => m.payload.data.channel.type), ['tag:create', 'library:change']);

  // Nothing else arrived anywhere: tab 2 got its remaining events and no more; Bob saw only his.
  const rest2 = await tab2.drain(300);
  // story:update, tag:create, library:change, story:tag, story:untag, story:tag, story:untag,
  // tag:update, story:delete, library:change, tag:delete, library:change
  assert.equal(rest2.filter((m) => m.id === 'a').length, 12, JSON.stringify(rest2));
  assert.equal(rest2.filter((m) => m.id === 'b').length, 12);
  assert.deepEqual(await tab1.drain(100), []);
  assert.deepEqual(await bobTab.drain(100), []);
  for (const s of [tab1, tab2, bobTab]) s.close();
});

test('typed errors and rules', async () => {
  const { token } = await server.signUp('rules@example.com');
  const first = await server.data('mutation { createTag(input: {name: "Dup", color: "#000"}) { tag { id } } }', {}, token);
  const dup = await server.data('mutation { createTag(input: {name: "dUP", color: "#111"}) { tag { id } error { __typename ... on TagNameExistsError { code message tagName } } } }', {}, token);
  assert.equal(dup.createTag.tag, null);
  assert.equal(dup.createTag.error.__typename, 'TagNameExistsError');
  assert.equal(dup.createTag.error.code, 'TAG_NAME_EXISTS');
  assert.equal(dup.createTag.error.tagName, 'dUP');
  const long = await server.data(`mutation { createTag(input: {name: "${'x'.repeat(51)}", color: "#000"}) { error { __typename ... on InvalidTagNameError { code } } } }`, {}, token);
  assert.deepEqual(long.createTag.error, { __typename: 'InvalidTagNameError', code: 'INVALID_TAG_NAME' });
  const missing = await server.data('mutation { updateStory(input: {id: "nope", title: "x"}) { story { id } error { code storyId } } }', {}, token);
  assert.deepEqual(missing.updateStory, { story: null, error: { code: 'STORY_NOT_FOUND', storyId: 'nope' } });
  const badUrl = await server.gql('mutation { createStory(input: {url: "ftp://x", title: "t"}) { story { id } } }', {}, token);
  assert.equal(badUrl.status, 200);
  assert.match(badUrl.body.errors[0].message, /URL/i);
  const anonymous = await server.gql('{ me { id } }');
  assert.deepEqual(anonymous.body, { data: { me: null } });
  const badLogin = await server.gql('mutation { signIn(email: "rules@example.com", password: "wrong password") { token } }');
  assert.equal(badLogin.body.errors[0].message, 'Invalid credentials');
  assert.equal(badLogin.body.data.signIn, null);
  assert.ok(first.createTag.tag.id);
});

test('pagination: newest first, capped, with cursors', async () => {
  const { token } = await server.signUp('pages@example.com');
  for (let i = 1; i <= 5; i++) {
    await server.data('mutation($u: String!, $t: String!) { createStory(input: {url: $u, title: $t}) { story { id } } }', { u: `https://example.com/${i}`, t: `story ${i}` }, token);
  }
  const q = 'query($first: Int, $after: String) { me { library { stories(first: $first, after: $after) { totalCount edges { cursor node { title } } pageInfo { hasNextPage endCursor } } } } }';
  const page1 = (await server.data(q, { first: 2 }, token)).me.library.stories;
  assert.equal(page1.totalCount, 5);
  assert.deepEqual(page1.edges.map((e) => e.node.title), ['story 5', 'story 4']);
  assert.equal(page1.pageInfo.hasNextPage, true);
  const page2 = (await server.data(q, { first: 2, after: page1.pageInfo.endCursor }, token)).me.library.stories;
  assert.deepEqual(page2.edges.map((e) => e.node.title), ['story 3', 'story 2']);
  const all = (await server.data(q, { first: 1000 }, token)).me.library.stories;
  assert.equal(all.edges.length, 5);
});

test('a restart keeps every account, session and story', async () => {
  const { token } = await server.signUp('keeper@example.com', 'keeper password');
  await server.data('mutation { createTag(input: {name: "kept-tag", color: "#123"}) { tag { id } } }', {}, token);
  await server.data('mutation { createStory(input: {url: "https://example.com/kept", title: "Kept"}) { story { id } } }', {}, token);
  await server.restart();
  const me = (await server.data('{ me { email library { stories { totalCount edges { node { title } } } tags { name } } } }', {}, token)).me;
  assert.equal(me.email, 'keeper@example.com');
  assert.equal(me.library.stories.totalCount, 1);
  assert.equal(me.library.stories.edges[0].node.title, 'Kept');
  assert.deepEqual(me.library.tags.map((t) => t.name), ['kept-tag']);
  const again = (await server.data('mutation { signIn(email: "keeper@example.com", password: "keeper password") { user { email } } }')).signIn;
  assert.equal(again.user.email, 'keeper@example.com');
});

test('a clean shutdown closes every database: no write-ahead log is left to replay at the next start', async () => {
  const { token } = await server.signUp('tidy@example.com');
  await server.data('mutation { createStory(input: {url: "https://example.com/tidy", title: "Tidy"}) { story { id } } }', {}, token);
  // Every node's files, when the suite runs against a cluster (the owner's hold the library).
  const libraries = (server.nodes ?? [server]).map((node) => join(node.dataDir, 'actors', 'library')).filter((dir) => existsSync(dir));
  const logSizes = () => libraries.flatMap((library) =>
    readdirSync(library).filter((f) => f.endsWith('.sqlite-wal')).map((f) => statSync(join(library, f)).size));
  assert.ok(logSizes().some((size) => size > 0), 'a live actor writes through its log');
  await server.stop();
  // The log files stay (persistent WAL: no file to create at the next wake), emptied.
  assert.ok(logSizes().length > 0);
  assert.deepEqual(logSizes().filter((size) => size > 0), []);
  await server.restart();
  const me = (await server.data('{ me { library { stories { totalCount } } } }', {}, token)).me;
  assert.equal(me.library.stories.totalCount, 1);
});
