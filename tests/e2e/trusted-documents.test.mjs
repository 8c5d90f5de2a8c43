// Trusted documents (--trusted-documents, --trusted-documents-only): the web app's documents,
// persisted by relay-compiler into web/dist/persisted-documents.json, run by id over HTTP POST,
// HTTP GET and graphql-ws; with --trusted-documents-only an unknown id and any other document
// are refused over each transport with their codes; a manifest that does not validate stops
// the start, naming the document.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, CACHE_DIR, ONE_ADDRESS_LOAD, RawSocket, Server, WEB_MANIFEST, freePort, settled, withoutPosition } from './harness.mjs';

const manifest = JSON.parse(readFileSync(WEB_MANIFEST, 'utf8'));
/** The id of the web app's operation `name`. */
function idOf(name) {
  const found = Object.entries(manifest).filter(([, text]) => new RegExp(`^(query|mutation|subscription) ${name}\\b`).test(text));
  assert.equal(found.length, 1, `one document named ${name} in the manifest`);
  return found[0][0];
}
const SIGN_UP = idOf('SignInPageSignUpMutation');
const ADD_STORY = idOf('AddStoryFormMutation');
const LIBRARY = idOf('LibraryPageQuery');
const CHANNEL = idOf('LibraryChannelSubscription');
const ARBITRARY = '{ me { id email } }';

let server;
before(async () => {
  server = await Server.start({ standalone: true, args: ['--trusted-documents', WEB_MANIFEST, '--trusted-documents-only'] });
});
after(async () => {
  await server?.stop();
  server?.cleanup();
});

