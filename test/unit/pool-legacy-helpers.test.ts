/**
 * The v1 pool workflow (src/workflows/pool-legacy.ts) still decides with live domain helpers, and recorded v1
 * histories replay only while those helpers decide as they did when the histories were made. The replay tests
 * cover the paths the histories took; this pins what every helper v1 calls decides on 400 seeded pool states
 * (placement, queue order, retries, requeues, scaling, lanes, teardown, preemption), as one digest. A change that
 * makes any of them decide differently fails here: freeze the old helper for pool-legacy.ts first (a copy under
 * src/workflows/legacy/), then record the new digest with UPDATE_LEGACY_DIGEST=1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { enqueueJob, nextRetryAt, placeQueuedJobs, releasePlacement, requeueJobsOfNode } from '../../src/domain/placement';
import { poolConfigSchema } from '../../src/domain/pool-config';
import { newPoolState } from '../../src/domain/pool-view';
import { planPreemptions } from '../../src/domain/preemption';
import {
  activeNodes,
  allLanesShortBackoffMs,
  availableLanes,
  baseline,
  isIdle,
  nextLaneAvailableAt,
  nodesToAdd,
  teardownCandidates,
} from '../../src/domain/scaling';
import type { NodeState, PoolState } from '../../src/domain/types';
import type { PoolKey } from '../../src/ids';

const DIGEST_FILE = path.join(__dirname, '..', 'fixtures', 'pool-legacy-helpers.sha256');
const STATES = 400;

/** mulberry32: a small seeded generator, the same on every machine. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] as T,
  };
}

/** A pool state as v1 could hold it: nodes in every v1 state, slots taken by placements, a queue, cool-downs. */
function poolState(seed: number): { state: PoolState; now: number } {
  const r = random(seed);
  const now = 1_000_000 + r.int(0, 600_000);
  const lanes = [
    { provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.45 },
    { provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.1 },
  ];
  const maxNodes = r.int(1, 6);
  const config = poolConfigSchema.parse({
    model: 'frozen',
    minNodes: r.int(0, Math.min(2, maxNodes)),
    maxNodes,
    slotsPerNode: r.int(1, 4),
    burstThreshold: r.int(0, 3),
    agingSeconds: r.pick([0, 60, 300]),
    preemptPriorityGap: r.pick([1, 2, 3]),
    lanes,
  });
  const state = newPoolState('frozen' as PoolKey, config);
  const nodeStates: NodeState[] = ['provisioning', 'ready', 'ready', 'ready', 'terminating', 'terminate_failed'];
  // A quarter of the states are full pools (every node up, every slot taken): where preemption is decided.
  const full = r.chance(0.25);
  // And a quarter are idle (nothing running, nothing queued): where teardown is decided.
  const idle = !full && r.chance(0.33);
  for (let n = 0; n < (full ? maxNodes : r.int(0, maxNodes)); n++) {
    const laneIndex = full ? r.pick([0, 1]) : r.pick([0, 1, -1]);
    const nodeState = full || (idle && r.chance(0.7)) ? 'ready' : r.pick(nodeStates);
    state.nodes.push({
      id: `n${n}`,
      laneIndex,
      ...(laneIndex >= 0 ? { lane: config.lanes[laneIndex] } : {}),
      state: nodeState,
      requestedAt: now - r.int(0, 500_000),
      slots: Array.from({ length: config.slotsPerNode }, () => null),
      provisioningAttempts: r.int(0, 3),
      ...(nodeState !== 'provisioning' ? { billedFrom: now - r.int(100_000, 400_000), readyAt: now - r.int(0, 100_000) } : {}),
      ...(!full && r.chance(0.1) ? { suspect: true } : {}),
      ...(!full && r.chance(0.05) ? { retiring: true } : {}),
      ...(r.chance(0.2) ? { nextAttemptAt: now + r.int(-5000, 5000) } : {}),
      ...(r.chance(0.1) ? { terminateAfter: now + r.int(-5000, 5000) } : {}),
    });
  }
  let job = 0;
  for (const node of state.nodes.filter((n) => n.state === 'ready')) {
    node.slots.forEach((_, slot) => {
      if (idle || (!full && !r.chance(0.6))) return;
      const jobId = `r${job++}`;
      node.slots[slot] = jobId;
      state.running.push({
        jobId,
        attempt: r.int(1, 4),
        nodeId: node.id,
        slot,
        placedAt: now - r.int(0, 300_000),
        ...(r.chance(0.8) ? { priority: r.int(1, 5) } : {}),
        ...(r.chance(0.05) ? { preempting: true } : {}),
      });
    });
  }
  for (let q = 0; q < (idle ? 0 : r.int(0, 8)); q++) {
    state.queue.push({
      jobId: `q${q}`,
      attempt: r.int(1, 3),
      enqueuedAt: now - r.int(0, 900_000),
      ...(r.chance(0.8) ? { priority: r.int(1, 5) } : {}),
      ...(r.chance(0.2) ? { front: true } : {}),
      ...(r.chance(0.2) ? { notBefore: now + r.int(-10_000, 10_000) } : {}),
    });
  }
  if (r.chance(0.3)) state.laneCooldownUntil['0'] = now + r.int(-60_000, 60_000);
  if (r.chance(0.2)) state.laneCooldownUntil['1'] = now + r.int(-60_000, 60_000);
  state.draining = !full && r.chance(0.1);
  state.baselineSuspended = r.chance(0.1);
  return { state, now };
}

