// The web app as HTTP serves it (caching, CSP, compression, client routes), the schema it is
// compiled against kept equal to the served one, its JavaScript budget, and the global ids
// it keys its store by: opaque, unique across users, old ones still resolving.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Server } from './harness.mjs';

const WEB = new URL('../../web/', import.meta.url);
const JS_BUDGET_GZIP_BYTES = 150 * 1024;

let server;
before(async () => { server = await Server.start(); });
after(async () => { await server?.stop(); server?.cleanup(); });

function get(path, headers = {}) {
  return fetch(`${server.url}${path}`, { headers });
}

test('web/schema.graphql is the schema the server serves', async () => {
  const served = await (await get('/graphql/schema')).text();
  const checkedIn = readFileSync(new URL('schema.graphql', WEB), 'utf8');
  assert.equal(checkedIn, served, 'refresh it: curl http://127.0.0.1:8787/graphql/schema > web/schema.graphql');
});

test('the page: index.html revalidated, same-origin CSP, gzip, client routes', async () => {
  const page = await get('/', { 'accept-encoding': 'gzip' });
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  assert.equal(page.headers.get('content-encoding'), 'gzip');
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  const csp = page.headers.get('content-security-policy');
  for (const directive of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(directive), `${directive} in ${csp}`);
  }
  const html = await page.text();
  assert.match(html, /<div id="root"><\/div>/);

  const route = await get('/tag/news');
  assert.equal(route.status, 200, 'a client-side route gets the page');
  assert.equal(await route.text(), html);

  const etag = page.headers.get('etag');
  assert.equal((await get('/', { 'if-none-match': etag })).status, 304);
  assert.equal((await get('/assets/no-such-file.js')).status, 404);
  assert.equal((await fetch(`${server.url}/`, { method: 'HEAD' })).status, 200);
  assert.equal((await get('/healthz')).status, 200, 'the API keeps its routes');
  const health = await fetch(`${server.url}/healthz`, { method: 'HEAD' });
  assert.equal(health.headers.get('content-type'), 'text/plain; charset=utf-8', 'HEAD /healthz is the health check, not the page');
});

test('hashed assets are immutable; the JavaScript shipped fits the budget', async () => {
  const html = await (await get('/')).text();
  const scripts = [...html.matchAll(/src="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]);
  const styles = [...html.matchAll(/href="(\/assets\/[^"]+\.css)"/g)].map((m) => m[1]);
  assert.equal(scripts.length, 1, html);
  assert.equal(styles.length, 1, html);
  for (const path of [...scripts, ...styles]) {
    const asset = await get(path, { 'accept-encoding': 'gzip, br' });
    assert.equal(asset.status, 200, path);
    assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(asset.headers.get('content-encoding'), 'gzip');
    assert.equal(asset.headers.get('vary'), 'Accept-Encoding');
  }
  const plain = await get(scripts[0], { 'accept-encoding': 'identity' });
  assert.equal(plain.headers.get('content-encoding'), null);

  // Every script of the build, as the browser receives it (gzip, level 9 as the server does).
  const assets = new URL('dist/assets/', WEB);
  const js = readdirSync(assets).filter((f) => f.endsWith('.js'));
  const gzipped = js.reduce((sum, f) => sum + gzipSync(readFileSync(new URL(f, assets)), { level: 9 }).length, 0);
  console.log(`# JavaScript shipped: ${(gzipped / 1024).toFixed(1)} KB gzipped in ${js.length} file(s)`);
  assert.ok(gzipped <= JS_BUDGET_GZIP_BYTES, `${gzipped} bytes gzipped is over the 150 KB budget`);
});

test('story and tag ids are unique across users; ids of the old form still resolve', async () => {
  const a = await server.signUp('ids-a@example.com');
  const b = await server.signUp('ids-b@example.com');
  const create = 'mutation { createStory(input: {url: "https://example.com", title: "first"}) { story { id } } createTag(input: {name: "t", color: "red"}) { tag { id } } }';
  const ofA = await server.data(create, {}, a.token);
  const ofB = await server.data(create, {}, b.token);
  assert.notEqual(ofA.createStory.story.id, ofB.createStory.story.id);
  assert.notEqual(ofA.createTag.tag.id, ofB.createTag.tag.id);
  for (const id of [ofA.createStory.story.id, ofA.createTag.tag.id]) {
    assert.match(Buffer.from(id, 'base64').toString(), /^(Story|Tag):[0-9a-f]{16}:1$/);
  }

  const node = 'query($id: String!) { node(id: $id) { id ... on Story { title } ... on Tag { name } } }';
  // The id resolves, and stays the same after a restart (the namespace is the library's own).
  assert.deepEqual((await server.data(node, { id: ofA.createStory.story.id }, a.token)).node, { id: ofA.createStory.story.id, title: 'first' });
  await server.restart();
  assert.deepEqual((await server.data(node, { id: ofA.createStory.story.id }, a.token)).node, { id: ofA.createStory.story.id, title: 'first' });
  // Another user's id names nothing for A.
  assert.equal((await server.data(node, { id: ofB.createStory.story.id }, a.token)).node, null);
  // `Story:1` / `Tag:1` as ids were made before: each user's own row, under its current id.
  const oldStory = Buffer.from('Story:1').toString('base64');
  const oldTag = Buffer.from('Tag:1').toString('base64');
  assert.deepEqual((await server.data(node, { id: oldStory }, b.token)).node, { id: ofB.createStory.story.id, title: 'first' });
  assert.deepEqual((await server.data(node, { id: oldTag }, a.token)).node, { id: ofA.createTag.tag.id, name: 't' });
  const story = 'query($id: ID!) { me { library { story(id: $id) { id } } } }';
  assert.deepEqual((await server.data(story, { id: oldStory }, a.token)).me.library.story, { id: ofA.createStory.story.id });
  const untag = 'mutation($s: ID!, $t: [ID!]!) { tagStory(storyId: $s, tagIds: $t) { tags { id } } }';
  assert.deepEqual((await server.data(untag, { s: oldStory, t: [oldTag] }, a.token)).tagStory.tags, [{ id: ofA.createTag.tag.id }]);
});
