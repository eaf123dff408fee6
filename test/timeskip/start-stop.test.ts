import assert from 'node:assert/strict';
import { test } from 'node:test';
import { poolWorkflowId, asPoolKey } from '../../src/ids';
import { stopPoolUpdate, warmPoolUpdate } from '../../src/workflows/messages';
import { countEvents, poolConfig, testMockProvider } from '../helpers/stack';
import { recordHistory } from '../helpers/histories';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();
const tokens = (n: number) => ({ messages: [{ role: 'user', content: 'count' }], max_tokens: n });

test('start (warm) brings a node up with no job; the idle timer still stops it after idleTimeoutSeconds, and it stays stopped', async () => {
  const h = suite.harness();
  const env = suite.env();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('warm', poolConfig({ idleTimeoutSeconds: 600, teardownGraceSeconds: 0 }));
    const handle = env.client.workflow.getHandle(poolWorkflowId(asPoolKey('warm')));
    await assert.rejects(handle.executeUpdate(warmPoolUpdate, { args: [{ nodes: 0 }] }), (err: Error) =>
      /positive integer/.test(String(err.cause)),
    );
    await handle.executeUpdate(warmPoolUpdate, { args: [{ nodes: 1 }] });
    await h.until('warm node ready', async () => ((await h.pool('warm')).nodes.some((n) => n.state === 'ready') ? true : undefined));
    await env.sleep('9 minutes');
    assert.equal((await h.pool('warm')).nodes.length, 1, 'kept warm before the idle timeout');
    await env.sleep('2 minutes');
    await h.until('warm node stopped', async () => ((await h.pool('warm')).nodes.length === 0 ? true : undefined));
    await env.sleep('30 minutes');
    assert.deepEqual(
      [(await h.pool('warm')).nodes.length, (await h.pool('warm')).phase],
      [0, 'idle'],
      'a start lasts one idle period, then the baseline is minNodes again',
    );
    await recordHistory(env.client, poolWorkflowId(asPoolKey('warm')), 'pool-warm-start');
  });
  const events = countEvents(await h.ledger('warm'));
  assert.deepEqual([events.node_provisioning, events.node_terminated], [1, 1]);
});

test('stop: a running job gets the drain timeout, then is preempted (progress kept); the nodes go; the queued work starts the pool again', async () => {
  const mock = suite.track(testMockProvider({ tokensPerSecond: 100 }));
  const h = suite.harness({ mock });
  const env = suite.env();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('stop', poolConfig({ maxNodes: 1, slotsPerNode: 1 }));
    const handle = env.client.workflow.getHandle(poolWorkflowId(asPoolKey('stop')));

    // Time enough: the 1-second job finishes, no preemption, then the node goes.
    const short = await h.submit('stop', tokens(100));
    await h.until('short job running', async () => ((await h.job(short)).status === 'running' ? true : undefined));
    await handle.executeUpdate(stopPoolUpdate, { args: [{ drainTimeoutSeconds: 600, then: 'idle' }] });
    assert.equal((await h.pool('stop')).phase, 'stopping');
    const shortDone = await h.result(short);
    assert.deepEqual([shortDone.status, shortDone.preemptions ?? 0], ['completed', 0]);
    await h.until('stopped', async () =>
      (await h.pool('stop')).nodes.length === 0 && (await h.pool('stop')).phase === 'idle' ? true : undefined,
    );

    // Not enough time: the 8-second job is preempted after 1 s, requeued, and starts a new node after the stop.
    const long = await h.submit('stop', tokens(800));
    await h.until('long job running', async () => ((await h.job(long)).status === 'running' ? true : undefined));
    const firstNode = (await h.job(long)).nodeId;
    await handle.executeUpdate(stopPoolUpdate, { args: [{ drainTimeoutSeconds: 1, then: 'idle' }] });
    const longDone = await h.result(long);
    assert.deepEqual([longDone.status, longDone.preemptions], ['completed', 1]);
    assert.notEqual(longDone.nodeId, firstNode, 'it resumed on a new node');
    await recordHistory(env.client, poolWorkflowId(asPoolKey('stop')), 'pool-stop-drain-timeout');
  });
  const rows = await h.ledger('stop');
  const preempted = rows.filter((r) => r.event_type === 'job_preempted');
  assert.equal(preempted.length, 1);
  assert.equal(preempted[0]!.details.trigger, 'stop');
  const events = countEvents(rows);
  assert.deepEqual([events.node_provisioning, events.node_terminated], [3, 2], 'one node per stop cycle, the last one still up');
});
