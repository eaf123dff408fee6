/**
 * The warm-state ladder's cost model, oracle and chooser (src/domain/warm-ladder.ts), by hand. Prices are picked
 * so that a second of running costs $0.001 and a second stopped $0.0001.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GAP_BIN_COUNT, gapBin, gapOutcome } from '../../src/domain/keep-alive';
import {
  chooseLadderPlan,
  type Ladder,
  ladderGapOutcome,
  ladderOracleGapCost,
  ladderTailCost,
  planIsFeasible,
} from '../../src/domain/warm-ladder';
import { seededRandom } from '../../src/domain/random';

const ladder: Ladder = {
  runPerHour: 3.6,
  bootS: 60,
  down: { stopped: { perHour: 0.36, wakeS: 20 } },
  maxStoppedS: 1000,
};
const twoState: Ladder = { ...ladder, down: {} };
const close = (actual: number, expected: number, message?: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${message ?? ''} ${actual} ≠ ${expected}`);

test('a kept node pays the gap; past the keep it goes down and the arrival waits that rung’s wake, billed as running', () => {
  const keep = { keepS: 100, down: 'stopped' as const };
  assert.deepEqual(ladderGapOutcome(50, keep, ladder, 10), { costUsd: 0.05, waitS: 0 });
  // 110 s running, 90 s stopped, 20 s waking.
  const after = ladderGapOutcome(200, keep, ladder, 10);
  close(after.costUsd, 0.11 + 0.009 + 0.02);
  assert.equal(after.waitS, 20);
  assert.equal(after.wokeFrom, 'stopped');
  // Stopped past maxStoppedS (1,000 s): terminated then, so the arrival waits a whole boot.
  const long = ladderGapOutcome(2000, keep, ladder, 10);
  close(long.costUsd, 0.11 + 0.1 + 0.06);
  assert.equal(long.waitS, 60);
  assert.equal(long.wokeFrom, 'terminated');
});

test('a pre-warm from stopped: down after the grace, waking so it runs again by the due time; early arrivals wait a wake', () => {
  const plan = { keepS: 400, down: 'stopped' as const, prewarmS: 300 };
  // 10 s grace, stopped from 10 s to 280 s, waking 280–300 s, running 300–350 s.
  const onTime = ladderGapOutcome(350, plan, ladder, 10);
  close(onTime.costUsd, 0.01 + 0.027 + 0.02 + 0.05);
  assert.equal(onTime.waitS, 0);
  const early = ladderGapOutcome(100, plan, ladder, 10);
  close(early.costUsd, 0.01 + 0.009 + 0.02);
  assert.equal(early.waitS, 20);
  // Past the keep (410 s) it goes down again: a second wake.
  const late = ladderGapOutcome(500, plan, ladder, 10);
  close(late.costUsd, 0.057 + 0.11 + 0.009 + 0.02);
  assert.equal(late.waitS, 20);
  assert.equal(planIsFeasible({ keepS: 400, down: 'stopped', prewarmS: 25 }, ladder, 10), false, 'no time to go down and wake');
  assert.equal(planIsFeasible({ keepS: 200, down: 'stopped', prewarmS: 300 }, ladder, 10), false, 'kept less than it is due');
  assert.equal(planIsFeasible({ keepS: 400, down: 'stopped', prewarmS: 300 }, twoState, 10), false, 'a rung the lane lacks');
});

test('with only terminate, the ladder’s model is the two-state model of keep-alive.ts, gap for gap', () => {
  const plans = [{ keepS: 0 }, { keepS: 100 }, { keepS: 600 }, { keepS: 400, prewarmS: 300 }, { keepS: 900, prewarmS: 75 }];
  for (const p of plans) {
    for (const gap of [0, 5, 10, 60, 74, 75, 100, 299, 300, 350, 410, 411, 609, 610, 700, 5000]) {
      const two = gapOutcome(gap, { keepAliveS: p.keepS, ...(p.prewarmS !== undefined ? { prewarmS: p.prewarmS } : {}) }, 60, 10);
      const mine = ladderGapOutcome(gap, { ...p, down: 'terminated' }, twoState, 10);
      close(mine.costUsd, two.costSeconds * 0.001, `plan ${JSON.stringify(p)} gap ${gap}`);
      assert.equal(mine.waitS > 0, two.cold, `plan ${JSON.stringify(p)} gap ${gap}`);
    }
  }
});

test('a tail with no arrival: running until the plan goes down, then the rung’s price (stopped ends at maxStoppedS)', () => {
  close(ladderTailCost(50, { keepS: 100, down: 'stopped' }, ladder, 10), 0.05);
  close(ladderTailCost(310, { keepS: 100, down: 'stopped' }, ladder, 10), 0.11 + 0.02);
  close(ladderTailCost(5000, { keepS: 100, down: 'stopped' }, ladder, 10), 0.11 + 0.1);
  close(ladderTailCost(5000, { keepS: 100, down: 'terminated' }, ladder, 10), 0.11);
  // Pre-warmed at 280–300 s for nothing, kept to 410 s, then stopped.
  close(ladderTailCost(510, { keepS: 400, down: 'stopped', prewarmS: 300 }, ladder, 10), 0.01 + 0.027 + 0.13 + 0.01);
});

test('the ladder oracle takes the cheapest rung it can be back from in time; without rungs it is run × min(gap, boot)', () => {
  assert.deepEqual(ladderOracleGapCost(10, ladder), { costUsd: 0.01, rung: 'running' }, 'shorter than any wake');
  const thirty = ladderOracleGapCost(30, ladder);
  close(thirty.costUsd, 0.001 + 0.02);
  assert.equal(thirty.rung, 'stopped');
  close(ladderOracleGapCost(100, ladder).costUsd, 0.008 + 0.02);
  const past = ladderOracleGapCost(5000, ladder);
  assert.deepEqual(past, { costUsd: 0.06, rung: 'terminated' }, 'stopped longer than maxStoppedS is not a rung');
  for (const gap of [0, 10, 59, 60, 61, 1000, 1e6]) close(ladderOracleGapCost(gap, ladder, 'two-state').costUsd, 0.001 * Math.min(gap, 60));
  for (const gap of [0, 10, 30, 100, 900, 1e6])
    assert.ok(ladderOracleGapCost(gap, ladder).costUsd <= ladderOracleGapCost(gap, ladder, 'two-state').costUsd + 1e-12);
});

function histogram(gapsS: number[]): { bins: number[]; outOfRange: number } {
  const bins = Array.from({ length: GAP_BIN_COUNT }, () => 0);
  let outOfRange = 0;
  for (const g of gapsS) {
    const bin = gapBin(g * 1000);
    if (bin < 0) outOfRange += 1;
    else bins[bin] += 1;
  }
  return { bins, outOfRange };
}

test('9-minute gaps: the chooser stops the node at once and wakes it before the next arrival, cheaper than a pre-warmed boot, with no cold start', () => {
  const { bins, outOfRange } = histogram(Array.from({ length: 30 }, () => 540));
  const before = JSON.stringify(bins);
  // Storage at 1 % of the running price (the evaluator's default is 1.4 %: RunPod's stopped disk against $2/h).
  const cheapDisk: Ladder = { ...ladder, down: { stopped: { perHour: 0.036, wakeS: 20 } } };
  const choice = chooseLadderPlan(bins, outOfRange, cheapDisk, { graceS: 10, fixedKeepS: 600 });
  assert.equal(JSON.stringify(bins), before, 'the histogram is not mutated');
  assert.equal(choice.plan.down, 'stopped');
  assert.ok(choice.plan.prewarmS !== undefined && choice.plan.prewarmS <= 540, JSON.stringify(choice.plan));
  assert.equal(choice.expected.coldRate, 0);
  assert.equal(choice.fixed.coldRate, 0);
  const boot = chooseLadderPlan(bins, outOfRange, twoState, { graceS: 10, fixedKeepS: 600 });
  assert.equal(boot.plan.down, 'terminated');
  assert.ok(choice.expected.costUsd < boot.expected.costUsd, `${choice.expected.costUsd} vs ${boot.expected.costUsd}`);
  assert.ok(boot.expected.costUsd < choice.fixed.costUsd, 'both beat keeping the node 9 minutes');
  assert.ok(choice.perRung.stopped && choice.perRung.terminated, 'the view gets the best plan per rung');
  assert.match(choice.reason, /stopped right after the grace period/);
});

test('the chooser never picks more cold starts than the fixed timeout, nor a worse score, on random histograms', () => {
  const random = seededRandom(7);
  for (let round = 0; round < 200; round++) {
    const gaps = Array.from({ length: 5 + Math.floor(random() * 60) }, () => Math.exp(random() * Math.log(20_000)));
    const { bins, outOfRange } = histogram(gaps);
    for (const l of [ladder, twoState]) {
      const choice = chooseLadderPlan(bins, outOfRange, l, { graceS: 10, fixedKeepS: 600 });
      assert.ok(choice.expected.coldRate <= choice.fixed.coldRate + 1e-9, JSON.stringify({ gaps, choice }));
      assert.ok(planIsFeasible(choice.plan, l, 10));
    }
  }
});
