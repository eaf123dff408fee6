import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { burstArrivals, percentile, traceArrivals } from '../../src/simulator/arrivals';

const fixture = (name: string) => readFileSync(path.join(__dirname, '..', 'fixtures', 'traces', name), 'utf8');
const options = { speedup: 1, maxPromptTokens: 100_000, maxTokens: 100_000, seed: 1 };

test('bursts: batches of B at each interval', () => {
  const arrivals = burstArrivals(5, 2, 1000);
  assert.deepEqual(
    arrivals.map((a) => a.atMs),
    [0, 0, 1000, 1000, 2000],
  );
});

test('LLM trace replay keeps the real gaps, scaled by the speed-up, and the token counts (capped)', () => {
  const csv = fixture('llm-code-first-40.csv');
  const real = traceArrivals(csv, options);
  assert.equal(real.length, 40);
  // Rows 1 and 2: 18:17:03.97996 and 18:17:04.03196 → 52 ms apart; 4808 and 3180 prompt tokens.
  assert.equal(real[0].atMs, 0);
  assert.equal(real[1].atMs, 52);
  assert.deepEqual([real[0].promptTokens, real[0].maxTokens], [4808, 10]);
  const fast = traceArrivals(csv, { ...options, speedup: 10, limit: 5, maxPromptTokens: 1000 });
  assert.equal(fast.length, 5);
  assert.equal(fast[1].atMs, 5);
  assert.equal(fast[0].promptTokens, 1000);
  // Same file with CRLF line endings (as shipped) parses the same.
  assert.deepEqual(traceArrivals(csv.replace(/\n/g, '\r\n'), options), real);
});

test('functions trace replay: the busiest http app by default, arrivals spread in each minute, repeatable by seed', () => {
  const csv = fixture('functions-two-apps.csv');
  const a = traceArrivals(csv, options);
  assert.equal(a.length, 18 + 21 + 22);
  assert.ok(a.every((x, i) => i === 0 || x.atMs >= a[i - 1].atMs));
  assert.equal(a.filter((x) => x.atMs < 60_000).length, 18, 'minute 480 holds 18 arrivals');
  assert.deepEqual(traceArrivals(csv, options), a, 'same seed, same schedule');
  assert.notDeepEqual(traceArrivals(csv, { ...options, seed: 2 }), a);
  assert.equal(traceArrivals(csv, { ...options, app: '42b3084cd916' }).length, 36);
  assert.throws(() => traceArrivals(csv, { ...options, app: 'nope' }), /not in the trace/);
  assert.throws(() => traceArrivals('a,b\n1,2', options), /unknown trace format/);
});

test('percentiles: nearest rank', () => {
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([5, 1, 3], 50), 3);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
});
