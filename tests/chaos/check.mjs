// The checker: reads a history (operations with start, end and outcome; every tab's events;
// every node's final list of each user) and returns every anomaly it finds, by kind. What it
// checks, per user (each story is written by one client only, one operation at a time, so a
// story is a register with a single writer, and each check below is exact for that):
//
// - converged:   after healing, every node returns the same list.
// - lost:        an acknowledged create is missing at the end (and no delete of it may have run).
// - duplicated:  a title is there more than once (at the end, in a read, or in the events).
// - phantom:     a failed create is there (at the end, in a read or in an event), or a story
//                whose title no create made.
// - resurrected: a story whose delete was acknowledged is still there at the end.
// - lost-delete: a story whose delete failed, and whose create was acknowledged, is gone.
// - lost-update: a story's final description is not the last acknowledged update's (or one of
//                an update whose outcome is unknown); or a failed update's value is seen.
// - order:       of two acknowledged creates, the one acknowledged before the other began is not
//                older in the list (the list is newest first): real-time order.
// - stale-read:  a read missed a create, a delete or an update acknowledged before the read
//                began (linearizable reads), or saw a create that had not begun when it ended.
// - not-found:   an update or delete of a client's own live story answered "not found".
// - tab-gap / tab-duplicate / tab-order: a tab's events are not consecutive positions of one
//                log (a `channel:reset` starts a new run; a reset is counted, not an anomaly).
// - tab-disagree: two tabs got different events at the same position.
// - tab-behind:  after healing, a tab never reached the last position.
// - tab-log:     a tab that saw the whole log (from its first entry, no reset) does not replay to
//                the final list, or saw a failed create, or missed an acknowledged one.

export function check(history) {
  const anomalies = [];
  const flag = (kind, user, detail) => anomalies.push({ kind, user, detail });
  const users = new Map();
  const forUser = (name) => {
    if (!users.has(name)) users.set(name, { ops: [], tabs: [], finals: [] });
    return users.get(name);
  };
  for (const entry of history) {
    if (entry.kind === 'op') forUser(entry.user).ops.push(entry);
    else if (entry.kind === 'tab') forUser(entry.user).tabs.push(entry);
    else if (entry.kind === 'final') forUser(entry.user).finals.push(entry);
  }
  for (const [user, { ops, tabs, finals }] of users) {
    checkUser(user, ops, tabs, finals, (kind, detail) => flag(kind, user, detail));
  }
  return anomalies;
}

