import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countEvents, poolConfig } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();

test('adaptive keep-alive in a live pool: arrivals every 9 minutes cold-start every time with a fixed 60 s timeout, and stop cold-starting once the adaptive pool has learned', async () => {
  const h = suite.harness();
  const env = suite.env();
  const base = { idleTimeoutSeconds: 60, teardownGraceSeconds: 10, minNodes: 0, slotsPerNode: 1 };
  await (await h.worker()).runUntil(async () => {
    await h.startPool('fixed', poolConfig({ ...base, keepAlive: { mode: 'fixed', minSamples: 3, extraColdStartRate: 0 } }));
    await h.startPool('learning', poolConfig({ ...base, keepAlive: { mode: 'adaptive', minSamples: 3, extraColdStartRate: 0 } }));
    const cold: Record<string, boolean[]> = { fixed: [], learning: [] };
    for (let round = 0; round < 6; round++) {
      const jobs = await Promise.all(['fixed', 'learning'].map(async (pool) => [pool, await h.result(await h.submit(pool))] as const));
      for (const [pool, job] of jobs) {
        assert.equal(job.status, 'completed');
        cold[pool].push((job.coldStartMs ?? 0) > 0);
      }
      await env.sleep('9 minutes');
    }
    assert.deepEqual(cold.fixed, [true, true, true, true, true, true], 'the fixed 60 s timeout lets every 9-minute gap go cold');
    // Rounds 1-4 are cold: at zero, then gaps learned (3 needed) under the fixed timeout; from round 5 the pool
    // tears down at once and pre-warms before the next arrival.
    assert.deepEqual(cold.learning.slice(4), [false, false], `the adaptive pool stopped cold-starting: ${cold.learning}`);
    const view = await h.pool('learning');
    assert.equal(view.keepAlive.mode, 'adaptive');
    assert.equal(view.keepAlive.windows.mode, 'prewarm', view.keepAlive.windows.reason);
    assert.ok(view.keepAlive.gapsSeen >= 5);
    assert.ok((view.keepAlive.gapPercentilesS?.p50 ?? 0) >= 500, 'it learned 9-minute gaps');
    const fixedView = await h.pool('fixed');
    assert.equal(fixedView.keepAlive.windows.mode, 'fixed');
    assert.equal(fixedView.keepAlive.adaptiveWouldChoose?.mode, 'prewarm', 'a fixed pool shows what adaptive would do');
  });
  // Each pre-warm is a node booted and billed like any other: it has its ledger rows.
  const learned = countEvents(await h.ledger('learning'));
  assert.ok(learned.node_provisioning >= 6, `nodes provisioned: ${learned.node_provisioning}`);
});
