// Failover and catch-up of a cluster (issue 13), on this machine with a real nats-server:
//
// 1. Failover: three nodes; the node that owns a user is killed (SIGKILL) KILLS times; each
//    time, the time from the kill to the first mutation a surviving node acknowledges for that
//    user (mutations sent back to back from the kill on). The killed node is started again
//    (every other time with its data dir deleted) before the next kill.
// 2. Catch-up: a user with HISTORY committed mutations; its owner is killed and its data dir
//    deleted; another node takes the user over: the catch-up time (the new owner's
//    `realtime_cluster_catch_up_seconds`), the entries it replayed, and the time from the kill
//    to the first answer; once without snapshots (`--snapshot-every 0`), once with them.
//
// 3. A crowd failing over: CROWD users whose libraries live on one node, each with a tab on
//    another node; that owner is killed (SIGKILL) and every user sends one mutation to a third
//    node (32 in flight, each retried until acknowledged). Per user: the time from the kill to
//    its mutation's acknowledgement, and to its tab getting that event; none may be lost.
//    `--ab-out FILE` appends the crowd's result as one JSON line with `--label` (A/B runs).
//
// Usage: node bench/cluster/failover.mjs [--bin target/release/realtime-host] [--kills 20]
//        [--history 5000] [--crowd 300] [--lease-ttl 2s] [--out bench/results/cluster-failover.json]
//        (0 for --kills, --history or --crowd skips that part)
import { appendFileSync, writeFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    bin: { type: 'string', default: new URL('../../target/release/realtime-host', import.meta.url).pathname },
    kills: { type: 'string', default: '20' },
    history: { type: 'string', default: '5000' },
    crowd: { type: 'string', default: '300' },
    'lease-ttl': { type: 'string', default: '2s' },
    out: { type: 'string' },
    'ab-out': { type: 'string' },
    label: { type: 'string' },
  },
});
process.env.REALTIME_HOST_BIN = opts.bin;
const { ClusterServer, sleep } = await import('../../tests/e2e/harness.mjs');
const { ResumingTab } = await import('../../tests/e2e/tabs.mjs');

const CREATE = 'mutation($title: String!) { createStory(input: {url: "https://example.com/x", title: $title}) { story { id } } }';

async function mutate(node, token, title) {
  try {
    const { status, body } = await node.gql(CREATE, { title }, token, { connection: 'close' });
    return status === 200 && !body.errors;
  } catch {
    return false;
  }
}

