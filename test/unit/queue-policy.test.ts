import assert from 'node:assert/strict';
import { test } from 'node:test';
import { laterSnapshot, retryBackoffMs } from '../../src/domain/job-policy';
import { effectivePriority, enqueueJob, nextRetryAt, placeQueuedJobs, queueOrder } from '../../src/domain/placement';
import { newPoolState } from '../../src/domain/pool-view';
import { planPreemptions } from '../../src/domain/preemption';
import type { NodeRecord, PoolState, ProgressSnapshot } from '../../src/domain/types';
import { poolConfig } from '../helpers/stack';
import { asPoolKey } from '../../src/ids';

const MINUTE = 60_000;

function readyNode(id: string, slots: (string | null)[]): NodeRecord {
  return {
    id,
    laneIndex: 0,
    lane: { provider: 'mock', market: 'spot', gpu: 'x', pricePerHour: 1 },
    state: 'ready',
    requestedAt: 0,
    slots,
    provisioningAttempts: 1,
  };
}

/** A full pool at maxNodes: one node, one slot per running job given. */
function fullPool(running: Array<{ jobId: string; priority: number; placedAt?: number; attempt?: number }>, overrides = {}): PoolState {
  const state = newPoolState(asPoolKey('p'), poolConfig({ maxNodes: 1, slotsPerNode: running.length, ...overrides }));
  state.nodes.push(
    readyNode(
      'n1',
      running.map((r) => r.jobId),
    ),
  );
  running.forEach((r, slot) => {
    state.running.push({ jobId: r.jobId, attempt: r.attempt ?? 1, nodeId: 'n1', slot, placedAt: r.placedAt ?? slot, priority: r.priority });
  });
  return state;
}

test('aging: one level per agingSeconds waited, never above 1; 0 turns aging off', () => {
  const job = { jobId: 'a', attempt: 1, enqueuedAt: 0, priority: 5 };
  assert.equal(effectivePriority(job, 0, { agingSeconds: 300 }), 5);
  assert.equal(effectivePriority(job, 5 * MINUTE - 1, { agingSeconds: 300 }), 5);
  assert.equal(effectivePriority(job, 5 * MINUTE, { agingSeconds: 300 }), 4);
  assert.equal(effectivePriority(job, 20 * MINUTE, { agingSeconds: 300 }), 1);
  assert.equal(effectivePriority(job, 999 * MINUTE, { agingSeconds: 300 }), 1);
  assert.equal(effectivePriority(job, 999 * MINUTE, { agingSeconds: 0 }), 5);
  assert.equal(effectivePriority({ jobId: 'old', attempt: 1, enqueuedAt: 0 }, 0, {}), 3, 'jobs from before priorities count as 3');
});

test('queue order: aged priority, then jobs requeued from a lost node, then age, then arrival', () => {
  const state = newPoolState(asPoolKey('p'), poolConfig({ agingSeconds: 300 }));
  enqueueJob(state, { jobId: 'low-old', attempt: 1, enqueuedAt: 0, priority: 5 }, false);
  enqueueJob(state, { jobId: 'mid', attempt: 1, enqueuedAt: 19 * MINUTE, priority: 3 }, false);
  enqueueJob(state, { jobId: 'high', attempt: 1, enqueuedAt: 19 * MINUTE, priority: 1 }, false);
  enqueueJob(state, { jobId: 'mid-requeued', attempt: 2, enqueuedAt: 20 * MINUTE, priority: 3 }, true);
  assert.deepEqual(
    queueOrder({ ...state, config: { ...state.config, agingSeconds: 0 } }, 20 * MINUTE).map((j) => j.jobId),
    ['high', 'mid-requeued', 'mid', 'low-old'],
    'without aging',
  );
  // At 20 min the priority-5 job has aged to 1 and is older than the priority-1 job.
  assert.deepEqual(
    queueOrder(state, 20 * MINUTE).map((j) => j.jobId),
    ['low-old', 'high', 'mid-requeued', 'mid'],
  );
});

test('placement skips jobs in retry backoff and says when the first becomes placeable', () => {
  const state = newPoolState(asPoolKey('p'), poolConfig({ slotsPerNode: 2 }));
  state.nodes.push(readyNode('n1', [null, null]));
  enqueueJob(state, { jobId: 'backing-off', attempt: 2, enqueuedAt: 0, notBefore: 4000, priority: 1 }, true);
  enqueueJob(state, { jobId: 'ready', attempt: 1, enqueuedAt: 0, priority: 5 }, false);
  assert.deepEqual(
    placeQueuedJobs(state, 1000).map((d) => d.job.jobId),
    ['ready'],
  );
  assert.equal(nextRetryAt(state, 1000), 4000);
  assert.deepEqual(
    placeQueuedJobs(state, 4000).map((d) => d.job.jobId),
    ['backing-off'],
  );
  assert.equal(nextRetryAt(state, 4000), undefined);
});

test('preemption pairs the best waiting jobs with the worst running ones while the gap holds', () => {
  const state = fullPool([
    { jobId: 'r5-old', priority: 5, placedAt: 1 },
    { jobId: 'r5-new', priority: 5, placedAt: 2 },
    { jobId: 'r4', priority: 4 },
  ]);
  enqueueJob(state, { jobId: 'w1', attempt: 1, enqueuedAt: 10, priority: 1 }, false);
  enqueueJob(state, { jobId: 'w2', attempt: 1, enqueuedAt: 11, priority: 2 }, false);
  enqueueJob(state, { jobId: 'w3', attempt: 1, enqueuedAt: 12, priority: 3 }, false);
  const plan = planPreemptions(state, 100);
  assert.deepEqual(
    plan.choices.map((c) => [c.preemptor.jobId, c.victim.jobId]),
    [
      ['w1', 'r5-new'], // newest of the lowest first: least work thrown away
      ['w2', 'r5-old'],
    ],
  );
  assert.match(plan.reasons[0], /w3 \(priority 3\) does not outrank .* r4 \(priority 4\) by the gap of 2/);
});

