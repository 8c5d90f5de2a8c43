// Tabs that keep one resuming subscription to a user's library channel (shared by the resume
// and cluster suites), and a polling wait.
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { POSITION, PROTOCOL, seqOf, sleep } from './harness.mjs';

export const SUBSCRIPTION = `subscription Library($after: String) {
  channel(name: "library", after: $after) {
    __typename
    ... on StoryCreateEvent { type story { id title } }
    ... on StoryDeleteEvent { type deletedStoryId }
    ... on LibraryChangeEvent { type totalStories }
    ... on ChannelResetEvent { type reason }
  }
}`;

/**
 * A tab that keeps one resuming subscription: on every (re)connect it subscribes from the
 * position of the last event it got. It records every event as `{position, data}`.
 */
export class ResumingTab {
  /** Every tab made, stopped after each test (so a failed test leaves none reconnecting). */
  static all = new Set();

  constructor(server, token, after = null) {
    ResumingTab.all.add(this);
    this.server = server;
    this.token = token;
    this.events = [];
    this.last = after;
    this.stopped = false;
    this.connects = 0;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.server.wsUrl, [PROTOCOL]);
    this.ws = ws;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { token: this.token } })));
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === 'connection_ack') {
        this.connects += 1;
        const variables = this.last ? { after: this.last } : {};
        ws.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query: SUBSCRIPTION, variables } }));
      } else if (message.type === 'next') {
        const position = message.payload.extensions?.position;
        this.events.push({ position, data: message.payload.data.channel });
        if (position) this.last = position;
      } else if (message.type === 'error') {
        this.error = message.payload;
      }
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.ws === ws && !this.stopped) setTimeout(() => this.connect(), 20 + Math.random() * 80);
    });
  }

  /** Lose the socket abruptly (a train tunnel): the tab reconnects and resumes. */
  drop() {
    this.ws?.terminate();
  }

  stop() {
    this.stopped = true;
    this.ws?.close();
  }
}

export async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`timed out: ${typeof what === 'function' ? what() : what}`);
}


/** Every `next` of a tab is a position of one epoch, the seqs consecutive: no gap, no duplicate. */
export function assertContiguous(events, what) {
  assert.ok(events.length > 0, `${what}: no events`);
  const epoch = events[0].position.split(':')[0];
  for (const [i, event] of events.entries()) {
    assert.match(event.position, POSITION, `${what}: event ${i}`);
    assert.equal(event.position.split(':')[0], epoch, `${what}: one epoch`);
    if (i > 0) assert.equal(seqOf(event.position), seqOf(events[i - 1].position) + 1, `${what}: event ${i} follows ${events[i - 1].position}`);
  }
}
