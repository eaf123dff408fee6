import assert from 'node:assert/strict';
import { test } from 'node:test';
import { oracleApp } from '../../src/evaluator/oracle';
import { POLICIES, selectPolicies } from '../../src/evaluator/policies';
import { percentileWithZeros, totalsByPolicy } from '../../src/evaluator/report';
import { DEFAULT_KNOBS, simulateApp } from '../../src/evaluator/simulate';
import { parseTrace } from '../../src/evaluator/trace';

// 50 output tokens at 50 tokens/s and no prompt: every request runs exactly 1 s.
const knobs = { ...DEFAULT_KNOBS, coldStartS: 60, slotsPerNode: 1, maxNodes: 10, teardownGraceS: 10, pricePerHour: 3.6 };
const at = (...seconds: number[]) => ({
  app: 'hand',
  arrivals: seconds.map((s) => ({ atMs: s * 1000, promptTokens: 0, outputTokens: 50 })),
});
const policy = (name: string) => POLICIES.find((p) => p.name === name)!;

test('oracle by hand: a gap shorter than the boot is kept, a longer one costs one boot; every node pays its first boot', () => {
  // One node: boot 60 + busy 1 + gap 9 (kept) + busy 1 + gap 189 (→ 60) + busy 1 = 132 s.
  const one = oracleApp(at(0, 10, 200), knobs);
  assert.equal(one.nodeSeconds, 132);
  assert.equal(one.coldStarts, 0);
  // Two at once with one slot each: a second node, 60 + 1 more.
  const two = oracleApp(at(0, 0, 10, 200), knobs);
  assert.equal(two.nodeSeconds, 193);
  // $3.6 an hour is $0.001 a second.
  assert.ok(Math.abs(two.costUsd - 0.193) < 1e-9);
  assert.ok(Math.abs(two.idleCostUsd - (193 - 4) / 1000) < 1e-9, 'idle = boots and kept gaps');
});

test('the pool machine in virtual time, by hand: fixed 10 s timeout, two requests 100 s apart', () => {
  // Each request: boot 60 s (billed), run 1 s, idle 10 s, grace 10 s → 81 s of node time and a cold start.
  const result = simulateApp(at(0, 100), policy('fixed-10s'), knobs, 300_000);
  assert.equal(result.nodeSeconds, 162);
  assert.equal(result.coldStarts, 2);
  assert.equal(result.coldWaitedRequests, 2);
  assert.deepEqual(result.waitsMs, [60_000, 60_000]);
  assert.equal(result.boots, 2);
  // With 600 s the node stays from its first boot to the end of the 300 s window: one cold start.
  const kept = simulateApp(at(0, 100), policy('fixed-600s'), knobs, 300_000);
  assert.equal(kept.nodeSeconds, 300);
  assert.equal(kept.coldStarts, 1);
});

test('the stopped rung in virtual time, by hand: an idle node is stopped, not terminated, and the next request waits its 20 s wake', () => {
  // 0: boot 60, run 1, idle 10, grace 10 → stopped at 81. 100: start, wake 20, run 1, idle 10, grace 10 → stopped at 141.
  const ladder = { ...knobs, stopPricePerHour: 0.036, stopWakeS: 20 };
  const result = simulateApp(at(0, 100), { ...policy('fixed-10s'), ladder: true }, ladder, 300_000);
  assert.equal(result.nodeSeconds, 81 + 41, 'GPU time: running only');
  assert.deepEqual(result.waitsMs, [60_000, 20_000]);
  assert.equal(result.boots, 1, 'one node all along');
  assert.equal(result.coldStarts, 2);
  assert.equal(result.wakesWaited, 1);
  // Stopped 81–100 and 141–300: 178 s at $0.036 an hour ($0.00001 a second).
  assert.ok(Math.abs((result.stoppedCostUsd ?? 0) - 178 * 0.00001) < 1e-9, String(result.stoppedCostUsd));
  assert.ok(Math.abs(result.costUsd - (122 * 0.001 + 178 * 0.00001)) < 1e-9);
  assert.equal(result.scaledToZero, 2, 'no GPU billed after each stop');
});

