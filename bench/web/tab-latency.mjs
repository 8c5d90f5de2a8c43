// Tab to tab in a real browser: one user, two tabs (two Chromium contexts) of the Library
// page served by realtime-host. Tab A makes a change through the page (alternately "Add
// story" and an edit of a story's title); the time is from A's form submit to the moment
// tab B's DOM shows the change (a MutationObserver in B), both read from the same clock.
//
//   node bench/web/tab-latency.mjs [--bin target/release/realtime-host] [--changes 50] [--json FILE]
//
// Prints p50 / p95 / p99 / max in ms and, with --json, appends one JSON line of them.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
const root = new URL('../../', import.meta.url).pathname;
const bin = args.bin ?? join(root, 'target/release/realtime-host');
const changes = Number(args.changes ?? 50);

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startServer() {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'realtime-web-bench-'));
  const proc = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, stop: () => new Promise((r) => { proc.once('exit', r); proc.kill('SIGTERM'); }).then(() => rmSync(dataDir, { recursive: true, force: true })) };
}

async function signUp(url) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'mutation { signUp(email: "bench@example.com", password: "correct horse battery") { token } }' }),
  });
  return (await response.json()).data.signUp.token;
}

/** A tab signed in with `token` (the page keeps its session in localStorage), once live. */
async function openTab(browser, url, token) {
  const context = await browser.newContext();
  await context.addInitScript((t) => window.localStorage.setItem('library.session', t), token);
  const page = await context.newPage();
  await page.goto(url);
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 15_000 });
  return page;
}

/** In tab B: the first time each story title appears in the Stories list. */
function watchTitles() {
  window.seen = {};
  const record = () => {
    const now = performance.timeOrigin + performance.now();
    for (const link of document.querySelectorAll('ul[aria-label="Stories"] li a')) {
      window.seen[link.textContent] ??= now;
    }
  };
  new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
}

/** In tab A: the time of every form submit, by the title it sends. */
function watchSubmits() {
  window.submitted = {};
  document.addEventListener('submit', (event) => {
    const title = [...event.target.querySelectorAll('input')].find((i) => i.labels?.[0]?.textContent === 'Title')?.value;
    window.submitted[title] = performance.timeOrigin + performance.now();
  }, true);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const server = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
try {
  const token = await signUp(server.url);
  const a = await openTab(browser, server.url, token);
  const b = await openTab(browser, server.url, token);
  await b.evaluate(watchTitles);
  await a.evaluate(watchSubmits);
  const latencies = [];
  for (let i = 0; i < changes; i++) {
    const title = `change ${i} ${Date.now()}`;
    if (i % 2 === 0) {
      const form = a.getByRole('form', { name: 'Add story' });
      await form.getByLabel('URL').fill(`https://example.com/${i}`);
      await form.getByLabel('Title').fill(title);
      await form.getByRole('button', { name: 'Add story' }).click();
    } else {
      await a.getByRole('list', { name: 'Stories' }).getByRole('listitem').first().getByRole('button', { name: 'Edit' }).click();
      const form = a.getByRole('form', { name: 'Edit story' });
      await form.getByLabel('Title').fill(title);
      await form.getByRole('button', { name: 'Save' }).click();
    }
    await b.waitForFunction((t) => window.seen[t] !== undefined, title, { timeout: 10_000, polling: 5 });
    const [sent, shown] = [await a.evaluate((t) => window.submitted[t], title), await b.evaluate((t) => window.seen[t], title)];
    latencies.push(shown - sent);
  }
  const sorted = [...latencies].sort((x, y) => x - y);
  const result = {
    scenario: 'web-tab-latency',
    changes,
    p50_ms: +percentile(sorted, 50).toFixed(2),
    p95_ms: +percentile(sorted, 95).toFixed(2),
    p99_ms: +percentile(sorted, 99).toFixed(2),
    max_ms: +sorted.at(-1).toFixed(2),
  };
  console.log(`tab to tab, ${changes} changes (add / edit title alternately): p50 ${result.p50_ms} ms, p95 ${result.p95_ms} ms, p99 ${result.p99_ms} ms, max ${result.max_ms} ms`);
  if (args.json) appendFileSync(args.json, `${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
  await server.stop();
}
