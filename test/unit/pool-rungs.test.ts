/**
 * Rules the warm-state ladder's rungs below running share (stopped and sleeping), one table over both: a failed
 * wake, a node down too long, a refusal to go down, a release. Each rung's own course is in its file
 * (pool-ladder-machine.test.ts, pool-sleeping-rung.test.ts); the driver never mutates input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Lane, PoolConfig } from '../../src/domain/types';
import { ladderPoolConfig, Machine } from '../helpers/pool-machine-driver';

const base: Lane = { provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2 };
const RUNGS = [
  {
    rung: 'stopped',
    lane: { ...base, stoppedPricePerHour: 0.0274 },
    price: 0.0274,
    down: 'stop',
    wake: 'start',
    downRow: 'node_stopped',
    seconds: 'stoppedSeconds',
    usd: 'storageUsd',
  },
  {
    rung: 'sleeping',
    lane: { ...base, sleepingPricePerHour: 0.15 },
    price: 0.15,
    down: 'sleep',
    wake: 'wake',
    downRow: 'node_slept',
    seconds: 'sleptSeconds',
    usd: 'sleepingUsd',
  },
] as const;
type Rung = (typeof RUNGS)[number];

/** A pool on the rung's lane that ran one job and went idle: the idle timer is due. */
function idlePool(rung: Rung, overrides: Partial<PoolConfig> = {}): Machine {
  return new Machine(ladderPoolConfig(rung.lane, overrides)).ranOneJob();
}

/** The same pool with its node down on the rung. */
function downPool(rung: Rung, overrides: Partial<PoolConfig> = {}): Machine {
  const m = idlePool(rung, overrides);
  const command = m.fireUntil(rung.down);
  m.send(
    command.type === 'stop'
      ? { type: 'nodeStopped', command }
      : { type: 'nodeSlept', command: command as Extract<typeof command, { type: 'sleep' }> },
  );
  return m;
}

for (const rung of RUNGS) {
  test(`${rung.rung}: a wake that fails terminates the node, never leaving it billing, and a fresh node is created for the work`, () => {
    const m = downPool(rung);
    const wake = m.find(rung.wake, m.arrive('j2'));
    assert.equal(wake?.nodeId, 'p-n1');
    const after = m.send({ type: 'commandFailed', command: wake!, error: 'no GPU on the host' });
    assert.equal(m.find('terminate', after)?.nodeId, 'p-n1');
    assert.equal(m.find('provision', after)?.nodeId, 'p-n2');
    assert.match(m.state.nodes.find((n) => n.id === 'p-n1')!.terminateReason!, /wake failed: no GPU/);
  });

  test(`${rung.rung}: a node down past maxStoppedSeconds is terminated; node_terminated bills the GPU time at its price and the time down at the rung's`, () => {
    const m = downPool(rung, { maxStoppedSeconds: 3600 });
    const provisionedAt = m.ledger('node_provisioning')[0].occurredAt;
    const downAt = m.now;
    const terminate = m.fireUntil('terminate');
    assert.equal(m.now, downAt + 3_600_000, 'the machine wakes when the node has been down too long');
    assert.equal(terminate.nodeId, 'p-n1');
    assert.match(terminate.reason, /too long/);
    m.send({ type: 'nodeTerminated', command: terminate });
    const [row] = m.ledger('node_terminated');
    assert.equal(row.details?.billedSeconds, (downAt - provisionedAt) / 1000);
    assert.equal(row.details?.[rung.seconds], 3600);
    assert.ok(Math.abs((row.details?.[rung.usd] as number) - rung.price) < 1e-9);
    assert.equal(m.state.nodes.length, 0);
  });

  test(`${rung.rung}: a node that cannot go down (the provider cannot stop, the model server has no sleep mode) is terminated instead`, () => {
    const m = idlePool(rung);
    const down = m.fireUntil(rung.down);
    const terminate = m.find('terminate', m.send({ type: 'commandFailed', command: down, error: 'not supported' }));
    assert.equal(terminate?.nodeId, 'p-n1');
    m.send({ type: 'nodeTerminated', command: terminate! });
    assert.equal(m.ledger(rung.downRow).length, 0);
    assert.equal(m.ledger('node_terminated').length, 1);
  });

  test(`${rung.rung}: scale-to-zero and a drain release a node that is down (nothing billed, disks included)`, () => {
    for (const event of [{ type: 'scaleToZeroRequested' }, { type: 'drainRequested' }] as const) {
      const m = downPool(rung);
      assert.equal(m.find('terminate', m.send(event))?.nodeId, 'p-n1', event.type);
    }
  });

  test(`${rung.rung}: an arrival during the grace period keeps the node running (no call to go down is made)`, () => {
    const m = idlePool(rung);
    while (!m.state.teardown) {
      const check = m.find('checkHealth', m.fire());
      if (check) m.send({ type: 'healthChecked', statuses: [{ nodeId: 'p-n1', exists: true, healthy: true }] });
    }
    assert.equal(m.state.nodes[0].state, 'terminating');
    m.arrive('j2');
    assert.equal(m.state.nodes[0].state, 'ready');
    assert.equal(m.state.nodes[0].stopOnTeardown ?? m.state.nodes[0].sleepOnTeardown, undefined);
    assert.equal(m.findAll(rung.down, m.all).length, 0);
  });
}