test('the adaptive policy in virtual time: arrivals every 9 minutes stop cold-starting once it has learned', () => {
  const every9min = at(...Array.from({ length: 40 }, (_, i) => i * 540));
  const span = 40 * 540_000;
  const fixed60 = simulateApp(every9min, { ...policy('fixed-60s') }, knobs, span);
  assert.equal(fixed60.coldStarts, 40, 'a fixed 60 s timeout cold-starts every time');
  const adaptive = simulateApp(every9min, { ...policy('adaptive'), idleTimeoutSeconds: 60 }, knobs, span);
  // The first request, and the ones before minSamples (10) gaps were seen, cold-start; then none.
  assert.ok(adaptive.coldStarts <= 11, `adaptive cold starts: ${adaptive.coldStarts}`);
  assert.ok(adaptive.coldStarts >= 1);
  assert.equal((adaptive.finalWindows as { mode: string }).mode, 'prewarm');
  assert.ok(adaptive.costUsd < fixed60.costUsd * 1.5, 'pre-warming costs about what the cold starts did');
});

test('scale-in: a node a burst added goes once the keep-alive window passes without needing it', () => {
  // A burst of 3 at 0 (three nodes), then one request every 20 s for 15 minutes: one node is enough.
  const arrivals = [0, 0, 0, ...Array.from({ length: 45 }, (_, i) => 70 + i * 20)];
  const result = simulateApp(at(...arrivals), policy('fixed-300s'), knobs, 1000_000);
  // Without scale-in all three would bill to the end (3 × 1000 s); the two extra go 300 s after the burst.
  assert.ok(result.nodeSeconds < 3 * 1000 - 2 * 500, `node seconds ${result.nodeSeconds}`);
  assert.ok(result.nodeSeconds >= 1000, 'the one node needed stays');
});

test('functions trace: a minute spreads its invocations inside it, seeded; bad rows are refused', () => {
  const csv = 'app,triggers,minute,count\na1,http,480,0\na1,http,481,3\nb2,timer,480,1\n';
  const trace = parseTrace(csv, 'f.csv', { seed: 1 });
  assert.equal(trace.spanMs, 2 * 60_000);
  const a1 = trace.apps.find((a) => a.app === 'a1')!;
  assert.equal(a1.arrivals.length, 3);
  for (const arrival of a1.arrivals) assert.ok(arrival.atMs >= 60_000 && arrival.atMs < 120_000);
  assert.deepEqual(parseTrace(csv, 'f.csv', { seed: 1 }), trace, 'one seed, one schedule');
  assert.throws(() => parseTrace('app,triggers,minute,count\na1,http,x,3\n', 'f.csv', { seed: 1 }), /bad row 2/);
  assert.throws(() => parseTrace(csv, 'f.csv', { seed: 1, apps: ['zz'] }), /no app zz/);
  assert.throws(() => parseTrace('a,b\n1,2\n', 'f.csv', { seed: 1 }), /unknown trace format/);
});

test('report: percentiles count the requests that waited 0, totals compare to fixed-600s and the oracle', () => {
  assert.equal(percentileWithZeros([5000], 100, 50), 0);
  assert.equal(percentileWithZeros([5000], 100, 99), 0);
  assert.equal(percentileWithZeros([5000, 7000], 100, 99), 5000);
  assert.equal(percentileWithZeros([5000, 7000], 100, 100), 7000);
  const totals = totalsByPolicy([
    { ...oracleApp(at(0, 10, 200), knobs) },
    { ...simulateApp(at(0, 10, 200), policy('fixed-600s'), knobs, 300_000) },
  ]);
  const oracle = totals.find((t) => t.policy === 'oracle')!;
  const fixed = totals.find((t) => t.policy === 'fixed-600s')!;
  assert.equal(oracle.vsOracle, 1);
  assert.equal(fixed.vsFixed600, 1);
  assert.ok((fixed.vsOracle ?? 0) > 1, 'no policy beats the oracle');
  assert.throws(() => selectPolicies(['nope']), /unknown policy nope/);
});
