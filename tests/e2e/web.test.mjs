// The web app end to end: a real Chromium (playwright-core) on the page the real binary
// serves at `/`, driven the way a person would, through labels, roles and visible text.
// Signing up and adding a story; two tabs of one user kept in step live while another
// user sees nothing; a tab riding out a server restart; sign-out closing the socket; and
// a screenshot of a filled-in Library page.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { Server, trustTestDocuments } from './harness.mjs';

// ---------------------------------------------------------------------------------------
// Helpers

/** How long a wait for something on the page may take (the server answers in ms). */
const WAIT = 5_000;
/** How long a tab may take to come back after a restart (backoff 1 s, 2 s, 4 s, 8 s…). */
const RECONNECT_WAIT = 20_000;
const PASSWORD = 'correct horse battery';
const SCREENSHOT_DIR = new URL('../../target/web-screenshots/', import.meta.url).pathname;
const DOCS_DIR = new URL('../../docs/', import.meta.url).pathname;

let browser;
let server;
before(async () => {
  [browser, server] = await Promise.all([
    chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-quic'],
    }),
    Server.start(),
  ]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
  server?.cleanup();
});

/** Uncaught exceptions of every tab of the running test (`assertNoPageErrors` checks them). */
let pageErrors = [];

/**
 * A new tab on `srv`'s page, in a browser context of its own (its own localStorage, so its
 * own session), closed when test `t` ends.
 */
async function openTab(t, srv = server, name = 'tab', viewport = { width: 1280, height: 900 }) {
  // Behind nginx (E2E_NGINX=1) the page comes over HTTPS with the test's own certificate.
  const context = await browser.newContext({ baseURL: srv.url, viewport, ignoreHTTPSErrors: true });
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
  await page.goto('/');
  if (srv.url.startsWith('https:')) {
    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    assert.equal(protocol, 'h2', 'the page came over HTTP/2');
  }
  return page;
}

function assertNoPageErrors() {
  const errors = pageErrors;
  pageErrors = [];
  assert.deepEqual(errors, [], 'uncaught exceptions in the page');
}

/** Poll `check` (which throws, typically an assert) until it passes or `ms` have passed. */
async function eventually(check, ms = WAIT) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Wait until the status line reads `text` ("Live", "Reconnecting"…). */
async function waitForStatus(page, text, ms = WAIT) {
  await page.getByRole('status').filter({ hasText: text }).waitFor({ timeout: ms });
}

async function signIn(page, email, password = PASSWORD) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Library' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await waitForStatus(page, 'Live');
}

async function signUp(page, email, name, password = PASSWORD) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  await waitForStatus(page, 'Live');
}

/** Fill in and submit the add-story form (the caller waits for what should follow). */
async function addStory(page, { url, title, description = '' }) {
  const form = page.getByRole('form', { name: 'Add story' });
  await form.getByLabel('URL').fill(url);
  await form.getByLabel('Title').fill(title);
  await form.getByLabel('Description').fill(description);
  await form.getByRole('button', { name: 'Add story' }).click();
}

/** The titles in the Stories list, top to bottom. */
async function storyTitles(page) {
  return page.getByRole('list', { name: 'Stories' }).getByRole('link').allTextContents();
}

/** The total line: "N stories" / "1 story". */
async function storyTotal(page) {
  return page.getByText(/^\d+ stor(y|ies)$/).textContent();
}

/** Both the list and the total, for one exact assertion. */
async function stories(page) {
  return { titles: await storyTitles(page), total: await storyTotal(page) };
}

/** The tag names of the Tags list, in order (each item's first button, its filter toggle). */
async function tagNames(page) {
  return page.getByRole('list', { name: 'Tags' }).getByRole('listitem')
    .evaluateAll((items) => items.map((item) => item.querySelector('button').textContent.trim()));
}

/** The Stories list item whose title is `title`. */
function storyItem(page, title) {
  return page.getByRole('list', { name: 'Stories' }).getByRole('listitem')
    .filter({ has: page.getByRole('link', { name: title, exact: true }) });
}

/** The names of the tags on the story `title` (its chips' "Remove tag <name>" buttons). */
async function storyTags(page, title) {
  const item = storyItem(page, title);
  assert.equal(await item.count(), 1, `one story "${title}" listed`);
  return item.getByRole('button', { name: /^Remove tag / })
    .evaluateAll((buttons) => buttons.map((b) => b.getAttribute('aria-label').replace(/^Remove tag /, '')));
}

