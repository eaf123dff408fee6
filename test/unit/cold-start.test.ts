/** A cold start split by phase (src/domain/cold-start.ts), alone and as the pool machine hands it to a job. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coldStartPhases } from '../../src/domain/cold-start';
import type { NodeRecord } from '../../src/domain/types';
import { Machine } from '../helpers/pool-machine-driver';
import { poolConfig } from '../helpers/stack';

const node = (times: Partial<NodeRecord>): NodeRecord => ({
  id: 'n1',
  laneIndex: 0,
  state: 'ready',
  requestedAt: 0,
  slots: [null],
  provisioningAttempts: 1,
  ...times,
});

test('cold start phases: lane search, the call that worked, the boot; each only the part the job was there for, summing to its wait', () => {
  const full = coldStartPhases(node({ calledAt: 7_000, acceptedAt: 9_000, readyAt: 40_000 }), 0);
  assert.deepEqual(full, { rung: 'cold', capacityMs: 7_000, providerMs: 2_000, bootMs: 31_000 });
  // A job that came while the node booted waited for the boot only.
  assert.deepEqual(coldStartPhases(node({ calledAt: 7_000, acceptedAt: 9_000, readyAt: 40_000 }), 20_000), {
    rung: 'cold',
    capacityMs: 0,
    providerMs: 0,
    bootMs: 20_000,
  });
  // A woken node: the start call and the boot from disk.
  assert.deepEqual(coldStartPhases(node({ stops: 1, calledAt: 100, acceptedAt: 1_100, readyAt: 5_100 }), 0), {
    rung: 'stopped',
    capacityMs: 100,
    providerMs: 1_000,
    bootMs: 4_000,
  });
  // Ready before the job came: no cold start; no readiness yet: none to split.
  assert.equal(coldStartPhases(node({ readyAt: 10 }), 10), undefined);
  assert.equal(coldStartPhases(node({}), 0), undefined);
  for (const enqueuedAt of [0, 3_000, 8_000, 39_999]) {
    const p = coldStartPhases(node({ calledAt: 7_000, acceptedAt: 9_000, readyAt: 40_000 }), enqueuedAt)!;
    assert.equal(p.capacityMs + p.providerMs + p.bootMs, 40_000 - enqueuedAt);
  }
});

test('the pool hands a job its cold start by phase: a short lane and its retry, the provider’s call, the boot', () => {
  const m = new Machine(poolConfig({ slotsPerNode: 1, laneCooldownSeconds: 180 }));
  const spot = m.find('provision', m.arrive('j1'))!;
  m.now += 2_000;
  const onDemand = m.find('provision', m.send({ type: 'commandFailed', command: spot, error: 'no spot capacity' }))!;
  m.now += 3_000;
  const wait = m.find('waitReady', m.send({ type: 'nodeProvisioned', command: onDemand, url: 'http://n1', laneIndex: 1 }))!;
  assert.equal(wait.rung, undefined, 'a fresh node boots cold');
  m.now += 30_000;
  const told = m.find('tellJob', m.send({ type: 'nodeReady', command: wait, url: 'http://n1' }));
  assert.ok(told?.message.kind === 'placed');
  assert.equal(told.message.grant.coldStartMs, 35_000);
  assert.deepEqual(told.message.grant.coldStart, { rung: 'cold', capacityMs: 2_000, providerMs: 3_000, bootMs: 30_000 });
});
