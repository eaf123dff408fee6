/**
 * The gap replay of the warm-state ladder (src/evaluator/gap-replay.ts), by hand: each node's gaps, the fixed
 * timeout's bill, the two-state oracle equal to oracle.ts's, and a learned policy on a periodic app.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LADDER_KNOBS, GAP_POLICIES, nodeGaps, replayGaps, runGapPolicies } from '../../src/evaluator/gap-replay';
import { gapTotals } from '../../src/evaluator/ladder-report';
import { oracleApp } from '../../src/evaluator/oracle';
import { DEFAULT_KNOBS } from '../../src/evaluator/simulate';
import { seededRandom } from '../../src/domain/random';

// One slot per node, output tokens run at 1 a second: a request of n tokens runs n seconds. $3.6/h = $0.001/s.
const knobs = {
  ...DEFAULT_KNOBS,
  coldStartS: 60,
  slotsPerNode: 1,
  maxNodes: 10,
  teardownGraceS: 10,
  pricePerHour: 3.6,
  decodeTokensPerS: 1,
};
const app = (runs: Array<[number, number]>) => ({
  app: 'hand',
  arrivals: runs.map(([atS, forS]) => ({ atMs: atS * 1000, promptTokens: 0, outputTokens: forS })),
});
const close = (actual: number, expected: number, message?: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${message ?? ''} ${actual} ≠ ${expected}`);

test('node k is busy while k nodes are needed: its gaps and its tail to the end of the trace', () => {
  // A 0–10 s, B 5–15 s, C 100–110 s: node 1 busy 0–15 and 100–110, node 2 busy 5–10.
  const nodes = nodeGaps(
    app([
      [0, 10],
      [5, 10],
      [100, 10],
    ]),
    knobs,
    200_000,
  );
  assert.deepEqual(nodes, [
    { gaps: [{ startMs: 15_000, lengthMs: 85_000 }], busyMs: 25_000, tailMs: 90_000 },
    { gaps: [], busyMs: 5_000, tailMs: 190_000 },
  ]);
});

test('the fixed timeout by hand: first boots, busy time, gaps and tails kept up to 600 s + grace', () => {
  const a = app([
    [0, 10],
    [5, 10],
    [100, 10],
  ]);
  const result = replayGaps(a, nodeGaps(a, knobs, 200_000), 'fixed-600s', knobs, DEFAULT_LADDER_KNOBS);
  // Node 1: boot 60 + busy 25 + gap 85 + tail 90; node 2: boot 60 + busy 5 + tail 190.
  close(result.costUsd, (60 + 25 + 85 + 90 + 60 + 5 + 190) / 1000);
  assert.equal(result.coldStarts, 0);
  // A gap of 1,000 s: kept 610 s, then a boot somebody waits for.
  const sparse = app([
    [0, 1],
    [1001, 1],
  ]);
  const long = replayGaps(sparse, nodeGaps(sparse, knobs, 1002_000), 'fixed-600s', knobs, DEFAULT_LADDER_KNOBS);
  close(long.costUsd, (60 + 2 + 610 + 60) / 1000);
  assert.deepEqual(long.waitsS, [60]);
});

test('the two-state oracle of the gap replay is oracle.ts’s, to the cent, and the ladder oracle never pays more', () => {
  const random = seededRandom(3);
  for (let round = 0; round < 20; round++) {
    const runs: Array<[number, number]> = [];
    let t = 0;
    for (let i = 0; i < 40; i++) {
      t += Math.floor(random() * 400);
      runs.push([t, 1 + Math.floor(random() * 30)]);
    }
    const a = app(runs);
    const nodes = nodeGaps(a, knobs, t * 1000 + 100_000);
    const mine = replayGaps(a, nodes, 'oracle', knobs, DEFAULT_LADDER_KNOBS);
    close(mine.costUsd, oracleApp(a, knobs).costUsd, `round ${round}`);
    assert.ok(replayGaps(a, nodes, 'oracle-ladder', knobs, DEFAULT_LADDER_KNOBS).costUsd <= mine.costUsd + 1e-12);
  }
});

test('a learned policy runs the fixed timeout until it has seen its samples', () => {
  const a = app(Array.from({ length: 8 }, (_, i): [number, number] => [i * 300, 1]));
  const nodes = nodeGaps(a, knobs, 2400_000);
  const fixed = replayGaps(a, nodes, 'fixed-600s', knobs, DEFAULT_LADDER_KNOBS);
  for (const policy of ['adaptive', 'adaptive-ladder'] as const)
    close(replayGaps(a, nodes, policy, knobs, DEFAULT_LADDER_KNOBS).costUsd, fixed.costUsd, policy);
});

test('a 9-minute timer: the ladder stops the node between runs and wakes it in time; cheaper than pre-warmed boots, no more cold starts than fixed', () => {
  const a = app(Array.from({ length: 60 }, (_, i): [number, number] => [i * 540, 1]));
  const results = GAP_POLICIES.map((p) => replayGaps(a, nodeGaps(a, knobs, 60 * 540_000), p, knobs, DEFAULT_LADDER_KNOBS));
  const cost = Object.fromEntries(results.map((r) => [r.policy, r.costUsd]));
  const cold = Object.fromEntries(results.map((r) => [r.policy, r.coldStarts]));
  assert.ok(cost['adaptive-ladder'] < cost.adaptive && cost.adaptive < cost['fixed-600s'], JSON.stringify(cost));
  assert.ok(cost['oracle-ladder'] <= cost['adaptive-ladder'], JSON.stringify(cost));
  assert.ok(cold['adaptive-ladder'] <= cold['fixed-600s'], JSON.stringify(cold));
  const totals = gapTotals(results);
  const row = totals.find((t) => t.policy === 'adaptive-ladder')!;
  close(row.vsFixed600!, cost['adaptive-ladder'] / cost['fixed-600s']);
  close(row.vsLadderOracle!, cost['adaptive-ladder'] / cost['oracle-ladder']);
  // Every policy over a whole trace: one row each.
  assert.deepEqual(
    gapTotals(runGapPolicies([a], knobs, DEFAULT_LADDER_KNOBS, 60 * 540_000)).map((t) => t.policy),
    [...GAP_POLICIES],
  );
});
