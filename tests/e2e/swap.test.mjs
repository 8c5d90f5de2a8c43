// Live component swap under load: many users with several tabs and a steady stream of
// numbered mutations; library, user-channel and graphql are swapped mid-stream (by PUT and
// by a file dropped in --components-dir). No socket closes, no request fails, and every tab
// gets every event of its user exactly once, in order. Refused versions change nothing.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { BIN, Server, RawSocket, customSection, settled, sleep } from './harness.mjs';

const BUILT = new URL('../../target/wasm32-wasip2/release/', import.meta.url).pathname;
const ADMIN = 'swap-admin-token';
const USERS = 6;
const TABS = 3;

let server;
let dir;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'realtime-swap-'));
  for (const file of ['library.wasm', 'graphql.wasm', 'user_channel.wasm']) copyFileSync(join(BUILT, file), join(dir, file));
  server = await Server.start({ args: ['--components-dir', dir, '--admin-token', ADMIN] });
});
after(async () => { await server?.stop(); server?.cleanup(); rmSync(dir, { recursive: true, force: true }); });

async function put(name, body, token = ADMIN) {
  const res = await fetch(`${server.url}/admin/components/${name}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body });
  return { status: res.status, text: await res.text() };
}

const version = (m, c) => m[`realtime_component_version{component="${c}"}`];

test('admin routes need the token', async () => {
  assert.equal((await put('library', readFileSync(join(dir, 'library.wasm')), 'wrong')).status, 401);
  assert.equal((await put('nope', 'x')).status, 404);
});

test('realtime-host deploy installs a new version, and reports a refusal', async () => {
  const before = version(await server.metrics(), 'user-channel');
  const out = execFileSync(BIN, ['deploy', 'user-channel', join(BUILT, 'user_channel.wasm'), '--url', server.url, '--admin-token', ADMIN]).toString();
  assert.equal(JSON.parse(out).version, before + 1);
  assert.equal(version(await server.metrics(), 'user-channel'), before + 1);
  assert.throws(
    () => execFileSync(BIN, ['deploy', 'user-channel', join(BUILT, 'library.wasm'), '--url', server.url, '--admin-token', ADMIN], { stdio: 'pipe' }),
    (e) => /422/.test(e.stderr.toString()) && /does not match the `user-channel-component` world/.test(e.stderr.toString()),
  );
});

test('a refused swap (garbage, wrong world) leaves the old version serving', async () => {
  const before = await server.metrics();
  const garbage = await put('library', 'definitely not wasm');
  assert.equal(garbage.status, 422);
  assert.match(garbage.text, /refused: the library component is not a WebAssembly component/);
  const wrongWorld = await put('library', readFileSync(join(dir, 'user_channel.wasm')));
  assert.equal(wrongWorld.status, 422);
  assert.match(wrongWorld.text, /does not match the `library-component` world/);
  // A bad file dropped in the directory is refused too.
  writeFileSync(join(dir, 'graphql.wasm.new'), 'junk');
  copyFileSync(join(dir, 'graphql.wasm.new'), join(dir, 'graphql.wasm'));
  await sleep(2500);
  copyFileSync(join(BUILT, 'graphql.wasm'), join(dir, 'graphql.wasm'));
  const afterRefusals = await server.metrics();
  for (const c of ['library', 'graphql']) assert.equal(version(afterRefusals, c), version(before, c));
  assert.equal(afterRefusals.realtime_swaps_refused_total, before.realtime_swaps_refused_total + 3);
  const { token } = await server.signUp('still-serving@example.com');
  const data = await server.data('mutation { createTag(input: {name: "ok", color: "#000"}) { tag { name } } }', {}, token);
  assert.equal(data.createTag.tag.name, 'ok');
  await sleep(1500); // let the watcher see the restored file (same digest: not a new version)
});

test('after a graphql swap the shared instances are started again for the new version', async () => {
  const { token } = await server.signUp('refill@example.com');
  await server.data('{ me { id } }', {}, token);
  const graphql = (m, name) => m[`${name}{component="graphql"}`];
  const before = await server.metrics();
  assert.equal((await put('graphql', readFileSync(join(dir, 'graphql.wasm')))).status, 200);
  // The next request finds only instances of the old version: they are dropped, it starts one
  // for itself, and the pool is filled again in the background (schemas built) to two ready
  // instances of the new version. Before, only the request's own instance was started.
  await server.data('{ me { id } }', {}, token);
  let after;
  for (let i = 0; i < 50; i++) {
    after = await server.metrics();
    if (graphql(after, 'realtime_live_instances') >= 2) break;
    await sleep(100);
  }
  const started = graphql(after, 'realtime_instantiations_total') - graphql(before, 'realtime_instantiations_total');
  assert.ok(started >= 2, `${started} graphql instances started after the swap`);
  assert.ok(graphql(after, 'realtime_live_instances') >= 2, `live graphql instances: ${graphql(after, 'realtime_live_instances')}`);
});

test('swapping every component under load drops nothing', async () => {
  const users = [];
  for (let u = 0; u < USERS; u++) users.push(await server.signUp(`swap${u}@example.com`));
  const tabs = [];
  for (const [u, user] of users.entries()) {
    for (let t = 0; t < TABS; t++) {
      const tab = RawSocket.open(server, t % 2 ? { token: user.token } : {});
      await tab.init(t % 2 ? undefined : { token: user.token });
      tab.subscribe('s', 'subscription { channel(name: "library") { ... on StoryCreateEvent { story { title } } } }');
      await settled(tab);
      tabs.push({ u, tab });
    }
  }
  const closes = [];
  for (const { tab } of tabs) tab.closed.then((c) => closes.push(c));
  const before = await server.metrics();

  let stop = false;
  const sent = users.map(() => 0);
  const failures = [];
  const writers = users.map(async (user, u) => {
    while (!stop) {
      const seq = sent[u] + 1;
      const res = await server.gql('mutation($t: String!) { createStory(input: {url: "https://example.com", title: $t}) { story { title } } }', { t: `${u}:${seq}` }, user.token);
      if (res.status !== 200 || res.body.errors) failures.push(res);
      sent[u] = seq;
    }
  });

  await sleep(700);
  assert.equal((await put('library', readFileSync(join(BUILT, 'library.wasm')))).status, 200);
  await sleep(700);
  assert.equal((await put('user-channel', readFileSync(join(BUILT, 'user_channel.wasm')))).status, 200);
  await sleep(700);
  assert.equal((await put('graphql', readFileSync(join(BUILT, 'graphql.wasm')))).status, 200);
  await sleep(700);
  // A new file in the components dir: same code, new bytes (a trailing custom section would
  // change the digest; here we rewrite with an appended zero-length name change instead).
  const library = readFileSync(join(BUILT, 'library.wasm'));
  writeFileSync(join(dir, 'library.wasm'), Buffer.concat([library, customSection('swap-test')]));
  const deadline = Date.now() + 15_000;
  while (version(await server.metrics(), 'library') !== version(before, 'library') + 2 && Date.now() < deadline) await sleep(200);
  await sleep(500);
  stop = true;
  await Promise.all(writers);

  assert.deepEqual(failures, []);
  assert.deepEqual(closes, []);
  const afterSwaps = await server.metrics();
  assert.equal(version(afterSwaps, 'library'), version(before, 'library') + 2);
  assert.equal(version(afterSwaps, 'user-channel'), version(before, 'user-channel') + 1);
  assert.equal(version(afterSwaps, 'graphql'), version(before, 'graphql') + 1);

  await sleep(300);
  for (const { u, tab } of tabs) {
    const titles = tab.messages
      .filter((m) => m.type === 'next' && m.payload.data.channel?.story)
      .map((m) => m.payload.data.channel.story.title);
    const expected = Array.from({ length: sent[u] }, (_, i) => `${u}:${i + 1}`);
    assert.deepEqual(titles, expected, `tab of user ${u}`);
    // Every mutation also produced one library:change, as {} in this selection.
    assert.equal(tab.messages.filter((m) => m.type === 'next').length, 2 * sent[u]);
    assert.ok(tab.messages.every((m) => m.type === 'next' && m.id === 's'));
  }
  assert.ok(sent.every((n) => n > 5), `mutations per user: ${sent}`);
  for (const { tab } of tabs) tab.close();
});
