#!/usr/bin/env node
// The cluster's history checker, end to end: starts a NATS cluster of three and three
// realtime-host nodes behind fault proxies (cluster.mjs), runs the workload (workload.mjs)
// while faults come one after another (faults.mjs), heals everything, lets every tab catch
// up, reads each user's list from every node, writes the history and checks it (check.mjs).
// Exits 1 on any anomaly.
//
//   node tests/chaos/run.mjs [--duration 60] [--users 3] [--clients 3] [--tabs 2]
//                            [--seed N] [--faults kill-node,pause-node,...] [--history FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { sleep } from '../e2e/harness.mjs';
import { ChaosCluster } from './cluster.mjs';
import { FAULTS, runFaults } from './faults.mjs';
import { check, describe } from './check.mjs';
import { Client, Tab, now } from './workload.mjs';

const PAGE = 'query($after: String) { me { library { stories(first: 100, after: $after) { edges { node { id title description } } pageInfo { hasNextPage endCursor } } } } }';

const { values: options } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    users: { type: 'string', default: '3' },
    clients: { type: 'string', default: '3' },
    tabs: { type: 'string', default: '2' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    faults: { type: 'string', default: Object.keys(FAULTS).join(',') },
    history: { type: 'string', default: 'target/chaos-history.jsonl' },
  },
});
const seed = Number(options.seed);
const random = mulberry32(seed);
const kinds = options.faults.split(',');
for (const kind of kinds) if (!FAULTS[kind]) throw new Error(`no fault "${kind}"; known: ${Object.keys(FAULTS).join(', ')}`);

const entries = [];
const history = { add: (entry) => entries.push(entry) };
const log = (line) => process.stdout.write(`[chaos ${(now() / 1000).toFixed(1)}s] ${line}\n`);

log(`seed ${seed}, ${options.duration} s of faults (${kinds.join(', ')})`);
const cluster = await ChaosCluster.start();
let failed = true;
try {
  const users = [];
  for (let u = 0; u < Number(options.users); u++) {
    const name = `u${u + 1}`;
    const { body } = await gqlRetry(cluster.directUrl(u % 3), 'mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) { token } }', { e: `${name}-${seed}@example.com`, p: 'chaos password' });
    users.push({ name, token: body.data.signUp.token });
  }
  const tabs = users.flatMap((user) => [...Array(Number(options.tabs))].map((_, i) => new Tab({ cluster, user, index: i + 1, random })));
  await sleep(1000);
  const clients = users.flatMap((user) => [...Array(Number(options.clients))].map((_, i) => new Client({ cluster, user, index: i + 1, history, random })));
  const loops = clients.map((client) => client.run());

  const faultsEnd = now() + Number(options.duration) * 1000;
  const faultCount = await runFaults({ cluster, history, random, kinds, until: () => now() > faultsEnd });
  log(`${faultCount} faults made; healing`);
  await cluster.healAll();
  // The workload goes on for a while on a healed cluster, then stops.
  await sleep(5000);
  for (const client of clients) client.stop();
  await Promise.all(loops);
  log('workload stopped; waiting for every tab to reach the head of its log');
  await tabsSettled(tabs, users);
  for (const user of users) {
    for (let i = 0; i < cluster.nodes.length; i++) {
      history.add({ kind: 'final', user: user.name, node: `node-${i + 1}`, stories: await everyStory(cluster.directUrl(i), user.token) });
    }
  }
  for (const tab of tabs) { tab.stop(); history.add(tab.record()); }

  writeFileSync(options.history, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const anomalies = check(entries);
  for (const line of describe(entries, anomalies)) log(line);
  log(`history: ${options.history}`);
  failed = anomalies.length > 0;
} catch (e) {
  log(`the run itself failed: ${e.stack ?? e}`);
  writeFileSync(options.history, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
  writeFileSync(`${options.history}.logs`, cluster.logs);
} finally {
  if (failed) writeFileSync(`${options.history}.logs`, cluster.logs);
  await cluster.stop();
}
process.exit(failed ? 1 : 0);


/** Every tab of a user at the same last position, unchanged for 2 s (at most 60 s). */
async function tabsSettled(tabs) {
  const deadline = now() + 60_000;
  let stableSince = now();
  let previous = '';
  while (now() < deadline) {
    const state = JSON.stringify(tabs.map((tab) => [tab.user.name, tab.last]));
    if (state !== previous) { previous = state; stableSince = now(); }
    const agreed = tabs.every((tab) => tabs.filter((t) => t.user === tab.user).every((t) => t.last === tab.last));
    if (agreed && now() - stableSince > 2000) return;
    await sleep(100);
  }
  log('tabs did not settle within 60 s');
}

/** The user's whole list, page by page (once the workload has stopped). */
async function everyStory(url, token) {
  const stories = [];
  let after = null;
  for (;;) {
    const { body } = await gqlRetry(url, PAGE, { after }, token);
    const { edges, pageInfo } = body.data.me.library.stories;
    stories.push(...edges.map(({ node }) => node));
    if (!pageInfo.hasNextPage) return stories;
    after = pageInfo.endCursor;
  }
}

/** A GraphQL request retried until it succeeds (at most 60 s): for set-up and the final reads. */
async function gqlRetry(url, query, variables, token) {
  const deadline = now() + 60_000;
  let last;
  while (now() < deadline) {
    try {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.json();
      if (res.status === 200 && !body.errors) return { body };
      last = JSON.stringify(body);
    } catch (e) {
      last = String(e);
    }
    await sleep(250);
  }
  throw new Error(`${url}: no answer within 60 s: ${last}`);
}

/** A small seeded random number generator, so a run can be repeated with its seed. */
function mulberry32(a) {
  return () => {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
