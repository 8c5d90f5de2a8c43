// Resumable subscriptions end to end. The chaos test: 50 tabs over 5 users drop their sockets
// at random moments and resume from the last position they got, while every user mutates at
// a steady rate, two components are swapped and the host is restarted; at the end every tab
// holds exactly its user's events, in order, no gap, no duplicate, the same as the log read
// back through the API (a subscription resuming from the user's first position). Then: a
// position older than the retention gets one ChannelResetEvent, and the live events after it.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Server, seqOf, sleep } from './harness.mjs';
import { ResumingTab, assertContiguous, until } from './tabs.mjs';

const BUILT = new URL('../../target/wasm32-wasip2/release/', import.meta.url).pathname;
const ADMIN = 'resume-admin';
const USERS = 5;
const TABS_PER_USER = 10;
const MUTATIONS_PER_USER = 40;

afterEach(() => {
  for (const tab of ResumingTab.all) tab.stop();
  ResumingTab.all.clear();
});

/**
 * POST a mutation, retrying while the server is away (its restart). Each request has a
 * connection of its own, so a failed one never reached the server (a graceful shutdown
 * finishes the requests it has read): retrying cannot apply a mutation twice.
 */
async function mutate(server, token, query, variables) {
  for (;;) {
    let answer;
    try {
      answer = await server.gql(query, variables, token, { connection: 'close' });
    } catch (e) {
      if (!(e instanceof TypeError && e.message === 'fetch failed')) throw e;
    }
    if (answer?.status === 200 && !answer.body.errors) return answer.body.data;
    if (answer && answer.status !== 503) throw new Error(`mutation failed (${answer.status}): ${JSON.stringify(answer.body)}`);
    await sleep(50);
  }
}

