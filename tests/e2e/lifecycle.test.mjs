// Actor lifecycle: the cap on live instances evicts the least recently used actor, and an
// evicted actor wakes on its next call with its data intact.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from './harness.mjs';

let server;
before(async () => { server = await Server.start({ args: ['--max-instances', '4'] }); });
after(async () => { await server?.stop(); server?.cleanup(); });

const sum = (m, prefix) => Object.entries(m).filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

test('at most --max-instances live instances; the least recently used is evicted and wakes again', async () => {
  const users = [];
  for (let i = 0; i < 4; i++) users.push(await server.signUp(`lru${i}@example.com`));
  for (const [i, user] of users.entries()) {
    await server.data('mutation($t: String!) { createTag(input: {name: $t, color: "#000"}) { tag { id } } }', { t: `tag${i}` }, user.token);
  }
  await new Promise((r) => setTimeout(r, 200));
  const m = await server.metrics();
  assert.ok(sum(m, 'realtime_live_instances') <= 4, `live: ${sum(m, 'realtime_live_instances')}`);
  assert.ok(sum(m, 'realtime_evictions_total') >= 4, `evictions: ${sum(m, 'realtime_evictions_total')}`);
  // Every user's data is still there (their actors wake on demand).
  for (const [i, user] of users.entries()) {
    const me = await server.data('{ me { library { tags { name } } } }', {}, user.token);
    assert.deepEqual(me.me.library.tags, [{ name: `tag${i}` }]);
  }
  const after = await server.metrics();
  assert.ok(sum(after, 'realtime_live_instances') <= 4);
});
