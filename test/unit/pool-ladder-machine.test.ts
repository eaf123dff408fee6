/** The warm-state ladder's stopped rung in the pool machine (issue 26): rules named, the driver never mutates input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PoolConfig } from '../../src/domain/types';
import { ladderPoolConfig, Machine, type Of } from '../helpers/pool-machine-driver';

const STOPPED_PRICE = 0.0274;
const config = (overrides: Partial<PoolConfig> = {}) =>
  ladderPoolConfig(
    { provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2, stoppedPricePerHour: STOPPED_PRICE },
    overrides,
  );

/** A pool that ran one job and went idle: the idle timer is due. */
function idlePool(overrides: Partial<PoolConfig> = {}): Machine {
  return new Machine(config(overrides)).ranOneJob();
}

function stoppedPool(overrides: Partial<PoolConfig> = {}): Machine {
  const m = idlePool(overrides);
  const stop = m.fireUntil('stop');
  m.send({ type: 'nodeStopped', command: stop });
  return m;
}

test('the idle teardown stops a node whose lane has a stopped price instead of terminating it: one node_stopped row at that price, the pool idle', () => {
  const m = idlePool();
  const stop = m.fireUntil('stop');
  assert.equal(stop.nodeId, 'p-n1');
  assert.equal(m.state.nodes[0].state, 'stopping');
  assert.equal(m.findAll('terminate', m.all).length, 0, 'no terminate call');
  m.send({ type: 'nodeStopped', command: stop });
  const node = m.state.nodes[0];
  assert.equal(node.state, 'stopped');
  assert.equal(node.stoppedAt, m.now);
  const [row] = m.ledger('node_stopped');
  assert.equal(row.key, 'p-n1:stopped:1');
  assert.equal(row.details?.stoppedPricePerHour, STOPPED_PRICE);
  assert.equal(row.details?.reason, 'idle teardown');
  assert.equal(m.state.teardown, undefined, 'the teardown is over once its nodes are stopped');
  assert.equal(m.ledger('node_terminated').length, 0);
  const reconcile = m.send({ type: 'timerFired' }).find((c) => c.type === 'reconcile') as Of<'reconcile'> | undefined;
  if (reconcile) assert.ok(reconcile.knownNodeIds.includes('p-n1'), 'a stopped node is still the pool’s (no orphan)');
});

test('a lane without a stopped price: the idle teardown terminates as before', () => {
  const m = idlePool({ lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2 }] });
  assert.equal(m.fireUntil('terminate').nodeId, 'p-n1');
  assert.equal(m.findAll('stop', m.all).length, 0);
});

test('new work wakes a stopped node before creating one: start call, node_started row, readiness wait, the job placed on the same node', () => {
  const m = stoppedPool();
  const stoppedAt = m.now;
  m.now += 540_000;
  const start = m.find('start', m.arrive('j2'));
  assert.equal(start?.nodeId, 'p-n1');
  assert.equal(m.findAll('provision', m.last).length, 0, 'no new node');
  assert.equal(m.state.nodes[0].waking, true);
  m.now += 1000;
  const wait = m.find('waitReady', m.send({ type: 'nodeStarted', command: start!, url: 'http://node-again' }));
  assert.equal(wait?.nodeId, 'p-n1');
  const [started] = m.ledger('node_started');
  assert.equal(started.key, 'p-n1:started:1');
  assert.equal(started.details?.stoppedSeconds, (m.now - stoppedAt) / 1000);
  m.now += 4000;
  const told = m.find('tellJob', m.send({ type: 'nodeReady', command: wait!, url: 'http://node-again' }));
  assert.equal(told?.message.kind === 'placed' && told.message.grant.nodeId, 'p-n1');
  assert.deepEqual(
    told?.message.kind === 'placed' && told.message.grant.coldStart,
    { rung: 'stopped', capacityMs: 0, providerMs: 1000, bootMs: 4000 },
    'the wait split by phase: the start call, then the boot from disk',
  );
  assert.equal(wait?.rung, 'stopped', 'the readiness wait knows it is a wake (its boot-phase metric)');
  assert.equal(m.state.nodes[0].state, 'ready');
  assert.equal(m.ledger('node_ready').length, 1, 'a wake is not a second boot');
});