async function swap(server, name, file) {
  const res = await fetch(`${server.url}/admin/components/${name}`, {
    method: 'PUT', headers: { authorization: `Bearer ${ADMIN}` }, body: readFileSync(`${BUILT}${file}`),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Each user's mutations, one after another at a steady pace: create, then delete every third. */
async function mutateSteadily(server, token, user, pause, progress) {
  const created = [];
  for (let i = 0; i < MUTATIONS_PER_USER; i++) {
    if (i % 3 === 2) {
      const id = created.shift();
      await mutate(server, token, 'mutation($id: ID!) { deleteStory(input: {id: $id}) { success } }', { id });
    } else {
      const data = await mutate(server, token, 'mutation($t: String!) { createStory(input: {url: "https://example.com", title: $t}) { story { id } } }', { t: `u${user} #${i}` });
      created.push(data.createStory.story.id);
    }
    progress.done += 1;
    await sleep(pause);
  }
}

test('chaos: 50 tabs drop and resume through mutations, swaps and a restart; each holds exactly its log', { timeout: 240_000 }, async () => {
  await Server.with({ args: ['--admin-token', ADMIN] }, async (server) => {
    const users = [];
    for (let u = 0; u < USERS; u++) users.push(await server.signUp(`chaos-${u}@example.com`));
    const tabs = users.map((user) => Array.from({ length: TABS_PER_USER }, () => new ResumingTab(server, user.token)));
    await until(() => tabs.flat().every((tab) => tab.connects > 0), 20_000, 'every tab subscribed');
    await sleep(300); // every subscribe is in before the first event

    let chaos = true;
    const dropper = (async () => {
      while (chaos) {
        tabs.flat()[Math.floor(Math.random() * USERS * TABS_PER_USER)].drop();
        await sleep(15 + Math.random() * 30);
      }
    })();
    const progress = { done: 0 };
    const total = USERS * MUTATIONS_PER_USER;
    const mutations = users.map((user, u) => mutateSteadily(server, user.token, u, 40, progress));
    // The swaps and the restart land in the middle of the mutations, whatever the machine's pace.
    const disruptions = (async () => {
      await until(() => progress.done >= total * 0.25, 60_000, 'a quarter of the mutations');
      await swap(server, 'user-channel', 'user_channel.wasm');
      await until(() => progress.done >= total * 0.4, 60_000, '40% of the mutations');
      await swap(server, 'library', 'library.wasm');
      await until(() => progress.done >= total * 0.55, 60_000, '55% of the mutations');
      await server.restart();
    })();
    // All settled before anything fails, so no restart is still under way when the server stops.
    const settled = await Promise.allSettled([...mutations, disruptions]);
    chaos = false;
    await dropper;
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;

    try {
      await verify(server, users, tabs);
    } finally {
      for (const tab of tabs.flat()) tab.stop();
    }
  });
});

/** Every tab holds exactly its user's log, read back through a resuming subscription. */
async function verify(server, users, tabs) {
  // The log as the API tells it: a subscription resuming from each user's first position.
  for (const [u, user] of users.entries()) {
    const userTabs = tabs[u];
    const first = userTabs.map((tab) => tab.events[0]).filter(Boolean).sort((a, b) => seqOf(a.position) - seqOf(b.position))[0];
    const reader = new ResumingTab(server, user.token, first.position);
    // Every create and delete publishes its event and a library:change; a new user's log
    // starts at 1.
    const expectedHead = MUTATIONS_PER_USER * 2;
    await until(() => reader.last && seqOf(reader.last) === expectedHead, 20_000, `user ${u}: the log read through the API`);
    reader.stop();
    const log = [first, ...reader.events];
    assertContiguous(log, `user ${u}'s log`);
    assert.equal(seqOf(log.at(-1).position), expectedHead);
    assert.ok(log.every((e) => e.data.type !== 'channel:reset'), 'nothing was too old to resume');
    const byPosition = new Map(log.map((e) => [e.position, e.data]));

    await until(() => userTabs.every((tab) => tab.last && seqOf(tab.last) === expectedHead && tab.connects >= 2), 30_000, `user ${u}: every tab caught up`);
    for (const [i, tab] of userTabs.entries()) {
      tab.stop();
      assert.equal(tab.error, undefined);
      assertContiguous(tab.events, `user ${u} tab ${i}`);
      for (const event of tab.events) assert.deepEqual(event.data, byPosition.get(event.position), `user ${u} tab ${i} at ${event.position}`);
      assert.ok(tab.connects >= 2, 'every tab resumed at least once (the restart)');
    }
    // Only this user's events: the titles name the user.
    const titles = log.filter((e) => e.data.type === 'story:create').map((e) => e.data.story.title);
    assert.equal(titles.length, Math.ceil((MUTATIONS_PER_USER * 2) / 3));
    assert.ok(titles.every((t) => t.startsWith(`u${u} `)), `user ${u} saw only its own stories`);
  }
  const resumed = tabs.flat().reduce((n, tab) => n + tab.connects - 1, 0);
  console.log(`# ${resumed} resumes over ${USERS * TABS_PER_USER} tabs`);
}

test('a position older than the retention gets one channel:reset, then the live events', { timeout: 60_000 }, async () => {
  await Server.with({ args: ['--event-retention', '5,24h'] }, async (server) => {
    const { token } = await server.signUp('reset@example.com');
    const tab = new ResumingTab(server, token);
    await until(() => tab.connects > 0, 10_000, 'subscribed');
    await sleep(200);
    for (let i = 0; i < 5; i++) await mutate(server, token, 'mutation($t: String!) { createStory(input: {url: "https://example.com", title: $t}) { story { id } } }', { t: `s${i}` });
    await until(() => tab.events.length === 10, 10_000, 'ten events');
    tab.stop();
    assertContiguous(tab.events, 'the live tab');

    // From the fifth event (seq 5; the log keeps seq 6 to 10): exactly 6 to 10, no reset.
    const exact = new ResumingTab(server, token, tab.events[4].position);
    await until(() => exact.events.length === 5, 10_000, 'the replay');
    await sleep(300);
    exact.stop();
    assert.deepEqual(exact.events, tab.events.slice(5));

    // From the first event (seq 1): one reset, at the head.
    const late = new ResumingTab(server, token, tab.events[0].position);
    await until(() => late.events.length === 1, 10_000, 'the reset');
    await sleep(300);
    assert.deepEqual(late.events, [{
      position: tab.events[9].position,
      data: { __typename: 'ChannelResetEvent', type: 'channel:reset', reason: 'that position is older than the events kept for resuming' },
    }]);
    // It continues live.
    await mutate(server, token, 'mutation { createTag(input: {name: "after", color: "red"}) { tag { id } } }');
    await until(() => late.events.length === 3, 10_000, 'live after the reset');
    assert.deepEqual(late.events.slice(1).map((e) => seqOf(e.position)), [11, 12]);
    late.stop();

    // Not a position at all, or a position of another log: one reset each.
    for (const after of ['yesterday', `${'0'.repeat(16)}:3`]) {
      const lost = new ResumingTab(server, token, after);
      await until(() => lost.events.length === 1, 10_000, 'the reset');
      lost.stop();
      assert.equal(lost.events[0].data.type, 'channel:reset');
    }
  });
});

test('positions survive the eviction of both actors: a resume after it is exact, and the sequence goes on', { timeout: 60_000 }, async () => {
  await Server.with({ args: ['--idle-timeout', '300ms'] }, async (server) => {
    const { token } = await server.signUp('evicted@example.com');
    const tab = new ResumingTab(server, token);
    await until(() => tab.connects > 0, 10_000, 'subscribed');
    await sleep(200);
    await mutate(server, token, 'mutation { createStory(input: {url: "https://example.com", title: "one"}) { story { id } } }');
    await until(() => tab.events.length === 2, 10_000, 'two events');
    tab.stop();

    // Both of the user's actors are evicted while nobody is connected; events keep coming.
    await sleep(1200);
    const live = (m, c) => m[`realtime_live_instances{component="${c}"}`];
    let metrics = await server.metrics();
    assert.deepEqual([live(metrics, 'library'), live(metrics, 'user-channel')], [0, 0], 'evicted');
    await mutate(server, token, 'mutation { createStory(input: {url: "https://example.com", title: "two"}) { story { id } } }');
    await sleep(1200);
    metrics = await server.metrics();
    assert.deepEqual([live(metrics, 'library'), live(metrics, 'user-channel')], [0, 0], 'evicted again');

    const back = new ResumingTab(server, token, tab.last);
    await until(() => back.events.length === 2, 10_000, 'the missed events');
    assertContiguous([...tab.events, ...back.events], 'across the evictions');
    assert.deepEqual(back.events.map((e) => e.data.type), ['story:create', 'library:change']);
    assert.equal(back.events[0].data.story.title, 'two');
    back.stop();
  });
});
