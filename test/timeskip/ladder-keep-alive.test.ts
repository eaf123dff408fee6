/**
 * The adaptive keep-alive with the warm-state ladder's stopped rung, in a live pool on the time-skipping server
 * with real mock nodes (issue 26: "a pool learns 9-minute gaps and stops instead of terminating, and wakes before
 * the next arrival").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countEvents, poolConfig, testMockProvider } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();

test('adaptive keep-alive with the stopped rung: the pool learns 9-minute gaps, stops its node instead of terminating it, and wakes it before the next arrival', async () => {
  // A 2 s boot against a 0.2 s wake, and a disk at $0.001/h: stopping for 9 minutes costs less than booting again
  // (storage × gap < running × (boot − wake)), as it does for real GPUs with minute-long boots.
  const mock = suite.track(testMockProvider({ coldStartSeconds: 2, stoppedWakeSeconds: 0.2 }));
  const h = suite.harness({ mock });
  const env = suite.env();
  // The fixed 10-minute timeout never lets a 9-minute gap go cold: the ladder may not either, so it must pre-warm.
  const config = poolConfig({
    idleTimeoutSeconds: 600,
    teardownGraceSeconds: 10,
    slotsPerNode: 1,
    maxNodes: 1,
    healthCheckIntervalSeconds: 120,
    keepAlive: { mode: 'adaptive', minSamples: 3, extraColdStartRate: 0 },
    lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2, stoppedPricePerHour: 0.001 }],
  });
  const cold: boolean[] = [];
  const nodes = new Set<string>();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('ladder', config);
    for (let round = 0; round < 7; round++) {
      const job = await h.result(await h.submit('ladder'));
      assert.equal(job.status, 'completed');
      cold.push((job.coldStartMs ?? 0) > 0);
      nodes.add(job.nodeId!);
      await env.sleep('9 minutes');
    }
    const { windows } = (await h.pool('ladder')).keepAlive;
    assert.equal(windows.down, 'stopped', windows.reason);
    assert.equal(windows.mode, 'prewarm', 'down right after the grace, running again before the next arrival');
    assert.ok(windows.rungs?.terminated && windows.rungs.stopped, 'the view prices the best plan of each rung');
    assert.ok(windows.rungs.stopped.expectedCostUsd < windows.rungs.terminated.expectedCostUsd);
    assert.ok((windows.wakeMs ?? 0) < (windows.bootMs ?? 0), 'the learned wake is shorter than the boot');
  });
  assert.equal(nodes.size, 1, 'one node served every round: stopped and woken, never created again');
  assert.deepEqual(cold.slice(-2), [false, false], `woken before the arrival once learned: ${cold}`);
  const events = countEvents(await h.ledger('ladder'));
  assert.equal(events.node_provisioning, 1);
  assert.equal(events.node_terminated, undefined);
  // Kept warm by the fixed timeout while it learned (3 gaps), then stopped in each gap and woken before its end.
  assert.ok((events.node_stopped ?? 0) >= 3 && events.node_started === events.node_stopped, JSON.stringify(events));
});
