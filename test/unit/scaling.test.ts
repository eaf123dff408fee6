import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enqueueJob, placeQueuedJobs, requeueJobsOfNode } from '../../src/domain/placement';
import { newPoolState } from '../../src/domain/pool-view';
import { allLanesShortBackoffMs, availableLanes, desiredNodeCount, nodesToAdd, teardownCandidates } from '../../src/domain/scaling';
import type { NodeRecord, PoolState } from '../../src/domain/types';
import { poolConfig } from '../helpers/stack';
import { asPoolKey } from '../../src/ids';

function node(id: string, state: NodeRecord['state'], slots: (string | null)[], price = 1): NodeRecord {
  return {
    id,
    laneIndex: 0,
    lane: { provider: 'mock', market: 'spot', gpu: 'x', pricePerHour: price },
    state,
    requestedAt: 0,
    slots,
    provisioningAttempts: 1,
  };
}

function withQueue(state: PoolState, n: number): PoolState {
  const start = state.queue.length + state.running.length;
  for (let i = start; i < start + n; i++) enqueueJob(state, { jobId: `j${i}`, attempt: 1, enqueuedAt: i }, false);
  return state;
}

test('from zero: ceil(N / slotsPerNode), capped by maxNodes', () => {
  assert.equal(desiredNodeCount(withQueue(newPoolState(asPoolKey('p'), poolConfig({ slotsPerNode: 4, maxNodes: 10 })), 20)), 5);
  assert.equal(desiredNodeCount(withQueue(newPoolState(asPoolKey('p'), poolConfig({ slotsPerNode: 4, maxNodes: 3 })), 20)), 3);
  assert.equal(desiredNodeCount(withQueue(newPoolState(asPoolKey('p'), poolConfig({ slotsPerNode: 4 })), 1)), 1);
  assert.equal(desiredNodeCount(newPoolState(asPoolKey('p'), poolConfig({ minNodes: 0 }))), 0);
});

test('provisioning slots count as coming capacity: no second node for jobs a booting node will take', () => {
  const state = withQueue(newPoolState(asPoolKey('p'), poolConfig({ slotsPerNode: 4 })), 3);
  state.nodes.push(node('n1', 'provisioning', [null, null, null, null]));
  assert.equal(nodesToAdd(state), 0);
  withQueue(state, 2); // 5 queued for 4 incoming slots: 1 uncovered > threshold 0
  assert.equal(nodesToAdd(state), 1);
});

test('burst threshold over the baseline', () => {
  const state = newPoolState(asPoolKey('p'), poolConfig({ minNodes: 1, slotsPerNode: 2, burstThreshold: 3, maxNodes: 4 }));
  state.nodes.push(node('n1', 'ready', ['a', 'b']));
  withQueue(state, 3);
  assert.equal(nodesToAdd(state), 0, '3 uncovered is not past a threshold of 3');
  withQueue(state, 1);
  assert.equal(nodesToAdd(state), 2, '4 uncovered → 2 nodes of 2 slots');
  withQueue(state, 20);
  assert.equal(desiredNodeCount(state), 4, 'capped at maxNodes');
});

test('baseline is kept, suspended by scale-to-zero, and dropped while draining', () => {
  const state = newPoolState(asPoolKey('p'), poolConfig({ minNodes: 2, maxNodes: 3 }));
  assert.equal(nodesToAdd(state), 2);
  state.baselineSuspended = true;
  assert.equal(nodesToAdd(state), 0);
  state.baselineSuspended = false;
  state.draining = true;
  assert.equal(nodesToAdd(state), 0);
});

test('placement: arrival order, least-loaded ready node, never terminating, provisioning or suspect nodes', () => {
  const state = withQueue(newPoolState(asPoolKey('p'), poolConfig({ slotsPerNode: 2 })), 5);
  state.nodes.push(
    node('busy', 'ready', ['x', null]),
    node('free', 'ready', [null, null]),
    node('dying', 'terminating', [null, null]),
    node('boot', 'provisioning', [null, null]),
  );
  const suspect = node('suspect', 'ready', [null, null]);
  suspect.suspect = true;
  state.nodes.push(suspect);
  const placed = placeQueuedJobs(state, 100);
  assert.deepEqual(
    placed.map((p) => [p.job.jobId, p.node.id]),
    [
      ['j0', 'free'],
      ['j1', 'busy'],
      ['j2', 'free'],
    ],
  );
  assert.deepEqual(
    state.queue.map((q) => q.jobId),
    ['j3', 'j4'],
  );
});

test('a lost node sends its jobs to the front of the queue with the next attempt; stale arrivals are ignored', () => {
  const state = withQueue(newPoolState(asPoolKey('p'), poolConfig({ slotsPerNode: 2 })), 3);
  state.nodes.push(node('n1', 'ready', [null, null]));
  placeQueuedJobs(state, 1);
  const requeued = requeueJobsOfNode(state, 'n1', 2);
  assert.deepEqual(
    requeued.map((r) => [r.jobId, r.attempt]),
    [
      ['j0', 2],
      ['j1', 2],
    ],
  );
  assert.deepEqual(
    state.queue.map((q) => q.jobId),
    ['j0', 'j1', 'j2'],
  );
  assert.equal(enqueueJob(state, { jobId: 'j0', attempt: 2, enqueuedAt: 3 }, true), false, 'duplicate of the same attempt');
  assert.equal(state.queue.length, 3);
});

test('teardown candidates: idle nodes above the baseline, most expensive first', () => {
  const state = newPoolState(asPoolKey('p'), poolConfig({ minNodes: 1 }));
  state.nodes.push(node('cheap', 'ready', [null], 0.5), node('pricey', 'ready', [null], 2), node('working', 'ready', ['j'], 3));
  assert.deepEqual(
    teardownCandidates(state).map((n) => n.id),
    ['pricey', 'cheap'],
  );
});

test('lane cool-down and all-lanes-short backoff', () => {
  const config = poolConfig();
  assert.deepEqual(availableLanes(config, { '0': 5_000 }, 1_000), [1]);
  assert.deepEqual(availableLanes(config, { '0': 5_000 }, 5_000), [0, 1]);
  assert.deepEqual([1, 2, 3, 4, 5].map(allLanesShortBackoffMs), [5_000, 10_000, 20_000, 40_000, 60_000]);
});