/** The text of the element that describes `field` (its error, shown next to it). */
async function describedBy(field) {
  const id = await field.getAttribute('aria-describedby');
  assert.ok(id, 'the field has no aria-describedby');
  return field.page().locator(`[id="${id}"]`).textContent();
}

async function openSockets(srv) {
  return (await srv.metrics()).realtime_open_sockets;
}

const CREATE_STORY = 'mutation($input: CreateStoryInput!) { createStory(input: $input) { story { id } } }';
const CREATE_TAG = 'mutation($input: CreateTagInput!) { createTag(input: $input) { tag { id } error { __typename } } }';
const TAG_NAMES = '{ me { library { tags { id name } } } }';
const TAG_STORY = 'mutation($s: ID!, $t: [ID!]!) { tagStory(storyId: $s, tagIds: $t) { id } }';
const UPDATE_TAG = 'mutation($i: UpdateTagInput!) { updateTag(input: $i) { tag { id } } }';
const DELETE_TAG = 'mutation($i: DeleteTagInput!) { deleteTag(input: $i) { success } }';
const TOTALS = '{ me { library { stories { totalCount } tags { name } } } }';
const DELETE_STORY = 'mutation($i: DeleteStoryInput!) { deleteStory(input: $i) { success } }';
// The documents this suite sends itself to set up and check (with E2E_TRUSTED_DOCUMENTS=1 the
// server runs only trusted documents; these are trusted by a manifest of the test's own).
trustTestDocuments(CREATE_STORY, CREATE_TAG, TAG_NAMES, TAG_STORY, UPDATE_TAG, DELETE_TAG, TOTALS, DELETE_STORY);

async function apiStory(srv, token, input) {
  return (await srv.data(CREATE_STORY, { input }, token)).createStory.story.id;
}

async function apiTag(srv, token, name, color) {
  const { tag, error } = (await srv.data(CREATE_TAG, { input: { name, color } }, token)).createTag;
  assert.equal(error, null);
  return tag.id;
}

/** The ids of a user's tags, by name. */
async function tagIds(srv, token) {
  const data = await srv.data(TAG_NAMES, {}, token);
  return Object.fromEntries(data.me.library.tags.map((tag) => [tag.name, tag.id]));
}

// ---------------------------------------------------------------------------------------
// Scenarios

// Proves the basic round trip: sign up in the page, add a story, see a server error next to
// its field, and keep the session and the data across a reload.
test('signing up and adding a story; a bad url shows the server\'s error; a reload keeps it all', { timeout: 60_000 }, async (t) => {
  const page = await openTab(t);
  await signUp(page, 'web-first@example.com', 'Ada');
  await page.getByText('Ada', { exact: true }).waitFor();
  assert.deepEqual(await stories(page), { titles: [], total: '0 stories' });

  await addStory(page, { url: 'https://example.com/a', title: 'First story', description: 'About things' });
  await eventually(async () => assert.deepEqual(await stories(page), { titles: ['First story'], total: '1 story' }));
  const link = page.getByRole('list', { name: 'Stories' }).getByRole('link', { name: 'First story' });
  assert.equal(await link.getAttribute('href'), 'https://example.com/a');
  await storyItem(page, 'First story').getByText('About things').waitFor();
  const form = page.getByRole('form', { name: 'Add story' });
  assert.equal(await form.getByLabel('URL').inputValue(), '', 'the form is cleared after a save');

  await addStory(page, { url: 'nope', title: 'Bad one' });
  const url = form.getByLabel('URL');
  await eventually(async () => assert.equal(await url.getAttribute('aria-invalid'), 'true'));
  assert.equal(await describedBy(url), 'Invalid URL: "nope" is not an absolute URL');
  assert.equal(await url.inputValue(), 'nope', 'the refused input stays for correcting');
  assert.deepEqual(await stories(page), { titles: ['First story'], total: '1 story' });

  await page.reload();
  await waitForStatus(page, 'Live');
  await eventually(async () => assert.deepEqual(await stories(page), { titles: ['First story'], total: '1 story' }));
  assert.equal(await page.getByRole('list', { name: 'Stories' }).getByRole('link').getAttribute('href'), 'https://example.com/a');
  assert.equal(await page.getByText('Invalid URL').count(), 0, 'the error is gone after a reload');
  assertNoPageErrors();
});

