import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv } from '../helpers/temporal';
import { startTestDatabase, type TestDatabase } from '../helpers/postgres';
import { countEvents, PoolHarness, poolConfig, testMockProvider } from '../helpers/stack';

const harnesses: PoolHarness[] = [];
function harness(): PoolHarness {
  const h = new PoolHarness(env, database.db, { mock });
  harnesses.push(h);
  return h;
}
import type { MockProvider } from '../../src/activities/providers/mock';

let env: TestWorkflowEnvironment;
let database: TestDatabase;
let mock: MockProvider;

afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});
before(async () => {
  [env, database] = await Promise.all([timeSkippingEnv(), startTestDatabase()]);
  mock = testMockProvider();
});
after(async () => {
  await mock?.terminateAll();
  await env?.teardown();
  await database?.close();
});

test('N jobs at zero start ceil(N / slotsPerNode) nodes, not N, and every job completes', async () => {
  const h = harness();
  const worker = await h.worker();
  await worker.runUntil(async () => {
    await h.startPool('zero', poolConfig({ maxNodes: 10, slotsPerNode: 4 }));
    const jobs = await Promise.all(Array.from({ length: 10 }, () => h.submit('zero')));
    const results = await Promise.all(jobs.map((id) => h.result(id)));
    assert.deepEqual(results.map((r) => r.status), Array(10).fill('completed'));
    const view = await h.pool('zero');
    assert.equal(view.nodes.length, 3, 'ceil(10 / 4) nodes');
    assert.equal(countEvents(await h.ledger('zero')).node_provisioning, 3);
  });
});

test('scale from zero never exceeds maxNodes; parked jobs run in arrival order', async () => {
  const h = harness();
  const worker = await h.worker();
  await worker.runUntil(async () => {
    await h.startPool('order', poolConfig({ maxNodes: 1, slotsPerNode: 1 }));
    const jobs: string[] = [];
    for (let i = 0; i < 5; i++) {
      jobs.push(await h.submit('order'));
      // Each job is in the pool's queue before the next is submitted, so arrival order is known.
      await h.until('job queued', async () => {
        const v = await h.pool('order');
        return v.queuedJobIds.includes(jobs[i]) || v.running > 0 || v.placedTotal > i;
      });
    }
    const results = await Promise.all(jobs.map((id) => h.result(id)));
    const byStart = [...results].sort((a, b) => a.placedAt! - b.placedAt!).map((r) => r.id);
    assert.deepEqual(byStart, jobs);
    assert.equal((await h.pool('order')).nodes.length, 1);
  });
});
