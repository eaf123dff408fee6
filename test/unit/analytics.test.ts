import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { computeAnalytics, peakConcurrency } from '../../src/db/analytics';
import { appendLedgerEvent, type LedgerEvent, type LedgerEventType } from '../../src/db/ledger';
import type { Lane } from '../../src/domain/types';
import { startTestDatabase, type TestDatabase } from '../helpers/postgres';
import { asPoolKey } from '../../src/ids';
import { TEST_NODE_SECRETS } from '../helpers/ledger-marks';

let database: TestDatabase;
const T0 = Date.parse('2026-01-05T10:00:00Z');
const at = (seconds: number) => T0 + seconds * 1000;
const spot: Lane = { provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.45 };
const onDemand: Lane = { provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.1 };
const POOL = asPoolKey('acme.chat');

function row(eventKey: string, eventType: LedgerEventType, seconds: number, extra: Partial<LedgerEvent> = {}): LedgerEvent {
  return { eventKey, eventType, occurredAt: at(seconds), poolId: POOL, ...extra };
}
const run = (node: string, from: number, to: number) => ({ nodeId: `${POOL}-${node}`, attempt: 1, startedAt: at(from), endedAt: at(to) });

/**
 * The fixed scenario, figured by hand:
 * node A (spot $0.45/h): provisioning 0 s, ready 60 s, terminated 1260 s → billed 1260 s
 * node B (on-demand $1.10/h): provisioning 600 s, ready 690 s, terminated 1800 s → billed 1200 s
 * job runs on A: [60,160], [700,1000], [750,950] (overlaps) → busy 100 + 300 = 400 s, idle 860 s
 * job runs on B: [690,990], [1000,1050] → busy 350 s, idle 850 s
 */
before(async () => {
  database = await startTestDatabase();
  const events: LedgerEvent[] = [
    row('a:prov', 'node_provisioning', 0, { nodeId: `${POOL}-a`, lane: spot, details: { referencePricePerHour: 1.1 } }),
    row('a:ready', 'node_ready', 60, { nodeId: `${POOL}-a`, lane: spot }),
    row('b:prov', 'node_provisioning', 600, { nodeId: `${POOL}-b`, lane: onDemand, details: { referencePricePerHour: 1.1 } }),
    row('b:ready', 'node_ready', 690, { nodeId: `${POOL}-b`, lane: onDemand }),
    row('j1', 'job_completed', 200, {
      jobId: 'j1',
      details: { usage: { promptTokens: 100, completionTokens: 50 }, queueMs: 60000, runs: [run('a', 60, 160)] },
    }),
    row('j2', 'job_completed', 1000, {
      jobId: 'j2',
      details: { usage: { promptTokens: 10, completionTokens: 20 }, queueMs: 100, runs: [run('a', 700, 1000)] },
    }),
    row('j6', 'job_completed', 950, {
      jobId: 'j6',
      details: { usage: { promptTokens: 1, completionTokens: 1 }, queueMs: 50, runs: [run('a', 750, 950)] },
    }),
    row('j3', 'job_completed', 990, {
      jobId: 'j3',
      details: { usage: { promptTokens: 5, completionTokens: 5 }, queueMs: 90000, runs: [run('b', 690, 990)] },
    }),
    row('j4', 'job_failed', 1100, { jobId: 'j4', details: { queueMs: 10, runs: [run('b', 1000, 1050)] } }),
    row('j5', 'job_expired', 1500, { jobId: 'j5', details: { runs: [] } }),
    row('a:end', 'node_terminated', 1260, { nodeId: `${POOL}-a`, lane: spot }),
    row('b:end', 'node_terminated', 1800, { nodeId: `${POOL}-b`, lane: onDemand }),
    // Another workspace's node, never terminated and dear: must not leak into acme's figures.
    {
      eventKey: 'x:prov',
      eventType: 'node_provisioning',
      occurredAt: at(0),
      poolId: asPoolKey('chat'),
      nodeId: 'chat-a',
      lane: { ...onDemand, pricePerHour: 5 },
    },
  ];
  for (const e of events) await appendLedgerEvent(database.db, e, TEST_NODE_SECRETS);
});
after(async () => {
  await database?.close();
});

