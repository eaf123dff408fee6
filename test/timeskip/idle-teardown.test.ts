import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countEvents, poolConfig } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';
import { asPoolKey, poolWorkflowId } from '../../src/ids';

const suite = timeSkippingSuite();

test('durable idle timer: waits idleTimeout, any arrival restarts it, a worker restart neither resets nor loses it', async () => {
  const h = suite.harness();
  const env = suite.env();
  const mock = suite.mock();
  // Health checks every 2 minutes, not 15 s: without a workflow cache each check replays the whole history.
  const config = poolConfig({ idleTimeoutSeconds: 600, teardownGraceSeconds: 30, minNodes: 0, healthCheckIntervalSeconds: 120 });
  let firstNode = '';
  // No sticky cache: the second worker must not wait on the first one's sticky queue.
  await (await h.worker({ maxCachedWorkflows: 0 })).runUntil(async () => {
    await h.startPool('idle', config);
    const job = await h.result(await h.submit('idle'));
    assert.equal(job.status, 'completed');
    firstNode = job.nodeId!;
    await env.sleep('9 minutes');
    assert.equal((await h.pool('idle')).nodes.length, 1, 'still warm before the timeout');
    // An arrival at minute 9 restarts the 10-minute wait.
    assert.equal((await h.result(await h.submit('idle'))).status, 'completed');
    await env.sleep('9 minutes');
    assert.equal((await h.pool('idle')).nodes.length, 1, 'the arrival restarted the wait');
  });
  // Worker gone and a new one started: the pool's timer is in Temporal, not in the worker.
  await (await h.worker({ maxCachedWorkflows: 0 })).runUntil(async () => {
    await env.sleep('2 minutes');
    const view = await h.until('teardown under way', async () => {
      const v = await h.pool('idle');
      return v.phase === 'tearing_down' || v.nodes.length === 0 ? v : undefined;
    });
    assert.ok(view, 'teardown started after the full idle timeout');
    await env.sleep('1 minute');
    const done = await h.until('nodes terminated', async () => {
      const v = await h.pool('idle');
      return v.nodes.length === 0 ? v : undefined;
    });
    assert.equal(done.phase, 'idle');
  });
  assert.deepEqual(await mock.list(asPoolKey('idle')), [], 'the provider holds no node for the pool');
  const events = countEvents(await h.ledger('idle'));
  assert.equal(events.node_provisioning, 1);
  assert.equal(events.node_terminated, 1);
  assert.equal(events.teardown_started, 1);
  assert.equal(events.teardown_cancelled, undefined);
  assert.ok(firstNode);
});

test('a job arriving during teardown cancels it: the node is kept, the job runs on it, nothing is lost', async () => {
  const h = suite.harness();
  const env = suite.env();
  const mock = suite.mock();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('burst', poolConfig({ idleTimeoutSeconds: 600, teardownGraceSeconds: 60, slotsPerNode: 2 }));
    const jobs = await Promise.all([h.submit('burst'), h.submit('burst'), h.submit('burst')]);
    const firsts = await Promise.all(jobs.map((id) => h.result(id)));
    assert.ok(firsts.every((j) => j.status === 'completed'));
    const nodesBefore = (await h.pool('burst')).nodes.map((n) => n.id).sort();
    assert.equal(nodesBefore.length, 2);
    await env.sleep(605_000);
    const tearing = await h.pool('burst');
    assert.equal(tearing.phase, 'tearing_down');
    assert.ok(tearing.nodes.every((n) => n.state === 'terminating'));
    const late = await Promise.all([h.submit('burst'), h.submit('burst')]);
    const results = await Promise.all(late.map((id) => h.result(id)));
    assert.deepEqual(
      results.map((r) => r.status),
      ['completed', 'completed'],
    );
    for (const r of results) assert.ok(nodesBefore.includes(r.nodeId!), `job ran on a kept node, not ${r.nodeId}`);
    const after = await h.pool('burst');
    assert.deepEqual(after.nodes.map((n) => n.id).sort(), nodesBefore);
    assert.ok(after.nodes.every((n) => n.state === 'ready'));
    assert.deepEqual((await mock.list(asPoolKey('burst'))).sort(), nodesBefore, 'no node was terminated at the provider');
  });
  const events = countEvents(await h.ledger('burst'));
  assert.equal(events.teardown_started, 1);
  assert.equal(events.teardown_cancelled, 1);
  assert.equal(events.node_terminated, undefined);
  assert.equal(events.node_provisioning, 2);
});

test('burst over a warm baseline: jobs run on the baseline first; burst nodes only past burstThreshold, never beyond maxNodes', async () => {
  const h = suite.harness();
  const env = suite.env();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('base', poolConfig({ minNodes: 1, maxNodes: 3, slotsPerNode: 2, burstThreshold: 2 }));
    const warm = await h.until('baseline ready', async () => {
      const v = await h.pool('base');
      return v.nodes.length === 1 && v.nodes[0].state === 'ready' ? v : undefined;
    });
    const baselineNode = warm.nodes[0].id;
    // 4 slow jobs: 2 run on the baseline, 2 queue — not past the threshold of 2, so no burst node.
    const slow = { messages: [{ role: 'user', content: 'long' }], max_tokens: 200 };
    const first = await Promise.all(Array.from({ length: 4 }, () => h.submit('base', slow)));
    await h.until('four accounted for', async () => {
      const v = await h.pool('base');
      return v.running + v.queued === 4;
    });
    const within = await h.pool('base');
    assert.equal(within.nodes.length, 1, 'a backlog within burstThreshold adds no node');
    assert.equal(within.nodes[0].busySlots, 2, 'the baseline runs jobs first');
    // 6 more: backlog 8 - 0 free = 8 > 2 → burst, capped at maxNodes.
    const second = await Promise.all(Array.from({ length: 6 }, () => h.submit('base', slow)));
    const results = await Promise.all([...first, ...second].map((id) => h.result(id)));
    assert.ok(results.every((r) => r.status === 'completed'));
    assert.ok(results.filter((r) => r.nodeId === baselineNode).length >= 2, 'the baseline ran jobs');
    const view = await h.pool('base');
    assert.equal(view.nodes.length, 3, 'burst stopped at maxNodes');
    await env.sleep('12 minutes');
    await h.until('back to baseline', async () => {
      const v = await h.pool('base');
      return v.nodes.length === 1 ? v : undefined;
    });
    assert.equal((await h.pool('base')).nodes[0].id, baselineNode, 'the baseline node stays');
  });
});

test('a pool workflow cancelled from outside (Temporal UI, tctl) ends cancelled: its pending timer does not fail a workflow task', async () => {
  const h = suite.harness();
  const env = suite.env();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('cancelled', poolConfig({ idleTimeoutSeconds: 600, minNodes: 0 }));
    assert.equal((await h.result(await h.submit('cancelled'))).status, 'completed');
    // The idle timer is pending now; cancel the run.
    const handle = env.client.workflow.getHandle(poolWorkflowId(asPoolKey('cancelled')));
    await handle.cancel();
    // Bounded: a failing workflow task would leave the run open for ever instead of ending it.
    const ended = Promise.race([
      handle.result(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('the run did not end within 30 s')), 30_000).unref()),
    ]);
    await assert.rejects(ended, (err: Error) => {
      assert.match(String((err as { cause?: Error }).cause?.name ?? err.name), /Cancel/);
      return true;
    });
    const failedTasks = (await handle.fetchHistory()).events?.filter((e) => e.workflowTaskFailedEventAttributes) ?? [];
    assert.equal(failedTasks.length, 0, 'no workflow task failed');
  });
});