// Proves that every change made in one tab reaches the user's other tab live (no reload),
// and that another user's tab receives nothing at all.
test('two tabs of one user stay in step live; another user sees none of it', { timeout: 90_000 }, async (t) => {
  const email = 'web-two-tabs@example.com';
  await server.signUp(email, PASSWORD, 'Tabby');
  await server.signUp('web-other@example.com', PASSWORD, 'Other');
  const [a, b, other] = await Promise.all([openTab(t, server, 'A'), openTab(t, server, 'B'), openTab(t, server, 'other')]);
  const otherFrames = [];
  other.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => otherFrames.push(String(payload))));
  await signIn(a, email);
  await signIn(b, email);
  await signIn(other, 'web-other@example.com');

  /** The other user's tab, at every step: nothing. */
  const otherSeesNothing = async () => {
    assert.deepEqual(await stories(other), { titles: [], total: '0 stories' });
    assert.deepEqual(await tagNames(other), []);
  };
  await otherSeesNothing();

  // A adds a story: B lists it and counts it.
  await addStory(a, { url: 'https://example.com/live', title: 'Live story', description: 'Seen everywhere' });
  await eventually(async () => assert.deepEqual(await stories(b), { titles: ['Live story'], total: '1 story' }));
  await eventually(async () => assert.deepEqual(await stories(a), { titles: ['Live story'], total: '1 story' }));
  await storyItem(b, 'Live story').getByText('Seen everywhere').waitFor();
  await otherSeesNothing();

  // A edits the title.
  await storyItem(a, 'Live story').getByRole('button', { name: 'Edit', exact: true }).click();
  const edit = a.getByRole('form', { name: 'Edit story' });
  await edit.getByLabel('Title').fill('Live story, edited');
  await edit.getByRole('button', { name: 'Save' }).click();
  await edit.waitFor({ state: 'detached' });
  await eventually(async () => assert.deepEqual(await stories(b), { titles: ['Live story, edited'], total: '1 story' }));
  await eventually(async () => assert.deepEqual(await stories(a), { titles: ['Live story, edited'], total: '1 story' }));
  await otherSeesNothing();

  // A creates a tag, then tags the story with it.
  await a.getByLabel('Tag name').fill('news');
  await a.getByRole('button', { name: 'Add tag' }).click();
  await eventually(async () => assert.deepEqual(await tagNames(b), ['news']));
  await eventually(async () => assert.deepEqual(await tagNames(a), ['news']));
  await storyItem(a, 'Live story, edited').getByLabel('Tag “Live story, edited”').selectOption({ label: 'news' });
  await eventually(async () => assert.deepEqual(await storyTags(b, 'Live story, edited'), ['news']));
  await eventually(async () => assert.deepEqual(await storyTags(a, 'Live story, edited'), ['news']));
  await otherSeesNothing();

  // A renames the tag: B's tag list and the story's chip follow.
  await a.getByRole('button', { name: 'Edit tag news' }).click();
  const editTag = a.getByRole('form', { name: 'Edit tag news' });
  await editTag.getByLabel('Name', { exact: true }).fill('world');
  await editTag.getByRole('button', { name: 'Save' }).click();
  await editTag.waitFor({ state: 'detached' });
  await eventually(async () => assert.deepEqual(await tagNames(b), ['world']));
  await eventually(async () => assert.deepEqual(await storyTags(b, 'Live story, edited'), ['world']));
  await eventually(async () => assert.deepEqual(await tagNames(a), ['world']));
  await eventually(async () => assert.deepEqual(await storyTags(a, 'Live story, edited'), ['world']));
  await otherSeesNothing();

  // A untags the story: the chip is gone in B, and the tag is offered again there.
  await storyItem(a, 'Live story, edited').getByRole('button', { name: 'Remove tag world' }).click();
  await eventually(async () => assert.deepEqual(await storyTags(b, 'Live story, edited'), []));
  await eventually(async () => assert.deepEqual(await storyTags(a, 'Live story, edited'), []));
  const offered = await storyItem(b, 'Live story, edited').getByLabel('Tag “Live story, edited”').getByRole('option').allTextContents();
  assert.deepEqual(offered, ['+ tag', 'world']);
  await eventually(async () => assert.deepEqual(await tagNames(b), ['world']));
  await otherSeesNothing();

  // A deletes the story.
  await storyItem(a, 'Live story, edited').getByRole('button', { name: 'Delete', exact: true }).click();
  await eventually(async () => assert.deepEqual(await stories(b), { titles: [], total: '0 stories' }));
  await eventually(async () => assert.deepEqual(await stories(a), { titles: [], total: '0 stories' }));
  await otherSeesNothing();

  // The other user's socket was live the whole time and carried no event.
  await waitForStatus(other, 'Live');
  const messages = otherFrames.map((f) => JSON.parse(f));
  assert.ok(messages.some((m) => m.type === 'connection_ack'), 'the other user\'s socket frames were observed');
  assert.deepEqual(messages.filter((m) => m.type === 'next'), [], 'the other user\'s tab received events');
  assertNoPageErrors();
});

