// The resume scenario: `--tabs` tabs (over `--users` users) are subscribed and each has the
// position of its user's last event; the server restarts (every actor cold); while the tabs
// are away each user's log grows by `--behind` events; then every tab reconnects at once.
//
//   resume:   each tab subscribes with `after` and is caught up when it holds every missed event;
//   refetch:  what a client without resume does: it subscribes afresh and refetches its page
//             (the first 10 stories and the total over POST /graphql); caught up when both are in.
//
//   node bench/resume/resume.mjs [--bin target/release/realtime-host] [--users 200] [--tabs 1000]
//        [--behind 100] [--mode resume|refetch|both] [--json FILE] [--timeout 300]
//
// Prints, per mode, the time from the first reconnect to the last tab caught up, and the
// p50 / p99 of each tab's own catch-up time.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
const root = new URL('../../', import.meta.url).pathname;
const bin = args.bin ?? join(root, 'target/release/realtime-host');
const USERS = Number(args.users ?? 200);
const TABS = Number(args.tabs ?? 1000);
const BEHIND = Number(args.behind ?? 100);
const MODES = (args.mode ?? 'both') === 'both' ? ['resume', 'refetch'] : [args.mode];

const SUBSCRIPTION = `subscription Library($after: String) { channel(name: "library", after: $after) {
  __typename ... on StoryCreateEvent { story { id title } } ... on LibraryChangeEvent { totalStories } ... on ChannelResetEvent { reason } } }`;
const PAGE = '{ me { library { stories(first: 10) { totalCount edges { node { id title url } } } } } }';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const seqOf = (position) => Number(position.split(':')[1]);

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

class Server {
  constructor(port, dataDir) {
    this.port = port;
    this.dataDir = dataDir;
    this.url = `http://127.0.0.1:${port}`;
  }

  async start() {
    this.proc = spawn(bin, ['serve', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--max-sockets-per-user', '1000'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      // One address (127.0.0.1) signs up every user and opens every tab.
      env: { ...process.env, RUST_LOG: 'warn', REALTIME_MAX_SIGNUPS_PER_ADDRESS: '1000000/1s', REALTIME_MAX_CONNECTIONS_PER_ADDRESS: '1000000', REALTIME_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS: '1000000' },
    });
    this.exited = new Promise((r) => this.proc.once('exit', r));
    for (let i = 0; i < 1200; i++) {
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {}
      await sleep(25);
    }
    throw new Error('server did not start');
  }

  async stop() {
    this.proc.kill('SIGTERM');
    await this.exited;
  }

  async gql(query, variables, token) {
    const res = await fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = await res.json();
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  }
}

/** Open a tab's socket and subscribe (from `after` when given); resolves once acknowledged. */
function subscribe(server, tab, after) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/graphql`, ['graphql-transport-ws']);
    tab.ws = ws;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { token: tab.token } })));
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'connection_ack') {
        ws.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query: SUBSCRIPTION, variables: after ? { after } : {} } }));
        resolve();
      } else if (message.type === 'next') {
        const position = message.payload.extensions?.position;
        if (message.payload.data?.channel?.__typename === 'ChannelResetEvent') tab.resets += 1;
        if (position) {
          tab.position = position;
          tab.received += 1;
          tab.onEvent?.();
        }
      }
    });
    ws.on('error', reject);
  });
}

/** `count` promises of `make()`, at most `concurrency` at a time. */
async function pool(count, concurrency, make) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await make(next++);
  }));
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function run(mode) {
  const server = new Server(await freePort(), mkdtempSync(join(tmpdir(), 'realtime-resume-bench-')));
  await server.start();
  try {
    const users = [];
    await pool(USERS, 8, async (u) => {
      const data = await server.gql(`mutation { signUp(email: "resume-${u}@example.com", password: "correct horse battery") { token } }`);
      users[u] = data.signUp.token;
    });
    const tabs = Array.from({ length: TABS }, (_, i) => ({ token: users[i % USERS], user: i % USERS, received: 0, resets: 0 }));
    await pool(TABS, 50, (i) => subscribe(server, tabs[i]));
    // Every user's first event, so every tab holds a position.
    await pool(USERS, 16, (u) => server.gql('mutation { createStory(input: {url: "https://example.com", title: "first"}) { story { id } } }', {}, users[u]));
    const deadline = Date.now() + 30_000;
    while (tabs.some((t) => !t.position) && Date.now() < deadline) await sleep(20);
    const positions = tabs.map((t) => t.position);

    // The restart, and the log growing while every tab is away.
    for (const tab of tabs) tab.ws.terminate();
    await server.stop();
    await server.start();
    const stories = Math.ceil(BEHIND / 2); // a createStory is story:create + library:change
    await pool(USERS * stories, 32, (k) => server.gql('mutation($t: String!) { createStory(input: {url: "https://example.com", title: $t}) { story { id } } }', { t: `s${k}` }, users[k % USERS]));
    const head = 2 + stories * 2;

    // Every tab at once.
    const started = performance.now();
    const done = [];
    await Promise.all(tabs.map(async (tab, i) => {
      tab.received = 0;
      if (mode === 'resume') {
        const caughtUp = new Promise((resolve) => {
          tab.onEvent = () => seqOf(tab.position) === head && resolve();
        });
        await subscribe(server, tab, positions[i]);
        await caughtUp;
      } else {
        await subscribe(server, tab, null);
        await server.gql(PAGE, {}, tab.token);
      }
      done.push(performance.now() - started);
    }));
    const total = performance.now() - started;
    for (const tab of tabs) tab.ws.terminate();
    done.sort((a, b) => a - b);
    const replayed = tabs.reduce((n, t) => n + t.received, 0);
    const result = {
      scenario: 'resume-after-restart',
      mode,
      users: USERS,
      tabs: TABS,
      behind: BEHIND,
      all_caught_up_ms: Math.round(total),
      tab_p50_ms: Math.round(percentile(done, 50)),
      tab_p99_ms: Math.round(percentile(done, 99)),
      events_replayed: mode === 'resume' ? replayed : 0,
      resets: tabs.reduce((n, t) => n + t.resets, 0),
    };
    console.log(`${mode}: ${TABS} tabs over ${USERS} users, ${BEHIND} events behind, reconnecting at once after a restart: ` +
      `all caught up in ${result.all_caught_up_ms} ms (per tab p50 ${result.tab_p50_ms} ms, p99 ${result.tab_p99_ms} ms)` +
      (mode === 'resume' ? `, ${replayed} events replayed, ${result.resets} resets` : ''));
    if (args.json) appendFileSync(args.json, `${JSON.stringify(result)}\n`);
    if (mode === 'resume' && (result.resets !== 0 || replayed !== TABS * BEHIND)) {
      console.error(`resume bench: expected ${TABS * BEHIND} events replayed and no reset`);
      process.exitCode = 1;
    }
  } finally {
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
  }
}

// A run that does not finish, or a resume that is not exact, fails (the smoke check in
// scripts/test.sh relies on it).
setTimeout(() => {
  console.error('resume bench: timed out');
  process.exit(1);
}, Number(args.timeout ?? 300) * 1000).unref();
for (const mode of MODES) await run(mode);