test('no preemption while capacity can still come: below maxNodes, a node booting, a free slot, or a gap too small', () => {
  const waiting = (state: PoolState, priority = 1) => {
    enqueueJob(state, { jobId: 'w', attempt: 1, enqueuedAt: 0, priority }, false);
    return state;
  };
  assert.match(planPreemptions(waiting(fullPool([{ jobId: 'r', priority: 5 }], { maxNodes: 2 })), 0).reasons[0], /can still add nodes/);
  const booting = waiting(fullPool([{ jobId: 'r', priority: 5 }], { maxNodes: 2 }));
  booting.nodes.push({ ...readyNode('n2', [null]), state: 'provisioning' });
  assert.match(planPreemptions(booting, 0).reasons[0], /on its way/);
  assert.match(planPreemptions(waiting(fullPool([{ jobId: 'r', priority: 4 }]), 3), 0).reasons[0], /gap of 2/);
  assert.equal(planPreemptions(waiting(fullPool([{ jobId: 'r', priority: 4 }], { preemptPriorityGap: 3 }), 2), 0).choices.length, 0);
  assert.equal(planPreemptions(waiting(fullPool([{ jobId: 'r', priority: 5 }])), 0).choices.length, 1);
  // A job that aged up from 5 to 1 does not preempt: priorities are compared before aging.
  const aged = fullPool([{ jobId: 'r', priority: 3 }], { agingSeconds: 1 });
  enqueueJob(aged, { jobId: 'w', attempt: 1, enqueuedAt: 0, priority: 5 }, false);
  assert.equal(planPreemptions(aged, 10 * MINUTE).choices.length, 0);
});

test('a job on its fourth attempt is not preempted again, so repeated preemption cannot starve it', () => {
  const state = fullPool([
    { jobId: 'thrice', priority: 5, placedAt: 9, attempt: 4 },
    { jobId: 'fresh', priority: 5, placedAt: 1, attempt: 1 },
  ]);
  enqueueJob(state, { jobId: 'w1', attempt: 1, enqueuedAt: 10, priority: 1 }, false);
  enqueueJob(state, { jobId: 'w2', attempt: 1, enqueuedAt: 11, priority: 1 }, false);
  const plan = planPreemptions(state, 100);
  assert.deepEqual(
    plan.choices.map((c) => [c.preemptor.jobId, c.victim.jobId]),
    [['w1', 'fresh']],
    'the newest placement is skipped: it was preempted before',
  );
  assert.match(plan.reasons.join(' '), /1 on attempt 4 or later are not preempted again/);
});

test('no VRAM counts as no capacity: with every lane short and the extra node stuck looking for one, the pool preempts', () => {
  const state = fullPool([{ jobId: 'r', priority: 5 }], { maxNodes: 2 });
  enqueueJob(state, { jobId: 'w', attempt: 1, enqueuedAt: 0, priority: 1 }, false);
  state.nodes.push({ ...readyNode('n2', [null]), state: 'provisioning', laneIndex: -1 });
  state.laneCooldownUntil = { '0': 60_000, '1': 60_000 };
  assert.deepEqual(
    planPreemptions(state, 1_000).choices.map((c) => c.victim.jobId),
    ['r'],
  );
  // Once a lane opens again the extra node will try it: it is on its way, no preemption.
  assert.match(planPreemptions(state, 60_000).reasons[0], /on its way/);
  // Below maxNodes too: room for more nodes means nothing while every lane is short.
  const roomy = fullPool([{ jobId: 'r', priority: 5 }], { maxNodes: 3 });
  enqueueJob(roomy, { jobId: 'w', attempt: 1, enqueuedAt: 0, priority: 1 }, false);
  roomy.laneCooldownUntil = { '0': 60_000, '1': 60_000 };
  assert.deepEqual(
    planPreemptions(roomy, 1_000).choices.map((c) => c.victim.jobId),
    ['r'],
  );
  assert.match(planPreemptions(roomy, 60_000).reasons[0], /can still add nodes/);
});

test('a preemption under way serves the top waiting job: asking again does not stop a second job for it', () => {
  const state = fullPool([
    { jobId: 'a', priority: 5 },
    { jobId: 'b', priority: 5 },
  ]);
  enqueueJob(state, { jobId: 'w', attempt: 1, enqueuedAt: 0, priority: 1 }, false);
  const first = planPreemptions(state, 0);
  assert.equal(first.choices.length, 1);
  first.choices[0].victim.preempting = true;
  const again = planPreemptions(state, 0);
  assert.equal(again.choices.length, 0);
  assert.match(again.reasons.join(' '), /already under way/);
});

test('retry backoff doubles from 2 s and stops growing at 60 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 10].map(retryBackoffMs), [2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
});

test('the snapshot kept is the one that got further, and one with text beats a bare count', () => {
  const snap = (completionTokens: number, text: string, at = 0): ProgressSnapshot => ({
    attempt: 1,
    completionTokens,
    text,
    at,
    source: 'heartbeat',
  });
  assert.equal(laterSnapshot(snap(5, 'a b c d e'), snap(9, 'a b c d e f g h i'))?.completionTokens, 9);
  assert.equal(laterSnapshot(snap(5, 'a b c d e'), { ...snap(50, ''), source: 'node' })?.completionTokens, 5, 'no text, no resume');
  assert.equal(laterSnapshot(undefined, snap(1, 'a'))?.completionTokens, 1);
});