/** Count the page's fetches of the Library query (its refetches after the first load). */
function countLibraryQueries(page) {
  const counter = { n: 0 };
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.postData()?.includes('"LibraryPageQuery"')) counter.n += 1;
  });
  return counter;
}

// Proves that a tab rides out a server restart: it shows Reconnecting while the server is
// down, comes back Live by itself, and catches up with what changed while it was away, by
// resuming its subscription from the last event it had (no refetch).
test('a tab reconnects after a server restart and catches up without a reload', { timeout: 90_000 }, async (t) => {
  await Server.with({}, async (srv) => {
    const email = 'web-restart@example.com';
    const { token } = await srv.signUp(email, PASSWORD);
    const page = await openTab(t, srv);
    const queries = countLibraryQueries(page);
    const attempts = [];
    page.on('websocket', (ws) => {
      const attempt = { closed: false };
      attempts.push(attempt);
      ws.on('close', () => { attempt.closed = true; });
    });
    await signIn(page, email);
    await addStory(page, { url: 'https://example.com/before', title: 'Before the restart' });
    await eventually(async () => assert.deepEqual(await stories(page), { titles: ['Before the restart'], total: '1 story' }));
    const loads = queries.n;

    // The restart (srv.restart() in two halves, to look at the tab while the server is down).
    await srv.stop();
    await waitForStatus(page, 'Reconnecting');
    // Let one retry fail against the stopped server, so the next one is 2 s away.
    const seen = attempts.length;
    await eventually(() => assert.ok(attempts.length > seen && attempts.at(-1).closed, 'a failed retry'));
    assert.match(await page.getByRole('status').textContent(), /Reconnecting/);
    await srv.launch();

    // Changed through the API while the tab is still away.
    await apiStory(srv, token, { url: 'https://example.com/during', title: 'Added during the restart' });
    assert.match(await page.getByRole('status').textContent(), /Reconnecting/, 'the tab reconnected before the story was added');
    assert.deepEqual(await storyTitles(page), ['Before the restart']);

    await waitForStatus(page, 'Live', RECONNECT_WAIT);
    await eventually(async () => assert.deepEqual(await stories(page), {
      titles: ['Added during the restart', 'Before the restart'],
      total: '2 stories',
    }));
    assert.equal(queries.n, loads, 'resumed from its position: no refetch');

    // And it is live again: a change made now arrives as an event.
    await apiStory(srv, token, { url: 'https://example.com/after', title: 'Added after the restart' });
    await eventually(async () => assert.deepEqual(await stories(page), {
      titles: ['Added after the restart', 'Added during the restart', 'Before the restart'],
      total: '3 stories',
    }));
    await page.context().close(); // before its server stops for good
  });
  assertNoPageErrors();
});

/**
 * A signed-in tab with one story ("First") whose server then stops and starts again: the tab
 * has shown Reconnecting, and is kept offline (it cannot reconnect, however soon it tries)
 * until the caller has made its changes and calls `back()`. `loads`: the library queries
 * made before.
 */
async function tabThroughRestart(t, srv, email) {
  const { token } = await srv.signUp(email, PASSWORD);
  const page = await openTab(t, srv);
  const queries = countLibraryQueries(page);
  await signIn(page, email);
  await addStory(page, { url: 'https://example.com/first', title: 'First' });
  await eventually(async () => assert.deepEqual(await stories(page), { titles: ['First'], total: '1 story' }));
  const loads = queries.n;
  await srv.stop();
  await waitForStatus(page, 'Reconnecting');
  await page.context().setOffline(true);
  await srv.launch();
  const back = () => page.context().setOffline(false);
  return { page, token, queries, loads, back };
}

