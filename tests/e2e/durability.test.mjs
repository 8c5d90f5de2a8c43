// Durability, proven: the host is killed with SIGKILL in the middle of a mutation load (many
// concurrent writers over several users, sign-ups at the same time), at several moments, and
// restarted on the same data dir. Every mutation that got its response is there, exactly once,
// and `totalCount` agrees; every sign-up that got its token can sign in.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Server, sleep } from './harness.mjs';

const CREATE = 'mutation($input: CreateStoryInput!) { createStory(input: $input) { story { title } } }';
const PAGE = `query($after: String) { me { library { stories(first: 100, after: $after) {
  totalCount edges { node { title } } pageInfo { hasNextPage endCursor } } } } }`;
const SIGN_IN = 'mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }';

let server;
before(async () => { server = await Server.start(); });
after(async () => { await server?.kill(); server?.cleanup(); });

/** Every story title of a user, in order, and the totalCount the first page reported. */
async function library(token) {
  const titles = [];
  let after = null;
  let total;
  for (;;) {
    const { me } = await server.data(PAGE, { after }, token);
    const page = me.library.stories;
    total ??= page.totalCount;
    titles.push(...page.edges.map((e) => e.node.title));
    if (!page.pageInfo.hasNextPage) return { titles, total };
    after = page.pageInfo.endCursor;
  }
}

/** Write until `stop()` says so, adding to `acknowledged` each title whose mutation was acknowledged. */
async function writer(token, name, stopped, acknowledged) {
  for (let n = 0; !stopped(); n++) {
    const title = `${name}-${n}`;
    try {
      const { status, body } = await server.gql(CREATE, { input: { url: 'https://example.com/', title } }, token);
      if (status === 200 && body.data?.createStory?.story?.title === title) acknowledged.push(title);
    } catch {
      // The server died under this request: its outcome is unknown, and either is allowed.
      await sleep(20);
    }
  }
  return acknowledged;
}

/** Sign up until stopped; returns the e-mails that got a token. */
async function signUps(prefix, stopped) {
  const acknowledged = [];
  for (let n = 0; !stopped(); n++) {
    const email = `${prefix}-${n}@example.com`;
    try {
      const { body } = await server.gql('mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) { token } }', { e: email, p: 'durable password' });
      if (body.data?.signUp?.token) acknowledged.push(email);
    } catch {
      await sleep(20);
    }
  }
  return acknowledged;
}

test('SIGKILL during a mutation load loses no acknowledged mutation or sign-up, and duplicates none', { timeout: 240_000 }, async () => {
  const users = [];
  for (let u = 0; u < 4; u++) users.push((await server.signUp(`writer${u}@example.com`)).token);
  const acknowledged = users.map(() => []);
  const signedUp = [];

  for (const [round, killAfterMs] of [300, 900, 1700].entries()) {
    let stop = false;
    const stopped = () => stop;
    // Three writers per user, all at once, and sign-ups beside them. This round's
    // acknowledgements are counted per user: a round in which a user had nothing
    // acknowledged would prove nothing about that user.
    const thisRound = users.map(() => []);
    const writers = users.flatMap((token, u) => [0, 1, 2].map((w) => writer(token, `r${round}-u${u}-w${w}`, stopped, thisRound[u])));
    const accounts = signUps(`r${round}`, stopped);
    await sleep(killAfterMs);
    // On a slow machine, the kill waits for every user's first acknowledgement of the round
    // (the writers go on meanwhile, so the kill still lands in the middle of the load).
    for (let waited = 0; !thisRound.every((titles) => titles.length > 0) && waited < 30_000; waited += 20) await sleep(20);
    await server.kill();
    stop = true;
    await Promise.all(writers);
    const roundSignUps = await accounts;
    if (process.env.E2E_VERBOSE) console.error(`round ${round}: acknowledged`, thisRound.map((a) => a.length), 'sign-ups', roundSignUps.length);
    assert.ok(thisRound.every((titles) => titles.length > 0),
      `round ${round}: every user had mutations acknowledged before the kill (${thisRound.map((a) => a.length).join(', ')})`);
    thisRound.forEach((titles, u) => acknowledged[u].push(...titles));
    signedUp.push(...roundSignUps);
    await server.launch();

    for (const [u, token] of users.entries()) {
      const { titles, total } = await library(token);
      assert.equal(new Set(titles).size, titles.length, `user ${u}, round ${round}: no story twice`);
      assert.equal(total, titles.length, `user ${u}, round ${round}: totalCount agrees with the stories listed`);
      const present = new Set(titles);
      const missing = acknowledged[u].filter((t) => !present.has(t));
      assert.deepEqual(missing, [], `user ${u}, round ${round}: every acknowledged mutation survived`);
    }
  }
  for (const email of signedUp) {
    const { body } = await server.gql(SIGN_IN, { e: email, p: 'durable password' });
    assert.equal(typeof body.data?.signIn?.token, 'string', `${email} signed up and can sign in`);
  }
  assert.ok(signedUp.length > 0);
  if (process.env.E2E_VERBOSE) console.error('acknowledged', acknowledged.map((a) => a.length), 'sign-ups', signedUp.length);
});
