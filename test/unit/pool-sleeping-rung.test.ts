/** The warm-state ladder's sleeping rung in the pool machine (issue 26): rules named, the driver never mutates input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chooseWindows,
  DEFAULT_SLEEP_WAKE_MS,
  newKeepAliveLearning,
  recordBoot,
  recordIdleGap,
  recordSleepWake,
} from '../../src/domain/keep-alive';
import type { Lane, PoolConfig } from '../../src/domain/types';
import { teardownRung } from '../../src/domain/warm-ladder';
import { ladderPoolConfig, Machine } from '../helpers/pool-machine-driver';

const SLEEPING_PRICE = 0.15;
const lane: Lane = { provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2, sleepingPricePerHour: SLEEPING_PRICE };
const config = (overrides: Partial<PoolConfig> = {}) => ladderPoolConfig(lane, overrides);

/** A pool that ran one job on a node at http://node and went idle: the idle timer is due. */
function idlePool(overrides: Partial<PoolConfig> = {}): Machine {
  return new Machine(config(overrides)).ranOneJob();
}

function sleepingPool(overrides: Partial<PoolConfig> = {}): Machine {
  const m = idlePool(overrides);
  m.send({ type: 'nodeSlept', command: m.fireUntil('sleep') });
  return m;
}

test('the idle teardown puts the model server to sleep where the lane prices sleep below running: one node_slept row at that price, the machine kept', () => {
  const m = idlePool();
  const sleep = m.fireUntil('sleep');
  assert.deepEqual(sleep, { type: 'sleep', nodeId: 'p-n1', lane, url: 'http://node' });
  assert.equal(m.state.nodes[0].state, 'sleeping');
  assert.equal(m.state.nodes[0].inFlight, 'sleep');
  assert.ok(m.state.teardown, 'the teardown lasts until the model server confirms its sleep');
  m.send({ type: 'nodeSlept', command: sleep });
  const node = m.state.nodes[0];
  assert.equal(node.state, 'sleeping');
  assert.equal(node.sleptAt, m.now);
  assert.equal(node.url, 'http://node', 'a sleeping node keeps its address: the wake goes there');
  const [row] = m.ledger('node_slept');
  assert.equal(row.key, 'p-n1:slept:1');
  assert.equal(row.details?.sleepingPricePerHour, SLEEPING_PRICE);
  assert.equal(row.details?.reason, 'idle teardown');
  assert.equal(m.state.teardown, undefined);
  assert.equal(m.findAll('terminate', m.all).length + m.findAll('stop', m.all).length, 0, 'neither terminated nor stopped');
});

test('new work wakes a sleeping node before anything else: a wake call, a node_woke row, the job placed there with a cold start of rung sleeping', () => {
  const m = sleepingPool();
  const sleptAt = m.now;
  m.now += 120_000;
  const wake = m.find('wake', m.arrive('j2'));
  assert.deepEqual(wake, { type: 'wake', nodeId: 'p-n1', lane, url: 'http://node' });
  assert.equal(m.findAll('provision', m.last).length, 0, 'no new node');
  const [woke] = m.ledger('node_woke');
  assert.equal(woke.key, 'p-n1:woke:1');
  assert.equal(
    woke.details?.sleptSeconds,
    (m.now - sleptAt) / 1000,
    'the sleeping price ends when the wake is asked (a wake runs the GPU)',
  );
  m.now += 3000;
  const told = m.find('tellJob', m.send({ type: 'nodeWoke', command: wake! }));
  assert.equal(told?.message.kind === 'placed' && told.message.grant.nodeId, 'p-n1');
  assert.deepEqual(told?.message.kind === 'placed' && told.message.grant.coldStart, {
    rung: 'sleeping',
    capacityMs: 0,
    providerMs: 0,
    bootMs: 3000,
  });
  assert.equal(m.state.nodes[0].state, 'ready');
  assert.deepEqual(m.state.keepAlive?.sleepWakesMs, [3000], 'the wake from sleep is learned for its rung');
  assert.equal(m.ledger('node_ready').length, 1, 'a wake is not a second boot');
});

test('work that arrives while the sleep call is out waits for it, then wakes the node (nothing lost, no second node)', () => {
  const m = idlePool();
  const sleep = m.fireUntil('sleep');
  m.arrive('j2');
  assert.equal(m.find('wake', m.last), undefined, 'no wake while the sleep call is in flight');
  const wake = m.find('wake', m.send({ type: 'nodeSlept', command: sleep }));
  assert.equal(wake?.nodeId, 'p-n1');
  assert.equal(m.findAll('provision', m.all).length, 1, 'only the first node was ever provisioned');
});

test('the rung a teardown takes: the windows’ choice where the lane prices it, else the cheapest the lane offers; sleep only below the running price', () => {
  const stopsToo: Lane = { ...lane, stoppedPricePerHour: 0.02 };
  assert.equal(teardownRung(lane, undefined), 'sleeping');
  assert.equal(teardownRung(stopsToo, undefined), 'stopped', 'fixed windows: the cheapest rung');
  assert.equal(teardownRung(stopsToo, 'sleeping'), 'sleeping');
  assert.equal(teardownRung(lane, 'stopped'), 'terminated', 'a rung the lane does not price is not offered');
  assert.equal(teardownRung(lane, 'terminated'), 'terminated');
  assert.equal(teardownRung({ ...lane, sleepingPricePerHour: 1.2 }, undefined), 'terminated', 'sleep at the full price is never worth it');
  const { sleepingPricePerHour: _none, ...plain } = lane;
  assert.equal(teardownRung(plain, 'sleeping'), 'terminated');
});

test('adaptive windows on a lane that prices sleep: 3-minute gaps with a 60 s boot sleep through the gap (cheaper than running or a pre-warmed boot)', () => {
  const adaptive = config({ keepAlive: { mode: 'adaptive', minSamples: 10, extraColdStartRate: 0 }, teardownGraceSeconds: 10 });
  const learning = newKeepAliveLearning();
  recordBoot(learning, 60_000, adaptive);
  for (let i = 0; i < 20; i++) recordIdleGap(learning, 180_000, adaptive);
  const windows = chooseWindows(learning, adaptive);
  assert.equal(windows.down, 'sleeping');
  assert.equal(windows.sleepWakeMs, DEFAULT_SLEEP_WAKE_MS, 'no wake from sleep seen yet: the default');
  assert.ok(windows.rungs?.sleeping && windows.rungs.terminated, 'the view prices every rung the lane offers');
  assert.ok(windows.rungs.sleeping.expectedCostUsd < windows.rungs.terminated.expectedCostUsd);
  assert.match(windows.reason, /with the sleeping rung/);
  recordSleepWake(learning, 2500, adaptive);
  assert.equal(chooseWindows(learning, adaptive).sleepWakeMs, 2500, 'a wake seen replaces the default');
  const fullPrice = config({
    keepAlive: { mode: 'adaptive', minSamples: 10, extraColdStartRate: 0 },
    lanes: [{ ...lane, sleepingPricePerHour: 1.2 }],
  });
  assert.notEqual(chooseWindows(learning, fullPrice).down, 'sleeping', 'sleep at the running price is never chosen');
});