// Proves the other way back: a tab away for longer than the server's log keeps gets one
// channel:reset when it resumes, and refetches the page.
test('a tab that missed more than the log keeps is reset and refetches', { timeout: 90_000 }, async (t) => {
  await Server.with({ args: ['--event-retention', '2,24h'] }, async (srv) => {
    const { page, token, queries, loads, back } = await tabThroughRestart(t, srv, 'web-reset@example.com');
    // Three stories (six events) while the tab is away: more than the two the log keeps.
    for (const title of ['Second', 'Third', 'Fourth']) await apiStory(srv, token, { url: 'https://example.com/x', title });
    await back();
    await waitForStatus(page, 'Live', RECONNECT_WAIT);
    await eventually(async () => assert.deepEqual(await stories(page), { titles: ['Fourth', 'Third', 'Second', 'First'], total: '4 stories' }));
    assert.equal(queries.n, loads + 1, 'the reset made the page refetch once');
    await page.context().close();
  });
  assertNoPageErrors();
});

// Proves that a tab further behind than one replay sends (1 MiB of messages: here 500 stories
// with 9,000-character descriptions, which the app's own selection asks for) is reset once and
// refetches, then stays live: it neither loops on a replay that cannot fit (4.5 MB, more than a
// socket's queue: before, close 1008 and the same resume again) nor misses anything.
test('a tab behind by more than one replay sends is reset once, refetches, and stays live', { timeout: 240_000 }, async (t) => {
  await Server.with({}, async (srv) => {
    const { page, token, queries, loads, back } = await tabThroughRestart(t, srv, 'web-big-replay@example.com');
    let sockets = 0;
    page.on('websocket', () => { sockets += 1; });
    const description = 'm'.repeat(9_000);
    for (let i = 0; i < 500; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => apiStory(srv, token, { url: 'https://example.com/big', title: `Big ${i + j}`, description })));
    }
    await back();
    await waitForStatus(page, 'Live', RECONNECT_WAIT);
    await eventually(async () => assert.equal((await stories(page)).total, '501 stories'), 20_000);
    assert.equal(queries.n, loads + 1, 'the reset made the page refetch once');
    const settledSockets = sockets;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(sockets, settledSockets, 'no reconnect loop');
    assert.match(await page.getByRole('status').textContent(), /Live/);
    await apiStory(srv, token, { url: 'https://example.com/after', title: 'After the catch-up' });
    await eventually(async () => assert.equal((await stories(page)).titles[0], 'After the catch-up'));
    await page.context().close();
  });
  assertNoPageErrors();
});

