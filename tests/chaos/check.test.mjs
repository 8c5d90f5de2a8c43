// The checker can fail: a clean history passes, and each kind of anomaly, put into a history
// by hand, is reported as that kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check, summarize } from './check.mjs';

const P = (seq) => `00000000000000aa:${seq}`;
const op = (type, start, end, outcome, fields = {}) => ({ kind: 'op', user: 'u', client: 'u/c1', type, node: 'node-1', start, end, outcome, ...fields });
const story = (n, description = null) => ({ id: `s${n}`, title: `t${n}`, description });
const final = (stories, node = 'node-1') => ({ kind: 'final', user: 'u', node, stories });
const created = (n, seq) => ({ position: P(seq), data: { __typename: 'StoryCreateEvent', story: { id: `s${n}`, title: `t${n}` } } });
const tab = (events, name = 'u/t1') => ({ kind: 'tab', user: 'u', tab: name, events, connections: [] });

/** Two creates, an update, a read and a tab: all consistent. */
function clean() {
  return [
    op('create', 0, 10, 'ok', { title: 't1', id: 's1' }),
    op('create', 20, 30, 'ok', { title: 't2', id: 's2' }),
    op('update', 40, 50, 'ok', { id: 's1', description: 'd1' }),
    op('read', 60, 70, 'ok', { stories: [story(2), story(1, 'd1')] }),
    op('create', 80, 90, 'failed', { title: 't3' }),
    op('create', 80, 90, 'unknown', { title: 't4' }),
    final([story(2), story(1, 'd1')]),
    final([story(2), story(1, 'd1')], 'node-2'),
    tab([created(1, 1), created(2, 2), { position: P(3), data: { __typename: 'StoryUpdateEvent', story: { id: 's1', description: 'd1' } } }]),
  ];
}

const kinds = (history) => summarize(check(history));

test('a consistent history has no anomaly', () => {
  assert.deepEqual(check(clean()), []);
});

test('each kind of anomaly is found', () => {
  const cases = {
    lost: (h) => h.filter((e) => e.kind !== 'final').concat(final([story(2)]), final([story(2)], 'node-2')),
    converged: (h) => h.map((e) => (e.kind === 'final' && e.node === 'node-2' ? final([story(1, 'd1'), story(2)], 'node-2') : e)),
    duplicated: (h) => h.map((e) => (e.kind === 'op' && e.type === 'read' ? { ...e, stories: [story(2), story(1, 'd1'), story(1, 'd1')] } : e)),
    phantom: (h) => h.map((e) => (e.kind === 'op' && e.type === 'read' ? { ...e, stories: [story(3), story(2), story(1, 'd1')] } : e)),
    'lost-update': (h) => h.filter((e) => e.kind !== 'final').concat(final([story(2), story(1)]), final([story(2), story(1)], 'node-2')),
    order: (h) => h.filter((e) => e.kind !== 'final').concat(final([story(1, 'd1'), story(2)]), final([story(1, 'd1'), story(2)], 'node-2')),
    'stale-read': (h) => h.map((e) => (e.kind === 'op' && e.type === 'read' ? { ...e, stories: [story(2), story(1)] } : e)),
    resurrected: (h) => [...h, op('delete', 100, 110, 'ok', { id: 's2' })],
    'tab-gap': (h) => h.map((e) => (e.kind === 'tab' ? tab([created(1, 1), created(2, 3)]) : e)),
    'tab-duplicate': (h) => h.map((e) => (e.kind === 'tab' ? tab([created(1, 1), created(1, 1), created(2, 2)]) : e)),
    'tab-disagree': (h) => [...h, tab([created(2, 1)], 'u/t2')],
    'tab-behind': (h) => [...h, tab([created(1, 1)], 'u/t2')],
    'tab-log': (h) => h.map((e) => (e.kind === 'tab' ? tab([created(1, 1), created(5, 2)]) : e)),
    'not-found': (h) => [...h, op('update', 100, 110, 'failed', { id: 's2', description: 'x', notFound: true })],
  };
  for (const [kind, make] of Object.entries(cases)) {
    const found = kinds(make(clean()));
    assert.ok(found[kind] > 0, `${kind} not found; found ${JSON.stringify(found)}`);
  }
});

test('an unknown outcome may or may not have happened; a failed one must not have', () => {
  const withUnknown = clean().filter((e) => e.kind !== 'final')
    .map((e) => (e.kind === 'tab' ? tab([...e.events, created(4, 4)]) : e))
    .concat(final([story(4), story(2), story(1, 'd1')]), final([story(4), story(2), story(1, 'd1')], 'node-2'));
  assert.deepEqual(kinds(withUnknown), {});
  const withFailed = clean().filter((e) => e.kind !== 'final').concat(final([story(3), story(2), story(1, 'd1')]), final([story(3), story(2), story(1, 'd1')], 'node-2'));
  assert.deepEqual(kinds(withFailed), { phantom: 1, 'tab-log': 1 });
});

test('a read concurrent with a write may see it or not; one after it must', () => {
  const concurrent = [...clean(), op('update', 100, 200, 'ok', { id: 's2', description: 'd2' }), op('read', 150, 160, 'ok', { stories: [story(2), story(1, 'd1')] })];
  assert.deepEqual(kinds(concurrent.map((e) => (e.kind === 'final' ? final([story(2, 'd2'), story(1, 'd1')], e.node) : e))), {});
  const after = [...clean(), op('update', 100, 120, 'ok', { id: 's2', description: 'd2' }), op('read', 150, 160, 'ok', { stories: [story(2), story(1, 'd1')] })];
  assert.deepEqual(kinds(after.map((e) => (e.kind === 'final' ? final([story(2, 'd2'), story(1, 'd1')], e.node) : e))), { 'stale-read': 1 });
});
