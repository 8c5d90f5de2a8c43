// Hardening: one hostile or careless client harms no one else. A signed-out session's
// sockets are closed at once; tabs that stop reading are dropped (1008) before they cost the
// host its memory, while a tab that reads gets even a very large message; the bearer scheme
// is case-insensitive on every route.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { Server, RawSocket, PROTOCOL, rawConnection, settled, sleep } from './harness.mjs';

const ADMIN = 'hardening-admin-token';
const STORIES = 'subscription { channel(name: "library") { ... on StoryCreateEvent { story { title } } } }';
const CREATE = 'mutation($input: CreateStoryInput!) { createStory(input: $input) { story { id } } }';
const SIGN_IN = 'mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }';

let server;
before(async () => { server = await Server.start({ args: ['--admin-token', ADMIN] }); });
after(async () => { await server?.stop(); server?.cleanup(); });

function rssBytes() {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

async function story(token, title, description) {
  return server.data(CREATE, { input: { url: 'https://example.com/', title, ...(description ? { description } : {}) } }, token);
}

test('signOut closes that session\'s sockets with 4403; the user\'s other sessions keep working', async () => {
  const { token: first } = await server.signUp('leaver@example.com', 'leaver password');
  const { signIn: { token: second } } = await server.data(SIGN_IN, { e: 'leaver@example.com', p: 'leaver password' });

  const byInit = RawSocket.open(server);
  await byInit.init({ token: first });
  const byHeader = RawSocket.open(server, { token: first });
  await byHeader.init();
  const other = RawSocket.open(server);
  await other.init({ token: second });
  for (const tab of [byInit, byHeader, other]) {
    tab.subscribe('s', STORIES);
    await settled(tab);
  }

  assert.deepEqual(await server.data('mutation { signOut }', {}, first), { signOut: true });
  assert.deepEqual(await byInit.closed, { code: 4403, reason: 'Forbidden' });
  assert.deepEqual(await byHeader.closed, { code: 4403, reason: 'Forbidden' });
  assert.equal((await server.metrics()).realtime_sockets_signed_out_total, 2);

  await story(second, 'after sign-out');
  assert.deepEqual(await other.next(), { id: 's', type: 'next', payload: { data: { channel: { story: { title: 'after sign-out' } } } } });
  assert.deepEqual(await other.next(), { id: 's', type: 'next', payload: { data: { channel: {} } } }, 'library:change, no field selected');
  assert.deepEqual(await other.drain(), []);

  assert.equal((await server.gql('{ me { id } }', {}, first)).status, 401);
  const again = RawSocket.open(server);
  await again.opened;
  again.send({ type: 'connection_init', payload: { token: first } });
  assert.deepEqual(await again.closed, { code: 4403, reason: 'Forbidden' });
  other.close();
});

test('the Authorization scheme is case-insensitive on every route', async () => {
  const { token, user } = await server.signUp('shouty@example.com');
  for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
    const { status, body } = await server.gql('{ me { id } }', {}, null, { authorization: `${scheme} ${token}` });
    assert.equal(status, 200, scheme);
    assert.deepEqual(body, { data: { me: { id: body.data.me.id } } });
    const socket = RawSocket.open(server, { headers: { authorization: `${scheme} ${token}` } });
    await socket.init();
    socket.close();
  }
  assert.equal(typeof user.id, 'string');
  const admin = await fetch(`${server.url}/admin/components/nothing-here`, { method: 'PUT', headers: { authorization: `BEARER ${ADMIN}` }, body: 'x' });
  assert.equal(admin.status, 404, 'past the admin check: the component name is what is refused');
  const wrong = await fetch(`${server.url}/admin/components/nothing-here`, { method: 'PUT', headers: { authorization: 'BEARER wrong' }, body: 'x' });
  assert.equal(wrong.status, 401);
});

