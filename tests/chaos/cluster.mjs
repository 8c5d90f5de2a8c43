// The cluster under test: a NATS cluster of three (JetStream, `sync_interval: always`, no
// cluster addresses advertised to clients so every connection stays on its proxy) and three
// realtime-host nodes with `--cluster-replicas 3`. Every link that a fault can touch goes
// through a FaultProxy: each node reaches each NATS server through a proxy of its own, and
// clients reach each node through one proxy.
import { mkdirSync, rmSync } from 'node:fs';
import { NatsServer, Server, freePort, sleep } from '../e2e/harness.mjs';
import { FaultProxy } from './proxy.mjs';

export const LEASE_TTL_MS = 2000;

export class ChaosCluster {
  static async start({ nodes = 3, natsServers = 3, args = [] } = {}) {
    const clusterPorts = await Promise.all([...Array(natsServers)].map(() => freePort()));
    const routes = clusterPorts.map((port) => `nats://127.0.0.1:${port}`).join(',');
    const nats = clusterPorts.map((clusterPort, i) => {
      const server = new NatsServer({ name: `nats-${i + 1}`, clusterPort, routes });
      server.clusterArgs.push('--no_advertise=true');
      return server;
    });
    await Promise.all(nats.map((server) => server.launch()));
    const cluster = new ChaosCluster(nats);
    for (let i = 0; i < nodes; i++) {
      const natsLinks = await Promise.all(nats.map((server, j) => FaultProxy.start(server.port, `node-${i + 1}->nats-${j + 1}`)));
      const node = new Server({
        args: ['--cluster', natsLinks.map((link) => link.url).join(','), '--node-id', `node-${i + 1}`,
          '--cluster-replicas', String(natsServers), '--lease-ttl', `${LEASE_TTL_MS}ms`, ...args],
      });
      cluster.nodes.push({ name: `node-${i + 1}`, server: node, natsLinks, clientLink: null, paused: false });
    }
    // The nodes join together: the first to create the streams waits for a JetStream leader.
    await Promise.all(cluster.nodes.map(({ server }) => server.launch()));
    for (const node of cluster.nodes) {
      node.clientLink = await FaultProxy.start(node.server.port, `clients->${node.name}`);
    }
    return cluster;
  }

  constructor(nats) {
    this.nats = nats;
    this.nodes = [];
  }

  /** The URL clients use for node `i` (through its client proxy). */
  clientUrl(i) { return `http://127.0.0.1:${this.nodes[i].clientLink.port}`; }
  clientWsUrl(i) { return `ws://127.0.0.1:${this.nodes[i].clientLink.port}/graphql`; }
  /** The node's own address, past every proxy (for the final reads after healing). */
  directUrl(i) { return this.nodes[i].server.url; }

  /** kill -9 node `i`; with `wipe`, its data dir is deleted too (a lost disk). */
  async killNode(i, { wipe = false } = {}) {
    const { server } = this.nodes[i];
    await server.kill();
    if (wipe) {
      rmSync(server.dataDir, { recursive: true, force: true });
      mkdirSync(server.dataDir);
    }
  }

  /** SIGTERM node `i` and wait for it to exit (a graceful restart's first half). */
  async stopNode(i) { await this.nodes[i].server.stop(); }

  async startNode(i) { await this.nodes[i].server.launch(); }

  pauseNode(i) { this.signal(i, 'SIGSTOP'); this.nodes[i].paused = true; }

  resumeNode(i) { this.signal(i, 'SIGCONT'); this.nodes[i].paused = false; }

  signal(i, signal) {
    const { proc } = this.nodes[i].server;
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, signal);
  }

  async killNats(j) { await this.nats[j].stop('SIGKILL'); }

  async startNats(j) {
    const server = this.nats[j];
    server.logs = '';
    await server.launch();
  }

  /** Every link back to passing, every node running. */
  async healAll() {
    for (const node of this.nodes) {
      for (const link of node.natsLinks) link.heal();
      node.clientLink.heal();
    }
    for (const [j, server] of this.nats.entries()) {
      if (server.proc.exitCode !== null || server.proc.signalCode !== null) await this.startNats(j);
    }
    for (const [i, node] of this.nodes.entries()) {
      if (node.paused) this.resumeNode(i);
      const { proc } = node.server;
      if (proc.exitCode !== null || proc.signalCode !== null) await this.startNode(i);
    }
  }

  get logs() {
    return this.nodes.map((node) => `--- ${node.name}\n${node.server.logs}`).join('\n');
  }

  async stop() {
    for (const [i, node] of this.nodes.entries()) if (node.paused) this.resumeNode(i);
    await Promise.all(this.nodes.map(({ server }) => server.kill()));
    for (const node of this.nodes) {
      node.clientLink?.close();
      for (const link of node.natsLinks) link.close();
      node.server.cleanup();
    }
    await Promise.all(this.nats.map((server) => server.stop()));
    for (const server of this.nats) server.cleanup();
  }
}

export { sleep };