// Proves the page works on a phone (390 x 844): nothing is wider than the screen (a long e-mail
// and a long url included), the header keeps "Sign out" on screen, and the stories come before
// the forms, which stay reachable.
test('on a phone the page fits the screen and shows the stories first', { timeout: 60_000 }, async (t) => {
  const email = `a-rather-long-address-for-a-phone-${Date.now()}@example.com`;
  const page = await openTab(t, server, 'phone', { width: 390, height: 844 });
  await signUp(page, email, '');
  await addStory(page, { url: `https://example.com/${'a-very-long-path-segment/'.repeat(8)}`, title: 'Read on the phone' });
  await eventually(async () => assert.deepEqual(await storyTitles(page), ['Read on the phone']));
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(widths.scroll <= widths.client, `the page scrolls sideways: ${widths.scroll} px of content in ${widths.client} px`);
  const signOut = await page.getByRole('button', { name: 'Sign out' }).boundingBox();
  assert.ok(signOut.x >= 0 && signOut.x + signOut.width <= 390, `"Sign out" is off the screen: ${JSON.stringify(signOut)}`);
  const list = await page.getByRole('list', { name: 'Stories' }).boundingBox();
  const form = await page.getByRole('form', { name: 'Add story' }).boundingBox();
  assert.ok(list.y < form.y, `the stories (at ${list.y}) come before the add-story form (at ${form.y})`);
  await page.getByRole('form', { name: 'Add story' }).getByLabel('URL').scrollIntoViewIfNeeded();
  assert.ok(await page.getByRole('form', { name: 'Add story' }).getByLabel('URL').isVisible(), 'the form is reachable');
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SCREENSHOT_DIR}phone.png` });
  assertNoPageErrors();
});

// Proves that signing out closes the tab's socket on the server, and that the next account
// signed in in the same tab sees only its own stories, live.
test('signing out closes the socket; the next account in the tab sees only its own stories', { timeout: 60_000 }, async (t) => {
  const first = await server.signUp('web-first-account@example.com', PASSWORD);
  const second = await server.signUp('web-second-account@example.com', PASSWORD);
  await apiStory(server, first.token, { url: 'https://example.com/first', title: 'First account\'s story' });
  await apiStory(server, second.token, { url: 'https://example.com/second', title: 'Second account\'s story' });

  const page = await openTab(t);
  await signIn(page, 'web-first-account@example.com');
  await eventually(async () => assert.deepEqual(await stories(page), { titles: ['First account\'s story'], total: '1 story' }));
  // This tab's socket is the only one open (the earlier tests' tabs are closed).
  await eventually(async () => assert.equal(await openSockets(server), 1));
  const before = await openSockets(server);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Email').waitFor();
  await eventually(async () => assert.equal(await openSockets(server), before - 1));
  await page.reload();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0, 'signed out for good');

  await signIn(page, 'web-second-account@example.com');
  await eventually(async () => assert.deepEqual(await stories(page), { titles: ['Second account\'s story'], total: '1 story' }));
  await eventually(async () => assert.equal(await openSockets(server), 1));
  // A change of the first account does not reach the tab; one of the second does.
  await apiStory(server, first.token, { url: 'https://example.com/first-2', title: 'First account\'s second story' });
  await apiStory(server, second.token, { url: 'https://example.com/second-2', title: 'Second account\'s second story' });
  await eventually(async () => assert.deepEqual(await stories(page), {
    titles: ['Second account\'s second story', 'Second account\'s story'],
    total: '2 stories',
  }));
  assertNoPageErrors();
});

// Proves the tag forms show the server's refusals next to their field, and that a tag's
// filter (route /tag/<name>) lists only its stories, follows changes live and survives a reload.
test('tag errors show next to their field; a tag filter lists its stories, live', { timeout: 60_000 }, async (t) => {
  const email = 'web-tags@example.com';
  const { token } = await server.signUp(email, PASSWORD);
  const page = await openTab(t);
  await signIn(page, email);

  const tagName = page.getByLabel('Tag name');
  const addTag = async (name) => {
    await tagName.fill(name);
    await page.getByRole('button', { name: 'Add tag' }).click();
  };
  await addTag('news');
  await eventually(async () => assert.deepEqual(await tagNames(page), ['news']));
  assert.equal(await tagName.inputValue(), '');
  await addTag('news');
  await eventually(async () => assert.equal(await tagName.getAttribute('aria-invalid'), 'true'));
  assert.equal(await describedBy(tagName), 'A tag named "news" already exists');
  await addTag('');
  await eventually(async () => assert.equal(await describedBy(tagName), 'Tag name must be between 1 and 50 characters'));
  await addTag('world');
  await eventually(async () => assert.deepEqual(await tagNames(page), ['news', 'world']));
  assert.equal(await tagName.getAttribute('aria-invalid'), null, 'the error is gone after a save');

  // Renaming to a taken name is refused in the edit form, next to its Name field.
  await page.getByRole('button', { name: 'Edit tag world' }).click();
  const editTag = page.getByRole('form', { name: 'Edit tag world' });
  const name = editTag.getByLabel('Name', { exact: true });
  await name.fill('news');
  await editTag.getByRole('button', { name: 'Save' }).click();
  await eventually(async () => assert.equal(await describedBy(name), 'A tag named "news" already exists'));
  await editTag.getByRole('button', { name: 'Cancel' }).click();
  await editTag.waitFor({ state: 'detached' });
  assert.deepEqual(await tagNames(page), ['news', 'world']);

  // The filter.
  const news = (await tagIds(server, token)).news;
  await apiStory(server, token, { url: 'https://example.com/tagged', title: 'Tagged', tagIds: [news] });
  const untagged = await apiStory(server, token, { url: 'https://example.com/untagged', title: 'Untagged' });
  await eventually(async () => assert.deepEqual(await stories(page), { titles: ['Untagged', 'Tagged'], total: '2 stories' }));
  const toggle = page.getByRole('list', { name: 'Tags' }).getByRole('button', { name: 'news', exact: true });
  await toggle.click();
  await page.getByRole('heading', { name: 'Tagged “news”' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/tag/news');
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
  const filtered = async () => ({ titles: await storyTitles(page), total: await storyTotal(page), tagged: await page.getByText(/^\d+ tagged stor(y|ies)/).textContent() });
  await eventually(async () => assert.deepEqual(await filtered(), { titles: ['Tagged'], total: '2 stories', tagged: '1 tagged story Show all stories' }));

  // Tagged elsewhere (through the API): it joins the filtered list live.
  await server.data(TAG_STORY, { s: untagged, t: [news] }, token);
  await eventually(async () => assert.deepEqual(await filtered(), { titles: ['Untagged', 'Tagged'], total: '2 stories', tagged: '2 tagged stories Show all stories' }));
  await page.reload();
  await waitForStatus(page, 'Live');
  await eventually(async () => assert.deepEqual(await filtered(), { titles: ['Untagged', 'Tagged'], total: '2 stories', tagged: '2 tagged stories Show all stories' }));

  await page.getByRole('button', { name: 'Show all stories' }).click();
  await page.getByRole('heading', { name: 'Tagged “news”' }).waitFor({ state: 'detached' });
  assert.equal(new URL(page.url()).pathname, '/');
  assert.deepEqual(await stories(page), { titles: ['Untagged', 'Tagged'], total: '2 stories' });

  // The filtered tag renamed elsewhere: the filter follows it to its new name, and stays live.
  await toggle.click();
  await page.getByRole('heading', { name: 'Tagged “news”' }).waitFor();
  await server.data(UPDATE_TAG, { i: { id: news, name: 'press' } }, token);
  await page.getByRole('heading', { name: 'Tagged “press”' }).waitFor({ timeout: WAIT });
  assert.equal(new URL(page.url()).pathname, '/tag/press');
  await apiStory(server, token, { url: 'https://example.com/third', title: 'Third', tagIds: [news] });
  await eventually(async () => assert.deepEqual(await filtered(), { titles: ['Third', 'Untagged', 'Tagged'], total: '3 stories', tagged: '3 tagged stories Show all stories' }));

  // ... and deleted elsewhere: the filter is cleared and every story shows.
  await server.data(DELETE_TAG, { i: { id: news } }, token);
  await page.getByRole('heading', { name: 'Tagged “press”' }).waitFor({ state: 'detached', timeout: WAIT });
  assert.equal(new URL(page.url()).pathname, '/');
  await eventually(async () => assert.deepEqual(await stories(page), { titles: ['Third', 'Untagged', 'Tagged'], total: '3 stories' }));
  assertNoPageErrors();
});

// Proves the page's retry (web/src/relay/commitWithRetry.js): a mutation whose answer is lost
// after the server applied it (an OUTCOME_UNKNOWN error, or a connection reset) is sent again
// with the same clientMutationId, and the server answers it from the first attempt.
test('a mutation whose answer was lost is sent again with its key and applied once', { timeout: 60_000 }, async (t) => {
  const email = 'web-retry@example.com';
  const { token } = await server.signUp(email, PASSWORD);
  const page = await openTab(t);
  await signIn(page, email);
  const keys = { createStory: [], createTag: [] };
  await page.route('**/graphql', async (route) => {
    const body = route.request().postDataJSON();
    // The page sends persisted documents by id: their operation names tell them apart.
    const name = { AddStoryFormMutation: 'createStory', TagListCreateMutation: 'createTag' }[body?.operationName];
    if (!name) return route.continue();
    keys[name].push(body.variables.input.clientMutationId);
    const response = await route.fetch();
    if (keys[name].length > 1) return route.fulfill({ response });
    // The first attempt reached the server; its answer does not reach the page.
    if (name === 'createTag') return route.abort('connectionreset');
    const unknown = { message: 'Outcome unknown: the answer was lost', extensions: { code: 'OUTCOME_UNKNOWN' } };
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ data: null, errors: [unknown] }) });
  });

  await addStory(page, { url: 'https://example.com/lost', title: 'Lost answer' });
  await eventually(async () => assert.equal(await page.getByRole('form', { name: 'Add story' }).getByLabel('Title').inputValue(), ''), 10_000);
  await page.getByLabel('Tag name').fill('retried');
  await page.getByRole('button', { name: 'Add tag' }).click();
  await eventually(async () => assert.equal(await page.getByLabel('Tag name').inputValue(), ''), 10_000);

  for (const [name, sent] of Object.entries(keys)) {
    assert.equal(sent.length, 2, `${name}: the first attempt and one retry`);
    assert.match(sent[0], /^[0-9a-f-]{36}$/, `${name}: a UUID`);
    assert.equal(sent[1], sent[0], `${name}: the retry carries the same key`);
  }
  assert.equal(await page.locator('.field-error').count(), 0, 'no error shown');
  const library = (await server.data(TOTALS, {}, token)).me.library;
  assert.deepEqual(library, { stories: { totalCount: 1 }, tags: [{ name: 'retried' }] }, 'each applied once');
  await eventually(async () => assert.deepEqual(await stories(page), { titles: ['Lost answer'], total: '1 story' }));
  assert.deepEqual(await tagNames(page), ['retried']);
  assertNoPageErrors();
});

// Proves Relay pagination: ten stories a page, "Load more" for the rest, and live changes
// landing in the right place with two pages loaded.
test('stories come ten at a time with Load more; live changes keep the loaded pages right', { timeout: 60_000 }, async (t) => {
  const email = 'web-pages@example.com';
  const { token } = await server.signUp(email, PASSWORD);
  const ids = [];
  for (let i = 1; i <= 12; i++) ids.push(await apiStory(server, token, { url: `https://example.com/${i}`, title: `Story ${i}` }));
  const page = await openTab(t);
  await signIn(page, email);
  const newest = (from, to) => Array.from({ length: from - to + 1 }, (_, k) => `Story ${from - k}`);
  await eventually(async () => assert.deepEqual(await stories(page), { titles: newest(12, 3), total: '12 stories' }));
  await page.getByRole('button', { name: 'Load more' }).click();
  await eventually(async () => assert.deepEqual(await stories(page), { titles: newest(12, 1), total: '12 stories' }));
  assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0, 'no more pages');

  // A story added elsewhere goes on top; one deleted elsewhere from the second page leaves it.
  await apiStory(server, token, { url: 'https://example.com/13', title: 'Story 13' });
  await server.data(DELETE_STORY, { i: { id: ids[0] } }, token);
  await eventually(async () => assert.deepEqual(await stories(page), { titles: newest(13, 2), total: '12 stories' }));
  assertNoPageErrors();
});