const close = (actual: number | null, expected: number, what: string) =>
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-6, `${what}: ${actual} ≠ ${expected}`);

test('analytics over the whole hour equal the figures computed by hand', async () => {
  const a = await computeAnalytics(database.db, { workspaceId: 'acme', from: new Date(at(0)), to: new Date(at(3600)) });
  assert.equal(a.pools.length, 1);
  const p = a.pools[0];
  assert.equal(p.pool, 'chat');
  assert.deepEqual(p.jobs, { completed: 4, failed: 1, expired: 1, cancelled: 0 });
  assert.deepEqual(p.tokens, { input: 116, output: 76 });
  close(p.gpuSecondsBilled, 2460, 'billed seconds');
  close(p.costUsd, (1260 * 0.45 + 1200 * 1.1) / 3600, 'cost');
  close(p.idleSeconds, 860 + 850, 'idle seconds');
  close(p.idleTaxUsd, (860 * 0.45 + 850 * 1.1) / 3600, 'idle tax');
  assert.equal(p.peakNodes, 2);
  close(p.alwaysOnCostUsd, 2 * 1.1, 'always-on cost');
  close(p.savingsUsd, 2.2 - (1260 * 0.45 + 1200 * 1.1) / 3600, 'savings');
  assert.deepEqual(p.coldStarts, { count: 2, p50Seconds: 75, p95Seconds: 88.5 });
  // queueMs 10, 50, 100, 60000, 90000: mean 30032, p95 interpolated 60000 + 0.8 × 30000.
  assert.deepEqual(p.queueOverheadMs, { average: 30032, p95: 84000 });
  close(a.totals.costUsd, p.costUsd, 'totals');
  assert.equal(a.totals.jobs.completed, 4);
  assert.match(a.formula.savings_usd, /always_on_cost_usd − cost_usd/);
});

test('a window clips billing and busy time, and the always-on fleet runs only for the window', async () => {
  const a = await computeAnalytics(database.db, { workspaceId: 'acme', poolId: 'chat', from: new Date(at(600)), to: new Date(at(1200)) });
  const p = a.pools[0];
  // A: [600,1200] billed 600 s, busy [700,1000] = 300 s. B: [600,1200] billed 600 s, busy 300 + 50 s.
  close(p.gpuSecondsBilled, 1200, 'billed');
  close(p.idleSeconds, 300 + 250, 'idle');
  close(p.costUsd, (600 * 0.45 + 600 * 1.1) / 3600, 'cost');
  close(p.idleTaxUsd, (300 * 0.45 + 250 * 1.1) / 3600, 'idle tax');
  close(p.alwaysOnCostUsd, (2 * 1.1 * 600) / 3600, 'always-on');
  // Jobs are counted by when they ended: j2, j6, j3, j4 ended inside the window.
  assert.deepEqual(p.jobs, { completed: 3, failed: 1, expired: 0, cancelled: 0 });
});

test('a job run that crosses the window edge counts as busy only inside the window', async () => {
  const a = await computeAnalytics(database.db, { workspaceId: 'acme', poolId: 'chat', from: new Date(at(600)), to: new Date(at(900)) });
  const p = a.pools[0];
  // A: billed [600,900], busy [700,900] of the run [700,1000] → idle 100 s. B: billed [600,900], busy [690,900] → idle 90 s.
  close(p.gpuSecondsBilled, 600, 'billed');
  close(p.idleSeconds, 100 + 90, 'idle');
  close(p.idleTaxUsd, (100 * 0.45 + 90 * 1.1) / 3600, 'idle tax');
});

test('a workspace sees none of another workspace’s rows', async () => {
  const other = await computeAnalytics(database.db, { workspaceId: 'default', from: new Date(at(0)), to: new Date(at(3600)) });
  assert.deepEqual(
    other.pools.map((p) => p.pool),
    ['chat'],
  );
  close(other.pools[0].costUsd, 5, 'the other workspace’s open node, billed to the window end');
  const nobody = await computeAnalytics(database.db, { workspaceId: 'nobody' });
  assert.equal(nobody.pools.length, 0);
  assert.equal(nobody.totals.costUsd, 0);
});

