import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countEvents, poolConfig } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();

test('N jobs at zero start ceil(N / slotsPerNode) nodes, not N, and every job completes', async () => {
  const h = suite.harness();
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
  const h = suite.harness();
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