// Proves the page renders a realistic library (stories with descriptions, colored tags) and
// keeps a picture of it: target/web-screenshots/library.png (docs/ with UPDATE_SCREENSHOT=1).
test('a screenshot of a Library page with stories and tags', { timeout: 60_000 }, async (t) => {
  const email = 'web-screenshot@example.com';
  const { token } = await server.signUp(email, PASSWORD, 'Grace Hopper');
  const rust = await apiTag(server, token, 'rust', '#ea580c');
  const web = await apiTag(server, token, 'web', '#2563eb');
  await apiTag(server, token, 'reading', '#16a34a');
  await apiStory(server, token, {
    url: 'https://doc.rust-lang.org/book/',
    title: 'The Rust Programming Language',
    description: 'The book: ownership, borrowing and fearless concurrency, from the ground up.',
    tagIds: [rust],
  });
  await apiStory(server, token, {
    url: 'https://relay.dev/docs/',
    title: 'Relay documentation',
    description: 'Fragments, connections and subscriptions: a GraphQL client built for scale.',
    tagIds: [web],
  });
  await apiStory(server, token, {
    url: 'https://www.rfc-editor.org/rfc/rfc6455',
    title: 'RFC 6455: The WebSocket Protocol',
    description: 'Handshake, framing and closing of a two-way channel over one TCP connection.',
    tagIds: [rust, web],
  });
  await apiStory(server, token, {
    url: 'https://github.com/enisdenjo/graphql-ws',
    title: 'graphql-ws',
    description: 'Coherent, zero-dependency GraphQL over WebSocket server and client.',
  });

  const page = await openTab(t);
  await signIn(page, email);
  await eventually(async () => assert.deepEqual(await stories(page), {
    titles: ['graphql-ws', 'RFC 6455: The WebSocket Protocol', 'Relay documentation', 'The Rust Programming Language'],
    total: '4 stories',
  }));
  assert.deepEqual(await tagNames(page), ['reading', 'rust', 'web']);
  assert.deepEqual(await storyTags(page, 'RFC 6455: The WebSocket Protocol'), ['rust', 'web']);

  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = `${SCREENSHOT_DIR}library.png`;
  await page.screenshot({ path, fullPage: true });
  assert.deepEqual([...readFileSync(path).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
  if (process.env.UPDATE_SCREENSHOT === '1') {
    mkdirSync(DOCS_DIR, { recursive: true });
    copyFileSync(path, `${DOCS_DIR}library.png`);
  }
  assertNoPageErrors();
});
