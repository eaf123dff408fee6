/** The warm-state ladder's stopped rung in the pool machine (issue 26): rules named, the driver never mutates input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PoolConfig } from '../../src/domain/types';
import { Machine, type Of } from '../helpers/pool-machine-driver';
import { poolConfig } from '../helpers/stack';

const STOPPED_PRICE = 0.0274;
const config = (overrides: Partial<PoolConfig> = {}) =>
  poolConfig({
    slotsPerNode: 1,
    maxNodes: 2,
    idleTimeoutSeconds: 600,
    teardownGraceSeconds: 30,
    healthCheckIntervalSeconds: 15,
    lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2, stoppedPricePerHour: STOPPED_PRICE }],
    ...overrides,
  });

/** A pool that ran one job and went idle: the idle timer is due. */
function idlePool(overrides: Partial<PoolConfig> = {}): Machine {
  const m = new Machine(config(overrides));
  m.arrive('j1');
  m.bringUp();
  m.now += 1000;
  m.send({ type: 'jobFinished', jobId: 'j1', attempt: 1 });
  return m;
}

/** Fires timers (answering health checks and reconciliations) until the machine asks for `type`. */
function until<T extends Parameters<Machine['find']>[0]>(m: Machine, type: T): Of<T> {
  for (let i = 0; i < 200; i++) {
    const commands = m.fire();
    const check = m.find('checkHealth', commands);
    if (check) m.send({ type: 'healthChecked', statuses: check.nodes.map((n) => ({ nodeId: n.nodeId, exists: true, healthy: true })) });
    if (m.find('reconcile', commands)) m.send({ type: 'reconciled', removed: [] });
    const found = m.find(type, commands);
    if (found) return found;
  }
  throw new Error(`no ${type} command`);
}

function stoppedPool(overrides: Partial<PoolConfig> = {}): Machine {
  const m = idlePool(overrides);
  const stop = until(m, 'stop');
  m.send({ type: 'nodeStopped', command: stop });
  return m;
}

test('the idle teardown stops a node whose lane has a stopped price instead of terminating it: one node_stopped row at that price, the pool idle', () => {
  const m = idlePool();
  const stop = until(m, 'stop');
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
  assert.equal(until(m, 'terminate').nodeId, 'p-n1');
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

test('a wake that fails (no GPU for the stopped node) terminates it, never leaving it to bill its disk, and a fresh node is created', () => {
  const m = stoppedPool();
  const start = m.find('start', m.arrive('j2'))!;
  const after = m.send({ type: 'commandFailed', command: start, error: 'no GPU on the host' });
  assert.equal(m.find('terminate', after)?.nodeId, 'p-n1');
  assert.equal(m.find('provision', after)?.nodeId, 'p-n2', 'a fresh node for the work');
  assert.match(m.state.nodes.find((n) => n.id === 'p-n1')!.terminateReason!, /wake failed: no GPU/);
});

test('a stopped node past maxStoppedSeconds is terminated; its node_terminated row bills the GPU time only, the stopped time at the disk price', () => {
  const m = stoppedPool({ maxStoppedSeconds: 3600 });
  const provisionedAt = m.ledger('node_provisioning')[0].occurredAt;
  const stoppedAt = m.now;
  const terminate = until(m, 'terminate');
  assert.equal(m.now, stoppedAt + 3_600_000, 'the machine wakes when the node has been stopped too long');
  assert.equal(terminate.nodeId, 'p-n1');
  assert.equal(terminate.reason, 'stopped too long');
  m.send({ type: 'nodeTerminated', command: terminate });
  const [row] = m.ledger('node_terminated');
  assert.equal(row.details?.billedSeconds, (stoppedAt - provisionedAt) / 1000);
  assert.equal(row.details?.stoppedSeconds, (m.now - stoppedAt) / 1000);
  assert.ok(Math.abs((row.details?.storageUsd as number) - ((m.now - stoppedAt) / 3_600_000) * STOPPED_PRICE) < 1e-9);
  assert.equal(m.state.nodes.length, 0);
});

test('a provider that cannot stop the node: it is terminated instead', () => {
  const m = idlePool();
  const stop = until(m, 'stop');
  const after = m.send({ type: 'commandFailed', command: stop, error: 'provider runpod cannot stop nodes' });
  assert.equal(m.find('terminate', after)?.nodeId, 'p-n1');
  m.send({ type: 'nodeTerminated', command: m.find('terminate', after)! });
  assert.equal(m.ledger('node_stopped').length, 0);
  assert.equal(m.ledger('node_terminated').length, 1);
});

test('scale-to-zero releases stopped nodes too (nothing billed, disks included), and so does a drain', () => {
  for (const event of [{ type: 'scaleToZeroRequested' }, { type: 'drainRequested' }] as const) {
    const m = stoppedPool();
    const terminate = m.find('terminate', m.send(event));
    assert.equal(terminate?.nodeId, 'p-n1', event.type);
  }
});

test('an arrival during the grace period keeps the node running (the teardown is cancelled before any stop call)', () => {
  const m = idlePool();
  // The idle timer fires (answering health checks on the way) and the teardown starts; its grace runs.
  while (!m.state.teardown) {
    const check = m.find('checkHealth', m.fire());
    if (check) m.send({ type: 'healthChecked', statuses: [{ nodeId: 'p-n1', exists: true, healthy: true }] });
  }
  assert.equal(m.state.nodes[0].state, 'terminating');
  m.arrive('j2');
  assert.equal(m.state.nodes[0].state, 'ready');
  assert.equal(m.state.nodes[0].stopOnTeardown, undefined);
  assert.equal(m.findAll('stop', m.all).length, 0);
});