type Helpers = { teardownCandidates: typeof teardownCandidates };

/** What every helper v1 calls decides on one state (each on its own copy: some change the state they get). */
function decisions(seed: number, helpers: Helpers = { teardownCandidates }): unknown {
  const { state, now } = poolState(seed);
  const copy = () => structuredClone(state);
  const attempt = (f: () => unknown) => {
    try {
      return f();
    } catch (err) {
      return { threw: (err as Error).message };
    }
  };
  const placed = copy();
  const requeued = copy();
  const released = copy();
  const enqueued = copy();
  return {
    activeNodes: activeNodes(copy()).map((n) => n.id),
    baseline: baseline(copy()),
    isIdle: isIdle(copy()),
    nodesToAdd: nodesToAdd(copy()),
    teardownCandidates: helpers.teardownCandidates(copy()).map((n) => n.id),
    availableLanes: availableLanes(state.config, state.laneCooldownUntil, now),
    nextLaneAvailableAt: nextLaneAvailableAt(state.laneCooldownUntil),
    allLanesShortBackoffMs: [0, 1, 2, 5, 10].map(allLanesShortBackoffMs),
    nextRetryAt: nextRetryAt(copy(), now),
    placements: attempt(() => placeQueuedJobs(placed, now).map((p) => ({ job: p.job.jobId, node: p.node.id, slot: p.slot }))),
    afterPlacement: { queue: placed.queue.map((j) => j.jobId), running: placed.running.map((p) => `${p.jobId}@${p.nodeId}:${p.slot}`) },
    requeued: attempt(() => (state.nodes[0] ? requeueJobsOfNode(requeued, state.nodes[0].id, now).map((j) => [j.jobId, j.attempt]) : [])),
    queueAfterRequeue: requeued.queue.map((j) => `${j.jobId}:${j.attempt}:${j.front ?? false}`),
    released: attempt(() => (state.running[0] ? releasePlacement(released, state.running[0].jobId) : undefined)),
    enqueued: [
      enqueueJob(enqueued, { jobId: 'new', attempt: 1, enqueuedAt: now, priority: 2 }, false),
      enqueueJob(enqueued, { jobId: 'new', attempt: 1, enqueuedAt: now }, true),
      enqueued.queue.map((j) => j.jobId),
    ],
    preemptions: attempt(() => planPreemptions(copy(), now)),
  };
}

function digest(helpers?: Helpers): string {
  const hash = createHash('sha256');
  for (let seed = 1; seed <= STATES; seed++) hash.update(`${JSON.stringify(decisions(seed, helpers))}\n`);
  return hash.digest('hex');
}

test('the helpers the v1 pool workflow calls decide as they did when its histories were recorded (freeze one before changing it)', () => {
  const now = digest();
  if (process.env.UPDATE_LEGACY_DIGEST === '1') writeFileSync(DIGEST_FILE, `${now}\n`);
  const pinned = readFileSync(DIGEST_FILE, 'utf8').trim();
  assert.equal(
    now,
    pinned,
    'a helper pool-legacy.ts calls now decides differently: recorded v1 histories may no longer replay. ' +
      'Freeze the old helper for pool-legacy.ts (src/workflows/legacy/), then UPDATE_LEGACY_DIGEST=1 npm test -- test/unit/pool-legacy-helpers.test.ts',
  );
});

test('the pin can fail: teardown candidates in another order give another digest; the states are varied enough to show it', () => {
  const reversed: Helpers = { teardownCandidates: (state) => [...teardownCandidates(state)].reverse() };
  assert.notEqual(digest(reversed), digest());
  // The generator reaches what the helpers branch on: placements made, preemptions planned, nodes to add.
  const seen = { placed: 0, preempted: 0, toAdd: 0, teardown: 0 };
  for (let seed = 1; seed <= STATES; seed++) {
    const d = decisions(seed) as {
      placements: unknown[];
      preemptions: { choices?: unknown[] };
      nodesToAdd: number;
      teardownCandidates: string[];
    };
    if (Array.isArray(d.placements) && d.placements.length > 0) seen.placed += 1;
    if ((d.preemptions.choices?.length ?? 0) > 0) seen.preempted += 1;
    if (d.nodesToAdd > 0) seen.toAdd += 1;
    if (d.teardownCandidates.length > 1) seen.teardown += 1;
  }
  for (const [what, count] of Object.entries(seen)) assert.ok(count >= 10, `${what} in only ${count} of ${STATES} states`);
});