test('a tab that reads gets a message larger than any buffer; tabs that stop reading are dropped (1008), and nobody else loses an event', { timeout: 240_000 }, async () => {
  const { token: hoarder } = await server.signUp('hoarder@example.com');
  const { token: bystander } = await server.signUp('bystander@example.com');
  // A description of 9,000 characters (the limit is 10,000), selected ninety times (nine
  // stories, ten descriptions each, within the response-field limit): about 810 KB per tab.
  const description = 'd'.repeat(9_000);
  const nine = `subscription { channel(name: "library") { ... on StoryCreateEvent { ${
    Array.from({ length: 9 }, (_, i) => `a${i}: story { title ...D }`).join(' ')
  } } } } fragment D on StoryPayload { ${Array.from({ length: 10 }, (_, j) => `d${j}: description`).join(' ')} }`;

  const reader = RawSocket.open(server, { token: hoarder });
  await reader.init();
  reader.subscribe('big', nine);
  await settled(reader);
  await story(hoarder, 'big one', description);
  const big = await reader.next(20_000);
  assert.equal(big.type, 'next');
  assert.equal(big.payload.data.channel.a8.d9.length, 9_000);
  assert.ok(JSON.stringify(big).length > 800_000, 'one message of about 810 KB, far over a write batch');
  reader.close();

  const paused = [];
  for (let i = 0; i < 20; i++) {
    const tab = RawSocket.open(server, { token: hoarder });
    await tab.init();
    tab.subscribe('big', nine);
    await settled(tab);
    paused.push(tab);
  }
  const watcher = RawSocket.open(server, { token: bystander });
  await watcher.init();
  watcher.subscribe('s', STORIES);
  await settled(watcher);
  for (const tab of paused) tab.ws._socket.pause();

  const rssBefore = rssBytes();
  let peak = rssBefore;
  const events = 60;
  for (let i = 0; i < events; i++) {
    await story(hoarder, `big ${i}`, description);
    await story(bystander, `small ${i}`);
    peak = Math.max(peak, rssBytes());
  }
  // A dropped socket's task ends after at most 2 s of trying to close it.
  for (let i = 0; i < 40; i++) {
    const m = await server.metrics();
    if (m.realtime_sockets_dropped_not_reading_total >= 20 && m.realtime_queued_bytes < 1_000_000) break;
    await sleep(250);
    peak = Math.max(peak, rssBytes());
  }
  assert.ok(peak < 1024 ** 3, `RSS peaked at ${(peak / 2 ** 20).toFixed(0)} MiB`);
  const metrics = await server.metrics();
  assert.ok(metrics.realtime_queued_bytes < 1_000_000, `queued bytes ${metrics.realtime_queued_bytes}`);

  assert.equal(metrics.realtime_sockets_dropped_not_reading_total, 20, 'every paused tab, and only those, dropped');
  // A client that reads nothing may never get the close frame: on its side the socket ends
  // with 1006 when the frame could not be written, else with 1008.
  for (const tab of paused) tab.ws._socket.resume();
  for (const tab of paused) {
    const { code } = await tab.closed;
    assert.ok([1006, 1008].includes(code));
  }

  const titles = [];
  for (let i = 0; i < events; i++) {
    titles.push((await watcher.next()).payload.data.channel.story.title);
    assert.deepEqual((await watcher.next()).payload.data.channel, {}, 'library:change, no field selected');
  }
  assert.deepEqual(titles, Array.from({ length: events }, (_, i) => `small ${i}`));
  assert.deepEqual(await watcher.drain(), []);
  watcher.close();
});

test('socket caps hold under concurrent connects; connections are capped and idle ones time out', { timeout: 60_000 }, async () => {
  await Server.with({
    args: ['--max-sockets-per-user', '3', '--max-anonymous-sockets', '4', '--max-connections', '12', '--header-timeout', '1s'],
  }, async (limited) => {
    const { token } = await limited.signUp('crowd@example.com');
    // 10 upgrades at once with the user's header: exactly 3 get through, 7 get 429.
    const tabs = Array.from({ length: 10 }, () => RawSocket.open(limited, { token }));
    const outcomes = await Promise.allSettled(tabs.map((t) => t.opened));
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 3);
    assert.deepEqual(outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason.status), Array(7).fill(429));
    for (const tab of tabs) tab.ws.terminate();
    await sleep(200);

    // Anonymous sockets (no header, no connection_init yet): 4 at most, then 503.
    const waiting = Array.from({ length: 6 }, () => RawSocket.open(limited));
    const anonymous = await Promise.allSettled(waiting.map((t) => t.opened));
    assert.equal(anonymous.filter((o) => o.status === 'fulfilled').length, 4);
    assert.deepEqual(anonymous.filter((o) => o.status === 'rejected').map((o) => o.reason.status), [503, 503]);
    // All four authenticate as the same user at once: 3 are acknowledged, the 4th is closed.
    const opened = waiting.filter((_, i) => anonymous[i].status === 'fulfilled');
    for (const tab of opened) tab.send({ type: 'connection_init', payload: { token } });
    const first = await Promise.all(opened.map((t) => Promise.race([t.next(), t.closed])));
    assert.equal(first.filter((m) => m.type === 'connection_ack').length, 3);
    assert.deepEqual(first.filter((m) => m.code), [{ code: 1008, reason: 'Too many sockets for this user' }]);
    for (const tab of waiting) tab.ws.terminate();
    // Past the header timeout, the test's own idle keep-alive connections (fetch) are closed too.
    await sleep(1500);
    assert.equal((await limited.metrics()).realtime_open_sockets, 0);
    await sleep(1200);

    // 12 connections at most; the 13th is refused with 503. Idle ones close after 1 s.
    const idle = await Promise.all(Array.from({ length: 12 }, () => rawConnection(limited.port)));
    const refused = await rawConnection(limited.port);
    assert.match(await refused.response, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    const ended = await Promise.all(idle.map((c) => c.response));
    assert.deepEqual(ended, Array(12).fill(''), 'closed by the header timeout, without an answer');
    assert.equal((await fetch(`${limited.url}/healthz`)).status, 200);
  });
});

