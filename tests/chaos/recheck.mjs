#!/usr/bin/env node
// Check a history written by run.mjs again (after a change to the checker, or to look at an
// old run): `node tests/chaos/recheck.mjs target/chaos-history.jsonl`. Exits 1 on any anomaly.
import { readFileSync } from 'node:fs';
import { check, describe } from './check.mjs';

const history = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((line) => JSON.parse(line));
const anomalies = check(history);
for (const line of describe(history, anomalies)) process.stdout.write(`${line}\n`);
process.exit(anomalies.length ? 1 : 0);