function checkUser(user, ops, tabs, finals, flag) {
  const creates = ops.filter((op) => op.type === 'create');
  const byTitle = new Map(creates.map((op) => [op.title, op]));
  const ackedById = new Map(creates.filter((op) => op.outcome === 'ok').map((op) => [op.id, op]));
  // Each story's updates and deletes, in the order they were made (one client makes them).
  const writes = new Map();
  for (const op of ops) {
    if (op.type !== 'update' && op.type !== 'delete') continue;
    if (!writes.has(op.id)) writes.set(op.id, { update: [], delete: [] });
    writes.get(op.id)[op.type].push(op);
  }
  const writesOf = (type, id) => writes.get(id)?.[type] ?? [];
  const failedValues = new Set(ops.filter((op) => op.type === 'update' && op.outcome === 'failed' && !op.notFound).map((op) => op.description));

  for (const op of ops) {
    if (op.notFound) flag('not-found', `${op.type} of ${op.id} by ${op.client} answered not found (${op.error})`);
  }

  // The end state: one list, the same on every node.
  const [first] = finals;
  if (!first) { flag('converged', 'no final list'); return; }
  for (const final of finals.slice(1)) {
    if (JSON.stringify(final.stories) !== JSON.stringify(first.stories)) {
      flag('converged', `${final.node} differs from ${first.node}: ${final.stories.length} vs ${first.stories.length} stories`);
    }
  }
  const final = first.stories;
  const finalCount = countTitles(final);
  for (const [title, count] of finalCount) {
    if (count > 1) flag('duplicated', `"${title}" ${count} times at the end`);
    const create = byTitle.get(title);
    if (!create) flag('phantom', `"${title}" at the end, made by no create`);
    else if (create.outcome === 'failed') flag('phantom', `"${title}" at the end, its create failed (${create.error})`);
  }
  for (const create of creates) {
    const present = finalCount.get(create.title) ?? 0;
    if (create.outcome !== 'ok') continue;
    const deletes = writesOf('delete', create.id);
    const deleted = deletes.some((op) => op.outcome === 'ok');
    const maybeDeleted = deletes.some((op) => op.outcome === 'unknown');
    if (deleted && present) flag('resurrected', `"${create.title}" is there, its delete was acknowledged`);
    if (!deleted && !maybeDeleted && !present) {
      flag(deletes.length ? 'lost-delete' : 'lost', `"${create.title}" (acknowledged at ${ms(create.end)}) is missing${deletes.length ? ', its delete failed' : ''}`);
    }
    if (present) {
      const story = final.find((s) => s.title === create.title);
      const allowed = allowedDescriptions(writesOf('update', create.id), Infinity);
      if (!allowed.has(story.description)) flag('lost-update', `"${create.title}" ends with ${JSON.stringify(story.description)}, expected one of ${JSON.stringify([...allowed])}`);
    }
  }

  // Real-time order in the final list (newest first).
  const index = new Map(final.map((s, i) => [s.title, i]));
  // For each create b, the creates acknowledged before b began are a prefix of those sorted by
  // acknowledgement; the one listed newest among them must still be listed after b.
  const acked = creates.filter((op) => op.outcome === 'ok' && index.has(op.title)).sort((a, b) => a.end - b.end);
  const newestBefore = [];
  for (const [i, a] of acked.entries()) {
    const previous = newestBefore[i - 1];
    newestBefore.push(previous && index.get(previous.title) < index.get(a.title) ? previous : a);
  }
  for (const b of acked) {
    const before = countBelow(acked, b.start) - 1;
    const a = newestBefore[before];
    if (a && index.get(a.title) < index.get(b.title)) {
      flag('order', `"${a.title}" acknowledged before "${b.title}" began, yet listed as newer`);
    }
  }

  // Reads: linearizable, per story.
  const ackedByEnd = creates.filter((op) => op.outcome === 'ok').sort((a, b) => a.end - b.end);
  const firstDeleteStart = new Map(ackedByEnd.map((create) => [create,
    Math.min(Infinity, ...writesOf('delete', create.id).filter((op) => op.outcome !== 'failed').map((op) => op.start))]));
  for (const read of ops.filter((op) => op.type === 'read' && op.outcome === 'ok')) {
    const seen = new Map(read.stories.map((s) => [s.title, s]));
    for (const [title, count] of countTitles(read.stories)) {
      if (count > 1) flag('duplicated', `"${title}" ${count} times in a read on ${read.node}`);
      const create = byTitle.get(title);
      if (!create) flag('phantom', `"${title}" in a read on ${read.node}, made by no create`);
      else if (create.outcome === 'failed') flag('phantom', `"${title}" in a read on ${read.node}, its create failed`);
      else if (create.start > read.end) flag('stale-read', `"${title}" read on ${read.node} before its create began`);
    }
    // Every acknowledged create before the read began is in it, unless a delete of it may
    // have run by the time the read ended.
    if (!read.truncated) {
      for (const create of ackedByEnd.slice(0, countBelow(ackedByEnd, read.start))) {
        if (!seen.has(create.title) && firstDeleteStart.get(create) >= read.end) {
          flag('stale-read', `a read on ${read.node} at ${ms(read.start)} missed "${create.title}", acknowledged at ${ms(create.end)}`);
        }
      }
    }
    // What the read shows of each story is what it may show.
    for (const story of read.stories) {
      const create = byTitle.get(story.title);
      if (create?.outcome !== 'ok') continue;
      if (writesOf('delete', create.id).some((op) => op.outcome === 'ok' && op.end < read.start)) {
        flag('stale-read', `a read on ${read.node} at ${ms(read.start)} saw "${create.title}", deleted before it began`);
      }
      const allowed = allowedDescriptions(writesOf('update', create.id), read.start, read.end);
      if (!allowed.has(story.description)) flag('stale-read', `a read on ${read.node} at ${ms(read.start)} saw "${create.title}" with ${JSON.stringify(story.description)}, expected one of ${JSON.stringify([...allowed])}`);
    }
    for (const story of read.stories) {
      if (failedValues.has(story.description)) flag('lost-update', `a failed update's value ${story.description} was read`);
    }
  }

  checkTabs(tabs, creates, final, flag);
}

/**
 * The descriptions a story may show to a read that began at `start` and ended at `end`: the
 * last update acknowledged before `start` (or none), any later update that began before `end`
 * and did not fail, and any update whose outcome is unknown (it may take effect at any time).
 */
function allowedDescriptions(updates, start, end = Infinity) {
  const before = updates.filter((op) => op.outcome === 'ok' && op.end < start);
  const base = before.length ? before[before.length - 1].description : null;
  const allowed = new Set([base]);
  const from = before.length ? updates.indexOf(before[before.length - 1]) + 1 : 0;
  for (const [i, op] of updates.entries()) {
    if (op.outcome === 'unknown' && op.start < end) allowed.add(op.description);
    else if (op.outcome === 'ok' && i >= from && op.start < end) allowed.add(op.description);
  }
  return allowed;
}

