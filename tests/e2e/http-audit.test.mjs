// GraphQL over HTTP: every server audit of the `graphql-http` package (the reference
// implementation of the GraphQL-over-HTTP spec), run against POST/GET /graphql, one test each.
// MUST audits must pass. SHOULD and MAY audits are expected to pass as well; an audit the
// server knowingly does not meet would be listed in KNOWN_GAPS with its reason (none today).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';
import { Server } from './harness.mjs';

/** `audit id` → why the server does not meet it. Only SHOULD/MAY audits may be listed. */
const KNOWN_GAPS = {};

let server;
before(async () => { server = await Server.start(); });
after(async () => { await server?.stop(); server?.cleanup(); });

// The audits are built with a URL function, so they can be listed before the server starts.
const audits = serverAudits({ url: () => `${server.url}/graphql`, fetchFn: fetch });

test('the audit list is the full graphql-http set', () => {
  assert.ok(audits.length >= 60, `${audits.length} audits`);
  assert.ok(audits.some((a) => a.name.startsWith('MUST')));
  for (const id of Object.keys(KNOWN_GAPS)) {
    const audit = audits.find((a) => a.id === id);
    assert.ok(audit, `known gap ${id} is an audit`);
    assert.ok(!audit.name.startsWith('MUST'), `a MUST audit cannot be a known gap: ${audit.name}`);
  }
});

for (const audit of audits) {
  const gap = KNOWN_GAPS[audit.id];
  test(`${audit.id} ${audit.name}`, { timeout: 10_000, todo: gap ? `known gap: ${gap}` : undefined }, async () => {
    const result = await audit.fn();
    if (result.status !== 'ok') {
      const res = result.response;
      const body = res ? await res.text().catch(() => '<unreadable>') : '<no response>';
      assert.fail(`${result.status}: ${result.reason}\nstatus ${res?.status}, content-type ${res?.headers.get('content-type')}\n${body}`);
    }
  });
}