/** A raw TCP connection that sends nothing; `response` resolves with what it got when it ends. */
test('GraphQL cost limits: depth, complexity, aliases and library calls per request, over HTTP (POST and GET) and the socket', { timeout: 60_000 }, async () => {
  await Server.with({
    args: ['--graphql-max-depth', '6', '--graphql-max-complexity', '40', '--graphql-max-aliases', '3', '--max-library-calls', '5'],
  }, async (strict) => {
    const { token } = await strict.signUp('costly@example.com');
    const socket = RawSocket.open(strict, { token });
    await socket.init();
    let ids = 0;
    /** GET /graphql?query=...: `{status, body}`, as `gql` answers a POST. */
    const get = async (query) => {
      const res = await fetch(`${strict.url}/graphql?${new URLSearchParams({ query })}`, {
        headers: { accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
      });
      return { status: res.status, body: JSON.parse(await res.text()) };
    };
    /**
     * One document by every way in: POST and GET answer `{status, body}` exactly, and a
     * graphql-ws subscribe gets exactly `messages(id, body)` and then nothing more.
     */
    const everywhere = async (query, status, body, messages) => {
      assert.deepEqual(await strict.gql(query, {}, token), { status, body }, `POST ${query}`);
      assert.deepEqual(await get(query), { status, body }, `GET ${query}`);
      const id = `op${ids++}`;
      socket.subscribe(id, query);
      const expected = messages(id, body);
      const got = [];
      for (const _ of expected) got.push(await socket.next());
      got.push(...await socket.drain(100));
      assert.deepEqual(got, expected, `graphql-ws ${query}`);
    };
    // A document over a limit is a request error: 400 (GraphQL over HTTP), no data; over
    // graphql-ws, an `error` message with the same errors. Both for a query and for a
    // subscription's document (POST and GET refuse it for its cost before its kind).
    const refused = (query, message) => everywhere(query, 400, { errors: [{ message }] }, (id, body) => [{ id, type: 'error', payload: body.errors }]);
    // An operation that runs: its result, over graphql-ws a `next` and `complete`.
    const answered = (query, body) => everywhere(query, 200, body, (id) => [{ id, type: 'next', payload: body }, { id, type: 'complete' }]);

    // Within every limit: fine.
    await answered('{ me { library { stories(first: 1) { totalCount } } } }', { data: { me: { library: { stories: { totalCount: 0 } } } } });

    const deep = 'Query is nested too deep.';
    await refused('{ me { library { stories(first: 1) { edges { node { tags { id } } } } } } }', deep);
    await refused('subscription { channel(name: "library") { ... on StoryCreateEvent { story { tags { stories { edges { node { id } } } } } } } }', deep);
    const complex = 'Query is too complex.';
    await refused(`{ me { ${'id email name '.repeat(15)} library { tags { id name color } } } }`, complex);
    await refused(`subscription { channel(name: "library") { ... on StoryCreateEvent { story { ${'id title '.repeat(25)} } } } }`, complex);
    const aliases = 'Query has too many aliases (4; at most 3).';
    await refused('{ a: me { id } b: me { id } c: me { id } d: me { id } }', aliases);
    await refused('subscription { channel(name: "library") { ... on StoryCreateEvent { a: story { id } b: story { id } c: story { id } d: story { id } } } }', aliases);

    // Each Tag.stories is one library call: the tags and six tags' stories make seven. The
    // sixth call (the fifth tag's stories) fails, and its non-null field takes `me` with it.
    for (let i = 0; i < 6; i++) {
      await strict.data('mutation($input: CreateTagInput!) { createTag(input: $input) { tag { id } } }', { input: { name: `t${i}`, color: '#112233' } }, token);
    }
    // A field error: the request itself was fine (200).
    await answered('{ me { library { tags { stories(first: 1) { totalCount } } } } }', {
      data: { me: null },
      errors: [{
        message: "This request made more than 5 library calls (the server's limit)",
        locations: [{ line: 1, column: 25 }],
        path: ['me', 'library', 'tags', 4, 'stories'],
      }],
    });
    // Five calls are within the limit, by every way in.
    await answered('{ me { library { tags { name } a: tags { name } b: tags { name } c: tags { name } stories(first: 1) { totalCount } } } }', {
      data: { me: { library: { tags: TAG_NAMES, a: TAG_NAMES, b: TAG_NAMES, c: TAG_NAMES, stories: { totalCount: 0 } } } },
    });
    socket.close();
  });
});

const TAG_NAMES = Array.from({ length: 6 }, (_, i) => ({ name: `t${i}` }));

/** One sign-in on `target`: how long it took, and its error or token. */
async function signInAttempt(target, email, password) {
  const started = performance.now();
  const { body } = await target.gql(SIGN_IN, { e: email, p: password });
  return { ms: performance.now() - started, error: body.errors?.[0]?.message, token: body.data?.signIn?.token };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

test('sign-in: an unknown e-mail costs what a wrong password costs, neither cheaper nor dearer', { timeout: 120_000 }, async () => {
  // A server of its own: every failure here counts against this client's address, which may
  // fail 20 times before it is paused (a paused attempt is answered without hashing).
  await Server.with({}, async (timed) => {
    await timed.signUp('timed@example.com', 'the right password');
    const wrong = [];
    const unknown = [];
    // Alternating, so that whatever else this machine does weighs on both alike; the first
    // pair warms up (the first unknown e-mail also makes the stand-in hash) and is not counted.
    // Every fourth wrong password, a right one starts the e-mail's own count again.
    const SAMPLES = 9;
    for (let i = 0; i <= SAMPLES; i++) {
      const w = await signInAttempt(timed, 'timed@example.com', `wrong ${i}`);
      const u = await signInAttempt(timed, `nobody${i}@example.com`, 'whatever pw');
      assert.deepEqual([w.error, u.error], ['Invalid credentials', 'Invalid credentials'], `attempt ${i}`);
      if (i > 0) {
        wrong.push(w.ms);
        unknown.push(u.ms);
      }
      if (i % 4 === 3) assert.equal(typeof (await signInAttempt(timed, 'timed@example.com', 'the right password')).token, 'string');
    }
    // Before, an unknown e-mail was answered without hashing: about 50 times faster. Either
    // way round, a difference is what tells an attacker which e-mails have accounts.
    const [w, u] = [median(wrong), median(unknown)];
    const detail = `median of ${SAMPLES}: unknown e-mail ${u.toFixed(1)} ms, wrong password ${w.toFixed(1)} ms `
      + `(unknown ${unknown.map((ms) => ms.toFixed(0)).join(' ')}; wrong ${wrong.map((ms) => ms.toFixed(0)).join(' ')})`;
    if (process.env.E2E_VERBOSE) console.error(detail);
    assert.ok(u / w > 1 / 2 && u / w < 2, detail);
  });
});

test('sign-in: repeated failures are paused, per e-mail and per client address', { timeout: 60_000 }, async () => {
  await server.signUp('guarded@example.com', 'the right password');
  const attempt = (email, password) => signInAttempt(server, email, password);
  for (let i = 0; i < 2; i++) {
    assert.equal((await attempt('guarded@example.com', `wrong ${i}`)).error, 'Invalid credentials');
    assert.equal((await attempt(`nobody${i}@example.com`, 'whatever pw')).error, 'Invalid credentials');
  }

  // Two failures so far for this e-mail; three more are free, then it is paused, even for the
  // right password, and the pause grows.
  for (let i = 0; i < 3; i++) assert.equal((await attempt('guarded@example.com', 'nope nope')).error, 'Invalid credentials');
  assert.equal((await attempt('guarded@example.com', 'nope nope')).error, 'Invalid credentials');
  assert.equal((await attempt('guarded@example.com', 'the right password')).error, 'Too many failed sign-ins; try again in 1 s');
  await sleep(1100);
  assert.equal((await attempt('guarded@example.com', 'nope nope')).error, 'Invalid credentials');
  assert.equal((await attempt('guarded@example.com', 'the right password')).error, 'Too many failed sign-ins; try again in 2 s');
  await sleep(2100);
  const ok = await attempt('guarded@example.com', 'the right password');
  assert.equal(ok.error, undefined);
  assert.equal(typeof ok.token, 'string');
  // The client's address is paused too once it has failed more than 20 times (9 so far),
  // whatever the e-mail.
  for (let i = 0; i < 12; i++) assert.equal((await attempt(`stranger${i}@example.com`, 'whatever pw')).error, 'Invalid credentials');
  assert.equal((await attempt('someone-else@example.com', 'whatever pw')).error, 'Too many failed sign-ins; try again in 1 s');
});

test('sessions expire when unused for --session-ttl; each use moves the expiry', { timeout: 30_000 }, async () => {
  await Server.with({ args: ['--session-ttl', '2s'] }, async (brief) => {
    const { token } = await brief.signUp('brief@example.com');
    for (let i = 0; i < 3; i++) {
      await sleep(1000);
      assert.equal((await brief.gql('{ me { email } }', {}, token)).status, 200, `use ${i}`);
    }
    await sleep(2600);
    assert.equal((await brief.gql('{ me { email } }', {}, token)).status, 401);
    const socket = RawSocket.open(brief);
    await socket.opened;
    socket.send({ type: 'connection_init', payload: { token } });
    assert.deepEqual(await socket.closed, { code: 4403, reason: 'Forbidden' });
  });
});

test('the server pings silent sockets and closes the ones that never answer (1001)', { timeout: 30_000 }, async () => {
  await Server.with({ args: ['--socket-ping-interval', '300ms'] }, async (pinging) => {
    const { token } = await pinging.signUp('sleepy@example.com');
    const answers = RawSocket.open(pinging, { token });
    const silent = new RawSocket(new WebSocket(pinging.wsUrl, [PROTOCOL], { headers: { authorization: `Bearer ${token}` }, autoPong: false }));
    let pings = 0;
    silent.ws.on('ping', () => { pings += 1; });
    for (const tab of [answers, silent]) {
      await tab.init();
      tab.subscribe('s', STORIES);
      await settled(tab);
    }
    const started = Date.now();
    assert.deepEqual(await silent.closed, { code: 1001, reason: 'No answer to ping' });
    assert.ok(pings >= 1, 'it was pinged first');
    assert.ok(Date.now() - started < 3_000, `closed after ${Date.now() - started} ms`);
    // The tab that answers pings stays, and still gets its events.
    await sleep(1000);
    await pinging.data(CREATE, { input: { url: 'https://example.com/', title: 'still here' } }, token);
    assert.deepEqual((await answers.next()).payload.data.channel, { story: { title: 'still here' } });
    assert.equal((await pinging.metrics()).realtime_open_sockets, 1);
    answers.close();
  });
});

test('one client flooding requests is told to retry (429) before it can grow the queue everyone waits in', { timeout: 60_000 }, async () => {
  // A small cap, so that the flood exceeds it however fast this machine answers.
  await Server.with({ args: ['--max-requests-in-flight', '4'] }, async (server) => {
    const { token: flood } = await server.signUp('flood@example.com');
    const { token: calm } = await server.signUp('calm@example.com');
    const query = '{ me { library { stories(first: 1) { totalCount } } } }';
    const responses = await Promise.all(Array.from({ length: 400 }, () => fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${flood}` },
      body: JSON.stringify({ query }),
    }).then(async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() }))));
    const statuses = new Set(responses.map((r) => r.status));
    assert.deepEqual([...statuses].sort(), [200, 429]);
    const refused = responses.filter((r) => r.status === 429);
    assert.ok(refused.length > 0 && refused.length < 400, `${refused.length} refused`);
    for (const r of refused) {
      assert.equal(r.retryAfter, '1');
      assert.deepEqual(r.body.errors.map((e) => e.extensions.code), ['TOO_MANY_REQUESTS']);
    }
    // The flood does not refuse anyone else.
    assert.deepEqual(await server.data(query, {}, calm), { me: { library: { stories: { totalCount: 0 } } } });
  });
});
