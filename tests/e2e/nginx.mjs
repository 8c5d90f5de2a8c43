// realtime-host behind Debian's nginx, as docs/deploy.md sets it up: nginx runs
// docs/nginx.conf itself (its addresses, certificate and cache paths replaced by the test's)
// with a certificate made for the test, in front of the real binary. With E2E_NGINX=1,
// `Server.start` gives a suite one of these: the browser goes through nginx over HTTPS
// (HTTP/2), and the suite's own API calls go to the binary directly.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, freePort, sleep } from './harness.mjs';

export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
const DEPLOY_CONF = new URL('../../docs/nginx.conf', import.meta.url).pathname;

/** docs/nginx.conf with the test's ports, certificate and cache directory in place of the examples. */
export function deployConfig({ upstreamPort, httpsPort, httpPort, cert, key, cacheDir }) {
  const replacements = [
    ['server 127.0.0.1:8787;', `server 127.0.0.1:${upstreamPort};`],
    ['/var/cache/nginx/library-realtime', cacheDir],
    ['listen 80;', `listen 127.0.0.1:${httpPort};`],
    ['listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`],
    ['/etc/letsencrypt/live/library.example.com/fullchain.pem', cert],
    ['/etc/letsencrypt/live/library.example.com/privkey.pem', key],
  ];
  let config = readFileSync(DEPLOY_CONF, 'utf8');
  for (const [example, replacement] of replacements) {
    if (!config.includes(example)) throw new Error(`docs/nginx.conf no longer has "${example}"`);
    config = config.replaceAll(example, replacement);
  }
  return config;
}

/** A running nginx with docs/nginx.conf in front of `upstreamPort`. */
export class Nginx {
  static async start(upstreamPort) {
    const nginx = new Nginx(upstreamPort);
    await nginx.launch();
    return nginx;
  }

  constructor(upstreamPort) {
    this.upstreamPort = upstreamPort;
    this.dir = mkdtempSync(join(tmpdir(), 'realtime-nginx-'));
    this.logs = '';
  }

  get url() { return `https://127.0.0.1:${this.port}`; }

  async launch() {
    const { dir } = this;
    [this.port, this.httpPort] = await Promise.all([freePort(), freePort()]);
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    for (const sub of ['cache', 'temp']) mkdirSync(join(dir, sub));
    const server = deployConfig({ upstreamPort: this.upstreamPort, httpsPort: this.port, httpPort: this.httpPort, cert, key, cacheDir: join(dir, 'cache') });
    const temp = join(dir, 'temp');
    writeFileSync(join(dir, 'nginx.conf'), [
      // As root, nginx's workers would run as nobody, who cannot enter the test's directory.
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${temp}/${kind};`),
      server,
      '}',
    ].join('\n'));
    this.proc = spawn(NGINX_BIN, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr.on('data', (d) => { this.logs += d; });
    this.exited = new Promise((resolve) => this.proc.once('exit', resolve));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) break;
      try {
        // Up when it answers on its plain-HTTP port (the redirect to HTTPS).
        const res = await fetch(`http://127.0.0.1:${this.httpPort}/`, { redirect: 'manual' });
        if (res.status === 301) return;
      } catch {}
      await sleep(50);
    }
    throw new Error(`nginx did not start:\n${this.logs}\n${readError(dir)}`);
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGQUIT');
    await this.exited;
  }

  cleanup() { rmSync(this.dir, { recursive: true, force: true }); }
}

function readError(dir) {
  try { return readFileSync(join(dir, 'error.log'), 'utf8'); } catch { return ''; }
}

/**
 * A realtime-host (with `--trusted-proxy 127.0.0.1`) and nginx in front of it, looking like
 * one `Server` to a suite: `url` is nginx's HTTPS address (what the browser opens); the API
 * helpers, `stop`, `launch` and `restart` act on the binary (nginx stays up through a restart).
 */
export class BehindNginx {
  static async start(options = {}) {
    const backend = new Server({ ...options, args: ['--trusted-proxy', '127.0.0.1', ...(options.args ?? [])] });
    await backend.launch();
    const nginx = await Nginx.start(backend.port);
    return new BehindNginx(backend, nginx);
  }

  constructor(backend, nginx) {
    this.backend = backend;
    this.nginx = nginx;
  }

  get url() { return this.nginx.url; }
  get port() { return this.backend.port; }
  get wsUrl() { return this.backend.wsUrl; }
  get dataDir() { return this.backend.dataDir; }
  get logs() { return this.backend.logs; }

  gql(...args) { return this.backend.gql(...args); }
  data(...args) { return this.backend.data(...args); }
  signUp(...args) { return this.backend.signUp(...args); }
  metrics() { return this.backend.metrics(); }
  launch() { return this.backend.launch(); }
  stop(signal) { return this.backend.stop(signal); }
  kill() { return this.backend.kill(); }
  restart() { return this.backend.restart(); }

  cleanup() {
    this.backend.cleanup();
    this.nginx.stop().then(() => this.nginx.cleanup());
  }
}