function checkTabs(tabs, creates, final, flag) {
  const byPosition = new Map();
  let head = null;
  for (const tab of tabs) {
    let previous = null;
    for (const event of tab.events) {
      if (event.errors) { flag('tab-error', `${tab.tab}: ${JSON.stringify(event.errors).slice(0, 200)}`); continue; }
      if (event.data?.__typename === 'ChannelResetEvent') { previous = null; continue; }
      const position = parsePosition(event.position);
      if (!position) { flag('tab-order', `${tab.tab}: an event without a position`); continue; }
      if (previous) {
        if (position.epoch !== previous.epoch) flag('tab-gap', `${tab.tab}: epoch changed without a reset at ${event.position}`);
        else if (position.seq === previous.seq) flag('tab-duplicate', `${tab.tab}: ${event.position} twice`);
        else if (position.seq < previous.seq) flag('tab-order', `${tab.tab}: ${event.position} after ${previous.text}`);
        else if (position.seq > previous.seq + 1) flag('tab-gap', `${tab.tab}: ${previous.text} then ${event.position}`);
      }
      previous = { ...position, text: event.position };
      const shape = JSON.stringify(event.data);
      const other = byPosition.get(event.position);
      if (other === undefined) byPosition.set(event.position, shape);
      else if (other !== shape) flag('tab-disagree', `${tab.tab} at ${event.position}: ${shape} vs ${other}`);
      if (!head || position.seq > head.seq) head = position;
    }
  }
  const byTitle = new Map(creates.map((op) => [op.title, op]));
  for (const tab of tabs) {
    const positioned = tab.events.filter((e) => e.position);
    const last = parsePosition(positioned[positioned.length - 1]?.position);
    if (head && (!last || last.seq < head.seq || last.epoch !== head.epoch)) {
      flag('tab-behind', `${tab.tab} ended at ${positioned[positioned.length - 1]?.position ?? 'nothing'}, the log at ${head.epoch}:${head.seq}`);
    }
    const reset = tab.events.some((e) => e.data?.__typename === 'ChannelResetEvent');
    const created = new Map();
    for (const event of tab.events) {
      if (event.data?.__typename !== 'StoryCreateEvent') continue;
      const { title, id } = event.data.story;
      if (created.has(title)) flag('duplicated', `${tab.tab}: "${title}" created twice in the events`);
      created.set(title, id);
      if (byTitle.get(title)?.outcome === 'failed') flag('phantom', `${tab.tab}: an event for "${title}", whose create failed`);
    }
    // A tab that saw the log from its first entry replays to the final list.
    const whole = !reset && parsePosition(positioned[0]?.position)?.seq === 1;
    if (!whole) continue;
    const live = new Map();
    for (const event of tab.events) {
      const data = event.data;
      if (data?.__typename === 'StoryCreateEvent') live.set(data.story.id, data.story.title);
      else if (data?.__typename === 'StoryDeleteEvent') live.delete(data.deletedStoryId);
    }
    const replayed = [...live.values()].sort();
    const finalTitles = final.map((s) => s.title).sort();
    if (JSON.stringify(replayed) !== JSON.stringify(finalTitles)) {
      const missing = finalTitles.filter((t) => !replayed.includes(t));
      const extra = replayed.filter((t) => !finalTitles.includes(t));
      flag('tab-log', `${tab.tab}'s events replay to ${replayed.length} stories, the list has ${finalTitles.length} (missing ${JSON.stringify(missing.slice(0, 5))}, extra ${JSON.stringify(extra.slice(0, 5))})`);
    }
  }
}

/** How many of `sorted` (by `end`) ended before `time`. */
function countBelow(sorted, time) {
  let [low, high] = [0, sorted.length];
  while (low < high) {
    const middle = (low + high) >> 1;
    if (sorted[middle].end < time) low = middle + 1;
    else high = middle;
  }
  return low;
}

function parsePosition(text) {
  const match = /^([0-9a-f]{16}):([1-9][0-9]*)$/.exec(text ?? '');
  return match ? { epoch: match[1], seq: Number(match[2]) } : null;
}

function countTitles(stories) {
  const count = new Map();
  for (const { title } of stories) count.set(title, (count.get(title) ?? 0) + 1);
  return count;
}

const ms = (t) => `${(t / 1000).toFixed(3)}s`;

/** Anomalies counted by kind. */
export function summarize(anomalies) {
  const byKind = {};
  for (const { kind } of anomalies) byKind[kind] = (byKind[kind] ?? 0) + 1;
  return byKind;
}

/** What a run did and found, as lines to print: operations by outcome, faults, anomalies. */
export function describe(history, anomalies) {
  const ops = {};
  for (const op of history.filter((e) => e.kind === 'op')) {
    ops[op.type] ??= { ok: 0, failed: 0, unknown: 0 };
    ops[op.type][op.outcome] += 1;
  }
  const faults = {};
  for (const fault of history.filter((e) => e.kind === 'fault')) faults[fault.type] = (faults[fault.type] ?? 0) + 1;
  const events = history.filter((e) => e.kind === 'tab').reduce((n, tab) => n + tab.events.length, 0);
  return [
    `operations: ${JSON.stringify(ops)}`,
    `faults: ${JSON.stringify(faults)}`,
    `tab events: ${events}`,
    `anomalies: ${JSON.stringify(summarize(anomalies))}`,
    ...anomalies.slice(0, 40).map((anomaly) => `  ${anomaly.kind} ${anomaly.user}: ${anomaly.detail}`),
  ];
}
