// The faults, one at a time on a random schedule. Each fault starts, lasts a while, and heals;
// its record goes into the history (kind, target, start, end).
import { sleep } from '../e2e/harness.mjs';
import { LEASE_TTL_MS } from './cluster.mjs';
import { now } from './workload.mjs';

/** kill -9 of a node, restarted after a while; with `wipe`, its data dir is lost too (its disk). */
async function killNode(cluster, { pick, wait }, wipe) {
  const i = pick(cluster.nodes.length);
  await cluster.killNode(i, { wipe });
  await wait(500, 3000);
  await cluster.startNode(i);
  return `node-${i + 1}`;
}

/** Every kind of fault, with how it is made and healed. `pick(n)` picks an index below n. */
export const FAULTS = {
  'kill-node': (cluster, draw) => killNode(cluster, draw, false),
  'kill-node-wipe': (cluster, draw) => killNode(cluster, draw, true),
  /** A graceful restart (SIGTERM, then start again): hands its users over. */
  'restart-node': async (cluster, { pick, wait }) => {
    const i = pick(cluster.nodes.length);
    await cluster.stopNode(i);
    await wait(0, 1000);
    await cluster.startNode(i);
    return `node-${i + 1}`;
  },
  /** SIGSTOP of a node for longer than its lease (a GC pause, a stalled VM), then SIGCONT. */
  'pause-node': async (cluster, { pick, wait }) => {
    const i = pick(cluster.nodes.length);
    cluster.pauseNode(i);
    await wait(LEASE_TTL_MS * 1.5, LEASE_TTL_MS * 3);
    cluster.resumeNode(i);
    return `node-${i + 1}`;
  },
  /** kill -9 of a NATS server, restarted on its store after a while. */
  'kill-nats': async (cluster, { pick, wait }) => {
    const j = pick(cluster.nats.length);
    await cluster.killNats(j);
    await wait(1000, 4000);
    await cluster.startNats(j);
    return `nats-${j + 1}`;
  },
  /** A node cut off from every NATS server (its connections hang), healed with or without a reset. */
  'partition-node-nats': async (cluster, { pick, wait, coin }) => {
    const i = pick(cluster.nodes.length);
    for (const link of cluster.nodes[i].natsLinks) link.blackhole();
    await wait(LEASE_TTL_MS, LEASE_TTL_MS * 3);
    const cut = coin();
    for (const link of cluster.nodes[i].natsLinks) link.heal({ cut });
    return `node-${i + 1}${cut ? ' (connections reset)' : ''}`;
  },
  /** A node's connections to NATS slowed down. */
  'delay-node-nats': async (cluster, { pick, wait }) => {
    const i = pick(cluster.nodes.length);
    for (const link of cluster.nodes[i].natsLinks) link.delay(150);
    await wait(2000, 5000);
    for (const link of cluster.nodes[i].natsLinks) link.heal();
    return `node-${i + 1}`;
  },
  /** A node cut off from its clients, not from NATS. */
  'partition-node-clients': async (cluster, { pick, wait }) => {
    const i = pick(cluster.nodes.length);
    cluster.nodes[i].clientLink.blackhole();
    await wait(2000, 6000);
    cluster.nodes[i].clientLink.heal({ cut: true });
    return `node-${i + 1}`;
  },
};

/** Make faults until `until()` says stop; each record goes to `history.add`. */
export async function runFaults({ cluster, history, random, kinds, until, gapMs = [500, 2000] }) {
  const pick = (n) => Math.floor(random() * n);
  const wait = (min, max) => sleep(min + random() * (max - min));
  const coin = () => random() < 0.5;
  let count = 0;
  while (!until()) {
    await wait(...gapMs);
    if (until()) break;
    const kind = kinds[pick(kinds.length)];
    const start = now();
    let target;
    let error;
    try {
      target = await FAULTS[kind](cluster, { pick, wait, coin });
    } catch (e) {
      error = String(e.message ?? e).slice(0, 500);
      await cluster.healAll().catch(() => {});
    }
    history.add({ kind: 'fault', type: kind, target, start, end: now(), ...(error ? { error } : {}) });
    count += 1;
  }
  return count;
}
