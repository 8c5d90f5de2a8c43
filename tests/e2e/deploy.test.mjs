// The deployment of docs/deploy.md: Debian's nginx running docs/nginx.conf with TLS and
// HTTP/2 in front of the real binary (`--trusted-proxy 127.0.0.1`). Plain HTTP is sent to
// HTTPS; the page's hashed assets are cached by nginx; a GraphQL request and a graphql-ws
// socket pass through; and the per-address limits see the client's own address, whatever
// X-Forwarded-For it sends. (The web app's scenarios run through nginx too: web.test.mjs
// with E2E_NGINX=1.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readdirSync } from 'node:fs';
import WebSocket from 'ws';
import { PROTOCOL, RawSocket } from './harness.mjs';
import { BehindNginx } from './nginx.mjs';

const SIGN_UP = 'mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) { token } }';
const ASSETS = new URL('../../web/dist/assets/', import.meta.url).pathname;

let site;
before(async () => {
  site = await BehindNginx.start({ standalone: true, args: ['--max-signups-per-address', '1/1h'] });
});
after(async () => {
  await site?.stop();
  site?.cleanup();
});

/**
 * One HTTPS request to nginx from the loopback address `from` (each test client its own
 * address, as clients on the internet have): `{status, headers, body}`.
 */
function request(path, { from = '127.0.0.2', method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(`${site.url}${path}`, { method, headers, localAddress: from, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function graphql(query, variables, options = {}) {
  return request('/graphql', {
    ...options,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify({ query, variables }),
  }).then((res) => ({ ...res, body: JSON.parse(res.body) }));
}

test('plain HTTP is redirected to HTTPS', async () => {
  const res = await fetch(`http://127.0.0.1:${site.nginx.httpPort}/`, { redirect: 'manual' });
  assert.equal(res.status, 301);
  assert.equal(res.headers.get('location'), `https://127.0.0.1:${site.nginx.httpPort}/`.replace(`:${site.nginx.httpPort}`, ''));
});

test('the page\'s hashed assets are cached by nginx; the page itself is not', async () => {
  const [asset] = readdirSync(ASSETS).filter((name) => name.endsWith('.js'));
  const first = await request(`/assets/${asset}`);
  assert.equal(first.status, 200);
  assert.equal(first.headers['x-cache-status'], 'MISS');
  const second = await request(`/assets/${asset}`);
  assert.equal(second.headers['x-cache-status'], 'HIT');
  assert.equal(second.body, first.body);
  const page = await request('/');
  assert.equal(page.status, 200);
  assert.equal(page.headers['x-cache-status'], undefined);
});

test('per-address limits see the client behind nginx, not nginx, and not what the client claims', async () => {
  const first = await graphql(SIGN_UP, { e: 'first@example.com', p: 'correct horse battery' }, { from: '127.0.0.2' });
  assert.ok(first.body.data.signUp.token, JSON.stringify(first.body));
  // The same client again, claiming to be someone else: nginx appends its real address.
  const again = await graphql(SIGN_UP, { e: 'again@example.com', p: 'correct horse battery' },
    { from: '127.0.0.2', headers: { 'x-forwarded-for': '198.51.100.7' } });
  assert.match(again.body.errors[0].message, /^Too many sign-ups from this address; try again in \d+ s$/);
  // Another client has its own share.
  const other = await graphql(SIGN_UP, { e: 'other@example.com', p: 'correct horse battery' }, { from: '127.0.0.3' });
  assert.ok(other.body.data.signUp.token, JSON.stringify(other.body));
});

test('a graphql-ws socket passes through nginx over TLS', async () => {
  const { token } = await site.signUp('socket@example.com');
  const ws = new WebSocket(`wss://127.0.0.1:${site.nginx.port}/graphql`, [PROTOCOL], { rejectUnauthorized: false, localAddress: '127.0.0.4' });
  const socket = new RawSocket(ws);
  await socket.opened;
  assert.equal(ws.protocol, PROTOCOL);
  await socket.init({ token });
  socket.subscribe('1', '{ me { email } }');
  assert.deepEqual([await socket.next(), await socket.next()], [
    { id: '1', type: 'next', payload: { data: { me: { email: 'socket@example.com' } } } },
    { id: '1', type: 'complete' },
  ]);
  ws.close();
});
