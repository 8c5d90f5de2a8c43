// A TCP fault proxy: sits on one link (a node's connection to a NATS server, or clients'
// connections to a node) and does to it what a network can: pass, blackhole (nothing moves
// either way, connections stay open and resume on heal, as TCP does after a partition
// heals), delay every chunk, or reset every connection.
import { createServer, connect } from 'node:net';
import { freePort } from '../e2e/harness.mjs';

export class FaultProxy {
  /** A proxy on a free loopback port to `127.0.0.1:targetPort`. */
  static async start(targetPort, name) {
    const proxy = new FaultProxy(targetPort, name);
    proxy.port = await freePort();
    await new Promise((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(proxy.port, '127.0.0.1', resolve);
    });
    return proxy;
  }

  constructor(targetPort, name) {
    this.targetPort = targetPort;
    this.name = name;
    /** 'pass' | 'blackhole' | 'reset'; with `delayMs` > 0 every chunk waits that long. */
    this.mode = 'pass';
    this.delayMs = 0;
    this.links = new Set();
    this.server = createServer((client) => this.accept(client));
  }

  get url() { return `nats://127.0.0.1:${this.port}`; }

  accept(client) {
    if (this.mode === 'reset') { client.destroy(); return; }
    const upstream = connect(this.targetPort, '127.0.0.1');
    const link = { client, upstream };
    this.links.add(link);
    const end = () => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      from.on('data', (chunk) => {
        if (this.delayMs > 0) {
          from.pause();
          setTimeout(() => { to.write(chunk); if (this.mode === 'pass') from.resume(); }, this.delayMs);
        } else {
          to.write(chunk);
        }
      });
      from.on('error', end);
      from.on('close', end);
    }
    if (this.mode === 'blackhole') { client.pause(); upstream.pause(); }
  }

  /** Nothing moves on any link, old or new, until `heal`. */
  blackhole() {
    this.mode = 'blackhole';
    for (const { client, upstream } of this.links) { client.pause(); upstream.pause(); }
  }

  /** Every chunk waits `ms` before it goes on. */
  delay(ms) { this.delayMs = ms; }

  /** Every connection is cut, and new ones are refused, until `heal`. */
  reset() {
    this.mode = 'reset';
    for (const { client, upstream } of this.links) { client.destroy(); upstream.destroy(); }
    this.links.clear();
  }

  /** Back to passing everything; with `cut`, the connections held in a blackhole are reset. */
  heal({ cut = false } = {}) {
    if (cut) this.reset();
    this.mode = 'pass';
    this.delayMs = 0;
    for (const { client, upstream } of this.links) { client.resume(); upstream.resume(); }
  }

  close() {
    this.reset();
    this.server.close();
  }
}