async function post(srv, body, token, accept = 'application/graphql-response+json') {
  const res = await fetch(`${srv.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function get(srv, params, token) {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  const res = await fetch(`${srv.url}/graphql?${query}`, {
    headers: { accept: 'application/graphql-response+json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  return { status: res.status, body: await res.json() };
}

function refusal(code) {
  return (body) => {
    assert.equal(body.data, undefined, 'no data');
    assert.equal(body.errors.length, 1);
    assert.equal(body.errors[0].extensions.code, code);
    assert.equal(typeof body.errors[0].message, 'string');
  };
}

async function signUp(srv, email) {
  const { status, body } = await post(srv, { documentId: SIGN_UP, variables: { email, password: 'correct horse battery', name: null } });
  assert.equal(status, 200, JSON.stringify(body));
  return body.data.signUp.token;
}

test('a known id runs over HTTP POST and GET, in both id forms', async () => {
  const token = await signUp(server, 'trusted-http@example.com');
  const input = { url: 'https://example.com/t', title: 'Trusted', description: null, tagIds: [] };
  const created = await post(server, { documentId: ADD_STORY, variables: { input }, operationName: 'AddStoryFormMutation' }, token);
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const story = created.body.data.createStory.story;
  assert.deepEqual(created.body, {
    data: { createStory: { story: { id: story.id, createdAt: story.createdAt, url: 'https://example.com/t', title: 'Trusted', description: null, tags: [] } } },
  });

  const expected = (me) => ({
    data: {
      me: {
        id: me.id, email: 'trusted-http@example.com', name: null,
        library: {
          id: me.library.id, tags: [],
          stories: {
            totalCount: 1,
            edges: [{ node: { ...story, __typename: 'Story' }, cursor: me.library.stories.edges[0].cursor }],
            pageInfo: { endCursor: me.library.stories.pageInfo.endCursor, hasNextPage: false },
          },
        },
      },
    },
  });
  const read = await get(server, { documentId: LIBRARY }, token);
  assert.equal(read.status, 200, JSON.stringify(read.body));
  assert.deepEqual(read.body, expected(read.body.data.me));
  // The `sha256:` prefix of the GraphQL-over-HTTP convention, and Apollo's APQ extension.
  const prefixed = await post(server, { documentId: `sha256:${LIBRARY}` }, token);
  assert.deepEqual(prefixed.body, read.body);
  const apq = await get(server, { extensions: { persistedQuery: { version: 1, sha256Hash: LIBRARY } } }, token);
  assert.deepEqual(apq.body, read.body);
});

test('a known id runs over graphql-ws, as a subscription and as a mutation', async () => {
  const token = await signUp(server, 'trusted-ws@example.com');
  const socket = RawSocket.open(server);
  await socket.init({ token });
  // As the web app sends it: the graphql-ws client insists on a string `query`, so an empty
  // one goes beside the id.
  socket.send({ id: 'live', type: 'subscribe', payload: { query: '', documentId: CHANNEL, variables: { after: null } } });
  await settled(socket);
  const input = { url: 'https://example.com/ws', title: 'Over the socket', description: null, tagIds: [] };
  socket.send({ id: 'add', type: 'subscribe', payload: { documentId: ADD_STORY, variables: { input } } });
  const messages = [];
  while (messages.length < 4) messages.push(await socket.next());
  const answer = messages.find((m) => m.id === 'add' && m.type === 'next');
  const story = answer.payload.data.createStory.story;
  assert.deepEqual(answer, { id: 'add', type: 'next', payload: { data: { createStory: { story: { id: story.id, createdAt: story.createdAt, url: input.url, title: input.title, description: null, tags: [] } } } } });
  assert.ok(messages.some((m) => m.id === 'add' && m.type === 'complete'));
  const events = messages.filter((m) => m.id === 'live').map(withoutPosition);
  assert.deepEqual(events, [
    { id: 'live', type: 'next', payload: { data: { channel: { __typename: 'StoryCreateEvent', type: 'story:create', story: { id: story.id, url: input.url, title: input.title, description: null, createdAt: story.createdAt } } } } },
    { id: 'live', type: 'next', payload: { data: { channel: { __typename: 'LibraryChangeEvent', type: 'library:change', totalStories: 1, totalTags: 0 } } } },
  ]);
  socket.close();
});

test('an unknown id and an arbitrary document are refused over POST, GET and graphql-ws', async () => {
  const token = await signUp(server, 'trusted-refused@example.com');
  const notFound = refusal('PERSISTED_QUERY_NOT_FOUND');
  const notAllowed = refusal('ARBITRARY_DOCUMENT_NOT_ALLOWED');

  for (const [body, check] of [[{ documentId: 'f'.repeat(64) }, notFound], [{ query: ARBITRARY }, notAllowed]]) {
    const viaPost = await post(server, body, token);
    assert.equal(viaPost.status, 400, 'a request error (application/graphql-response+json)');
    check(viaPost.body);
    const viaJson = await post(server, body, token, 'application/json');
    assert.equal(viaJson.status, 200, 'a request error (application/json)');
    check(viaJson.body);
    const viaGet = await get(server, body, token);
    assert.equal(viaGet.status, 400);
    check(viaGet.body);
  }
  const apq = await post(server, { extensions: { persistedQuery: { version: 1, sha256Hash: 'e'.repeat(64) } } }, token);
  notFound(apq.body);
  // The text of a trusted document is that document: accepted as text too.
  const asText = await post(server, { query: manifest[LIBRARY] }, token);
  assert.equal(asText.status, 200);
  assert.equal(asText.body.data.me.email, 'trusted-refused@example.com');

  const socket = RawSocket.open(server);
  await socket.init({ token });
  socket.send({ id: 'a', type: 'subscribe', payload: { documentId: 'nope' } });
  const unknown = await socket.next();
  assert.equal(unknown.id, 'a');
  assert.equal(unknown.type, 'error');
  assert.deepEqual(unknown.payload.map((e) => e.extensions.code), ['PERSISTED_QUERY_NOT_FOUND']);
  socket.subscribe('b', 'subscription { channel(name: "library") { __typename } }');
  const arbitrary = await socket.next();
  assert.equal(arbitrary.id, 'b');
  assert.equal(arbitrary.type, 'error');
  assert.deepEqual(arbitrary.payload.map((e) => e.extensions.code), ['ARBITRARY_DOCUMENT_NOT_ALLOWED']);
  assert.deepEqual(await socket.drain(), [], 'no complete after an error');
  // The socket stays open and serves trusted documents.
  socket.send({ id: 'c', type: 'subscribe', payload: { documentId: LIBRARY } });
  const answer = await socket.next();
  assert.equal(answer.type, 'next');
  assert.equal(answer.payload.data.me.email, 'trusted-refused@example.com');
  assert.deepEqual(await socket.next(), { id: 'c', type: 'complete' });
  socket.close();
});

test('without --trusted-documents-only an arbitrary document runs, and ids still resolve', async () => {
  await Server.with({ standalone: true, args: ['--trusted-documents', WEB_MANIFEST] }, async (srv) => {
    const token = await signUp(srv, 'trusted-open@example.com');
    const { status, body } = await post(srv, { query: ARBITRARY }, token);
    assert.equal(status, 200);
    assert.equal(body.data.me.email, 'trusted-open@example.com');
    const unknown = await post(srv, { documentId: 'nope' }, token);
    refusal('PERSISTED_QUERY_NOT_FOUND')(unknown.body);
    // The GraphQL limits still hold for arbitrary documents (here --graphql-max-aliases, 64).
    const aliases = Array.from({ length: 65 }, (_, i) => `a${i}: __typename`).join(' ');
    const limited = await post(srv, { query: `{ ${aliases} }` }, token);
    assert.equal(limited.status, 400);
    assert.match(limited.body.errors[0].message, /too many aliases/);
  });
});

/** Start the binary with `args` expecting it to exit at start; its exit code and stderr. */
async function failedStart(dir, args) {
  const port = await freePort();
  const proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--cache-dir', CACHE_DIR, ...args], {
    env: { ...process.env, ...ONE_ADDRESS_LOAD },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let logs = '';
  proc.stderr.on('data', (d) => { logs += d; });
  const code = await new Promise((resolve) => proc.once('exit', resolve));
  return { code, logs };
}

test('a manifest whose document does not validate stops the start, naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'realtime-e2e-trusted-'));
  try {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ good: '{ me { id } }', broken: '{ me { noSuchField } }' }));
    const { code, logs } = await failedStart(dir, ['--trusted-documents', file]);
    assert.notEqual(code, 0, 'exits with an error');
    assert.match(logs, /trusted document broken does not validate/);
    assert.match(logs, /noSuchField/);
    // Over a GraphQL limit counts too, for a manifest given by flag ...
    const limited = await failedStart(dir, ['--trusted-documents', WEB_MANIFEST, '--graphql-max-complexity', '10']);
    assert.notEqual(limited.code, 0);
    assert.match(limited.logs, /trusted document [0-9a-f]{64} does not validate: .*too complex/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // ... but the web app's own manifest, loaded from --web-dir whatever the flags, never stops
  // a server that did not ask for it: its documents that fail are logged.
  await Server.with({ standalone: true, args: ['--graphql-max-complexity', '10'], env: { RUST_LOG: 'warn' } }, async (srv) => {
    assert.match(srv.logs, /the web app's document [0-9a-f]{64} does not validate/);
  });
});