async function owner(nodes) {
  for (const node of nodes) {
    if (node.proc.exitCode === null && node.proc.signalCode === null && ((await node.metrics()).realtime_cluster_owned_users ?? 0) > 0) return node;
  }
  return null;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Kill `victim`, then mutate on `survivor` back to back; ms from the kill to the first ack. */
async function killAndServe(victim, survivor, token, label) {
  await victim.kill();
  const killed = performance.now();
  for (let i = 0; ; i++) {
    if (await mutate(survivor, token, `${label} ${i}`)) return performance.now() - killed;
    if (performance.now() - killed > 60_000) throw new Error('no node served the user within 60 s');
  }
}

async function failover(kills) {
  const cluster = await ClusterServer.start({ nodes: 3, leaseTtl: opts['lease-ttl'] });
  const times = [];
  try {
    const { token } = await cluster.nodes[0].signUp('failover@example.com');
    await mutate(cluster.nodes[0], token, 'first');
    for (let k = 0; k < kills; k++) {
      const victim = await owner(cluster.nodes);
      if (!victim) throw new Error('no owner');
      const survivor = cluster.nodes.find((n) => n !== victim);
      const ms = await killAndServe(victim, survivor, token, `kill ${k}`);
      times.push(ms);
      process.stderr.write(`kill ${k + 1}/${kills}: ${ms.toFixed(0)} ms\n`);
      if (k % 2 === 1) rmSync(victim.dataDir, { recursive: true, force: true });
      await victim.launch();
    }
  } finally {
    await cluster.stop('SIGKILL');
    cluster.cleanup();
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { kills, lease_ttl: opts['lease-ttl'], p50_ms: percentile(sorted, 50), p99_ms: percentile(sorted, 99), max_ms: sorted.at(-1), min_ms: sorted[0], times_ms: times.map((t) => Math.round(t)) };
}

async function catchUp(history, snapshotEvery) {
  const cluster = await ClusterServer.start({ nodes: 2, leaseTtl: opts['lease-ttl'], args: ['--snapshot-every', String(snapshotEvery)] });
  try {
    const [a, b] = cluster.nodes;
    const { token } = await a.signUp('history@example.com');
    const started = performance.now();
    let inFlight = [];
    for (let i = 0; i < history; i++) {
      inFlight.push(mutate(a, token, `history ${i}`));
      if (inFlight.length === 16) {
        if ((await Promise.all(inFlight)).includes(false)) throw new Error('a mutation failed while writing the history');
        inFlight = [];
      }
    }
    if ((await Promise.all(inFlight)).includes(false)) throw new Error('a mutation failed while writing the history');
    const wroteMs = performance.now() - started;
    await sleep(1000); // the last snapshot is stored in the background
    const ownerNode = await owner(cluster.nodes);
    const other = ownerNode === a ? b : a;
    rmSync(ownerNode.dataDir, { recursive: true, force: true });
    const firstAnswerMs = await killAndServe(ownerNode, other, token, 'after');
    const m = await other.metrics();
    const count = (await other.data('{ me { library { stories { totalCount } } } }', {}, token)).me.library.stories.totalCount;
    if (count !== history + 1) throw new Error(`the new owner has ${count} stories, not ${history + 1}`);
    return {
      history, snapshot_every: snapshotEvery, wrote_history_ms: Math.round(wroteMs),
      catch_up_ms: Math.round((m.realtime_cluster_catch_up_seconds_sum ?? 0) * 1000),
      entries_replayed: m.realtime_cluster_entries_replayed_total ?? 0,
      snapshots_restored: m.realtime_cluster_snapshots_restored_total ?? 0,
      kill_to_first_answer_ms: Math.round(firstAnswerMs),
    };
  } finally {
    await cluster.stop('SIGKILL');
    cluster.cleanup();
  }
}

/** Run `work` over `items`, `limit` at a time. */
async function inParallel(items, limit, work) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

/** Whether the tab got a StoryCreateEvent titled `title`. */
function got(tab, title) {
  return tab.events.some((e) => e.data.__typename === 'StoryCreateEvent' && e.data.story?.title === title);
}

async function crowd(count) {
  const cluster = await ClusterServer.start({ nodes: 3, leaseTtl: opts['lease-ttl'] });
  const [owner, survivor, watcher] = cluster.nodes;
  try {
    const users = [];
    await inParallel([...Array(count).keys()], 4, async (i) => {
      const { token } = await watcher.signUp(`crowd${i}@example.com`);
      if (!(await mutate(owner, token, `first ${i}`))) throw new Error('a first mutation failed');
      users.push({ i, token });
    });
    if (((await owner.metrics()).realtime_cluster_owned_users ?? 0) !== count) throw new Error('the owner does not own every user');
    for (const user of users) user.tab = new ResumingTab(watcher, user.token);
    const waitFor = async (check, what) => {
      const deadline = performance.now() + 60_000;
      while (!check()) {
        if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
        await sleep(10);
      }
    };
    await waitFor(() => users.every((u) => u.tab.connects > 0), 'every tab connected');
    await sleep(500);
    // One event each before the kill, so the watcher knows where each user's events stand.
    await inParallel(users, 32, async (u) => { if (!(await mutate(owner, u.token, `before ${u.i}`))) throw new Error('a mutation failed'); });
    await waitFor(() => users.every((u) => got(u.tab, `before ${u.i}`)), 'every tab got its event before the kill');

    await owner.kill();
    const killed = performance.now();
    const watching = (async () => {
      while (users.some((u) => u.eventMs === undefined)) {
        for (const u of users) if (u.eventMs === undefined && got(u.tab, `after ${u.i}`)) u.eventMs = performance.now() - killed;
        if (performance.now() - killed > 120_000) throw new Error('tabs did not get their events within 120 s');
        await sleep(5);
      }
    })();
    await inParallel(users, 32, async (u) => {
      while (!(await mutate(survivor, u.token, `after ${u.i}`))) {
        if (performance.now() - killed > 120_000) throw new Error('a user was not served within 120 s');
        await sleep(50);
      }
      u.ackMs = performance.now() - killed;
    });
    await watching;
    for (const u of users) {
      u.tab.stop();
      const titles = u.tab.events.filter((e) => e.data.__typename === 'StoryCreateEvent').map((e) => e.data.story.title);
      if (JSON.stringify(titles) !== JSON.stringify([`before ${u.i}`, `after ${u.i}`])) throw new Error(`user ${u.i}'s tab got ${JSON.stringify(titles)}`);
    }
    const summary = (values) => {
      const sorted = values.sort((a, b) => a - b);
      return { p50_ms: Math.round(percentile(sorted, 50)), p99_ms: Math.round(percentile(sorted, 99)), max_ms: Math.round(sorted.at(-1)) };
    };
    const m = await watcher.metrics();
    return {
      users: count, lease_ttl: opts['lease-ttl'],
      kill_to_ack: summary(users.map((u) => u.ackMs)),
      kill_to_tab_event: summary(users.map((u) => u.eventMs)),
      // The event's way from the new owner to the tab on the watching node (the kill's noise,
      // when each user's lease lapsed and was taken, left out).
      ack_to_tab_event: summary(users.map((u) => Math.max(0, u.eventMs - u.ackMs))),
      tab_events_lost: 0,
      watcher_gap_fills: m.realtime_cluster_event_gaps_total ?? 0,
    };
  } finally {
    for (const tab of ResumingTab.all) tab.stop();
    await cluster.stop('SIGKILL');
    cluster.cleanup();
  }
}

const history = Number(opts.history);
const result = {
  scenario: 'cluster-failover',
  failover: Number(opts.kills) > 0 ? await failover(Number(opts.kills)) : null,
  catch_up: history > 0 ? [await catchUp(history, 0), await catchUp(history, 1000)] : null,
  crowd: Number(opts.crowd) > 0 ? await crowd(Number(opts.crowd)) : null,
};
console.log(JSON.stringify(result));
if (opts.out) writeFileSync(opts.out, `${JSON.stringify(result, null, 2)}\n`);
if (opts['ab-out'] && result.crowd) appendFileSync(opts['ab-out'], `${JSON.stringify({ label: opts.label ?? opts.bin, ...result.crowd })}\n`);