test('peak concurrency: touching intervals do not overlap', () => {
  assert.equal(
    peakConcurrency([
      [0, 10],
      [10, 20],
    ]),
    1,
  );
  assert.equal(
    peakConcurrency([
      [0, 10],
      [5, 20],
      [6, 7],
    ]),
    3,
  );
  assert.equal(peakConcurrency([]), 0);
});

test('stopped nodes (the warm-state ladder) bill their GPU price only while running and their stopped price while stopped, in any window', async () => {
  const pool = asPoolKey('ladder.chat');
  const lane: Lane = { ...onDemand, stoppedPricePerHour: 0.03 };
  const node = (id: string) => ({ nodeId: `${pool}-${id}`, lane, poolId: pool });
  const stopped = { stoppedPricePerHour: 0.03 };
  // c: runs 0–600, stopped 600–2400, runs 2400–3000, terminated. d: runs 0–100, stopped from 100 on (never woken).
  const events: LedgerEvent[] = [
    row('c:prov', 'node_provisioning', 0, { ...node('c'), details: { referencePricePerHour: 1.1 } }),
    row('c:stopped:1', 'node_stopped', 600, { ...node('c'), details: stopped }),
    row('c:started:1', 'node_started', 2400, node('c')),
    row('c:end', 'node_terminated', 3000, node('c')),
    row('d:prov', 'node_provisioning', 0, { ...node('d'), details: { referencePricePerHour: 1.1 } }),
    row('d:stopped:1', 'node_stopped', 100, { ...node('d'), details: stopped }),
  ];
  for (const e of events) await appendLedgerEvent(database.db, e, TEST_NODE_SECRETS);
  const hour = await computeAnalytics(database.db, { workspaceId: 'ladder', from: new Date(at(0)), to: new Date(at(3600)) });
  close(hour.totals.gpuSecondsBilled, 600 + 600 + 100, 'GPU seconds: running time only');
  const storage = ((1800 + 3500) * 0.03) / 3600;
  close(hour.totals.costUsd, (1300 * 1.1) / 3600 + storage, 'cost: GPU time at 1.10, stopped time at 0.03');
  close(hour.totals.idleSeconds, 1300, 'no job ran: the idle seconds are the running ones, not the stopped ones');
  const stoppedOnly = await computeAnalytics(database.db, { workspaceId: 'ladder', from: new Date(at(1000)), to: new Date(at(2000)) });
  close(stoppedOnly.totals.gpuSecondsBilled, 0, 'both stopped throughout the window');
  close(stoppedOnly.totals.costUsd, (2 * 1000 * 0.03) / 3600, 'disks only');
});

test('sleeping nodes bill their sleeping price from node_slept to node_woke, and a node that stopped and slept bills each span at its own price', async () => {
  const pool = asPoolKey('sleepy.chat');
  const lane: Lane = { ...onDemand, stoppedPricePerHour: 0.03, sleepingPricePerHour: 0.2 };
  const node = (id: string) => ({ nodeId: `${pool}-${id}`, lane, poolId: pool });
  // e: runs 0–600, asleep 600–1800, runs 1800–2000, stopped 2000–3000, runs 3000–3600, terminated.
  const events: LedgerEvent[] = [
    row('e:prov', 'node_provisioning', 0, { ...node('e'), details: { referencePricePerHour: 1.1 } }),
    row('e:slept:1', 'node_slept', 600, { ...node('e'), details: { sleepingPricePerHour: 0.2 } }),
    row('e:woke:1', 'node_woke', 1800, node('e')),
    row('e:stopped:1', 'node_stopped', 2000, { ...node('e'), details: { stoppedPricePerHour: 0.03 } }),
    row('e:started:1', 'node_started', 3000, node('e')),
    row('e:end', 'node_terminated', 3600, node('e')),
  ];
  for (const e of events) await appendLedgerEvent(database.db, e, TEST_NODE_SECRETS);
  const hour = await computeAnalytics(database.db, { workspaceId: 'sleepy', from: new Date(at(0)), to: new Date(at(3600)) });
  close(hour.totals.gpuSecondsBilled, 600 + 200 + 600, 'GPU seconds: running time only');
  close(hour.totals.costUsd, (1400 * 1.1 + 1200 * 0.2 + 1000 * 0.03) / 3600, 'running at 1.10, asleep at 0.20, stopped at 0.03');
});
