// Resumable subscriptions end to end. The chaos test: 50 tabs over 5 users drop their sockets
// at random moments and resume from the last position they got, while every user mutates at
// a steady rate, two components are swapped and the host is restarted; at the end every tab
// holds exactly its user's whole log, from the log's first event to its head, in order, no gap,
// no duplicate: the same as the log read back through the API (a subscription resuming from the
// user's first position) and as the user's mutations made it. Then: a position older than the
// retention gets one ChannelResetEvent, and the live events after it.
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

/**
 * A ResumingTab that also records what each of its subscribes resumed after (`null`: no
 * position) and, by a ping sent right behind each subscribe, when that subscribe is in: the
 * server answers a socket's messages in order, so its pong means the subscription is
 * registered (as `settled` in the harness).
 */
class ChaosTab extends ResumingTab {
  subscribedAfter = [];
  settles = 0;

  connect() {
    super.connect();
    if (this.stopped) return;
    const ws = this.ws;
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'connection_ack') {
        // ResumingTab's own listener, called first, has just sent the subscribe after `last`.
        this.subscribedAfter.push(this.last);
        ws.send(JSON.stringify({ type: 'ping', payload: { settle: true } }));
      } else if (message.type === 'pong') {
        this.settles += 1;
      }
    });
  }
}

/**
 * Each user's mutations, one after another at a steady pace: create, then delete every third.
 * Resolves with the user's log as these mutations make it (each event's data, in order): the
 * event of each mutation, then its library:change.
 */
async function mutateSteadily(server, token, user, pause, progress) {
  const created = [];
  const log = [];
  let stories = 0;
  for (let i = 0; i < MUTATIONS_PER_USER; i++) {
    if (i % 3 === 2) {
      const id = created.shift();
      await mutate(server, token, 'mutation($id: ID!) { deleteStory(input: {id: $id}) { success } }', { id });
      stories -= 1;
      log.push({ __typename: 'StoryDeleteEvent', type: 'story:delete', deletedStoryId: id });
    } else {
      const title = `u${user} #${i}`;
      const data = await mutate(server, token, 'mutation($t: String!) { createStory(input: {url: "https://example.com", title: $t}) { story { id } } }', { t: title });
      const { id } = data.createStory.story;
      created.push(id);
      stories += 1;
      log.push({ __typename: 'StoryCreateEvent', type: 'story:create', story: { id, title } });
    }
    log.push({ __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: stories });
    progress.done += 1;
    await sleep(pause);
  }
  return log;
}

test('chaos: 50 tabs drop and resume through mutations, swaps and a restart; each holds exactly its log', { timeout: 240_000 }, async () => {
  await Server.with({ args: ['--admin-token', ADMIN] }, async (server) => {
    const users = [];
    for (let u = 0; u < USERS; u++) users.push(await server.signUp(`chaos-${u}@example.com`));
    const tabs = users.map((user) => Array.from({ length: TABS_PER_USER }, () => new ChaosTab(server, user.token)));
    // Every first subscribe is in (its pong came back) before the first event: each tab must
    // get its user's whole log, from the first event on.
    await until(() => tabs.flat().every((tab) => tab.settles > 0), 20_000, 'every tab subscribed');

    // Only a tab that has a position to resume from is dropped: one dropped before its first
    // event would subscribe again without a position, live from an unknown point of the log,
    // and the test could not say which events it must hold.
    let chaos = true;
    const dropper = (async () => {
      while (chaos) {
        const resumable = tabs.flat().filter((tab) => tab.last);
        if (resumable.length) resumable[Math.floor(Math.random() * resumable.length)].drop();
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
    const logs = settled.slice(0, USERS).map((result) => result.value);

    try {
      await verify(server, users, tabs, logs);
    } finally {
      for (const tab of tabs.flat()) tab.stop();
    }
  });
});

/**
 * Every tab holds exactly its user's whole log: from the log's first event (a new user's log
 * starts at 1, and every tab's first subscribe was in before it) to its head, the same as the
 * log read back through a resuming subscription and as the user's mutations made it.
 */
async function verify(server, users, tabs, logs) {
  // Every create and delete publishes its event and a library:change.
  const expectedHead = MUTATIONS_PER_USER * 2;
  for (const [u, user] of users.entries()) {
    const userTabs = tabs[u];
    const expected = logs[u];
    assert.equal(expected.length, expectedHead);
    // Only a tab's first subscribe went without a position (before any event); every other one
    // resumed from the last position the tab got, so no tab has a late start to excuse a gap.
    for (const [i, tab] of userTabs.entries()) {
      assert.equal(tab.subscribedAfter[0], null, `user ${u} tab ${i}: its first subscribe`);
      assert.ok(tab.subscribedAfter.slice(1).every(Boolean), `user ${u} tab ${i} subscribed again without a position: ${JSON.stringify(tab.subscribedAfter)}`);
    }

    // The log as the API tells it: the user's first event (seq 1, as a tab got it) and a
    // subscription resuming from its position.
    const first = userTabs[0].events[0];
    assert.ok(first, `user ${u} tab 0 got no event`);
    assert.equal(seqOf(first.position), 1, `user ${u}: the log's first event`);
    const reader = new ResumingTab(server, user.token, first.position);
    await until(() => reader.last && seqOf(reader.last) === expectedHead, 20_000, `user ${u}: the log read through the API`);
    reader.stop();
    assert.equal(reader.error, undefined);
    const log = [first, ...reader.events];
    assertContiguous(log, `user ${u}'s log`);
    assert.equal(seqOf(log.at(-1).position), expectedHead);
    // What the mutations made, event by event: only this user's events (the titles name the
    // user), nothing too old to resume (no channel:reset).
    assert.deepEqual(log.map((e) => e.data), expected, `user ${u}'s log is what its mutations made`);

    await until(() => userTabs.every((tab) => tab.last && seqOf(tab.last) === expectedHead && tab.connects >= 2), 30_000, `user ${u}: every tab caught up`);
    await sleep(200); // nothing more comes
    for (const [i, tab] of userTabs.entries()) {
      tab.stop();
      assert.equal(tab.error, undefined);
      assertContiguous(tab.events, `user ${u} tab ${i}`);
      assert.equal(seqOf(tab.events[0].position), 1, `user ${u} tab ${i} starts at the log's first event`);
      // The whole log, exactly: every position and every event's data.
      assert.deepEqual(tab.events, log, `user ${u} tab ${i} holds exactly the user's log`);
      assert.ok(tab.connects >= 2, 'every tab resumed at least once (the restart)');
    }
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
