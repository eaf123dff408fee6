/**
 * The warm-state ladder's stopped rung on the mock provider (real node processes) under the time-skipping server:
 * the idle timer stops the node instead of terminating it, new work wakes the same node, a wake that fails gets a
 * fresh node while the stopped one is terminated, and the ledger bills each part at its price.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countEvents, oneNodeRungPool } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';
import { asPoolKey, poolWorkflowId } from '../../src/ids';
import { recordHistory } from '../helpers/histories';

const suite = timeSkippingSuite();

test('stopped rung (mock provider): idle → stopped with its disk kept, the next job wakes the same node; a failed wake terminates it and a fresh node runs the job; rows for each step', async () => {
  const h = suite.harness();
  const env = suite.env();
  const mock = suite.mock();
  const key = asPoolKey('ladder');
  const config = oneNodeRungPool({ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2, stoppedPricePerHour: 0.03 });
  const stoppedNode = () =>
    h.until('the node stopped', async () => {
      const view = await h.pool('ladder');
      return view.nodes.length === 1 && view.nodes[0].state === 'stopped' ? view.nodes[0] : undefined;
    });
  let first = '';
  let fresh = '';
  await (await h.worker()).runUntil(async () => {
    await h.startPool('ladder', config);
    const one = await h.result(await h.submit('ladder'));
    assert.equal(one.status, 'completed');
    first = one.nodeId!;
    await env.sleep('2 minutes');
    assert.equal((await stoppedNode()).id, first);
    assert.equal((await h.pool('ladder')).phase, 'idle', 'a pool whose nodes are all stopped is idle');
    assert.deepEqual(await mock.list(key), [first], 'the provider still holds it: its disk is kept');
    assert.equal((await mock.describe(key, first)).reason, 'stopped', 'its process is gone');

    const two = await h.result(await h.submit('ladder'));
    assert.equal(two.status, 'completed');
    assert.equal(two.nodeId, first, 'woken, not created');

    await env.sleep('2 minutes');
    await stoppedNode();
    await mock.setFaults({ start: { message: 'no GPU left on the host' } });
    try {
      const three = await h.result(await h.submit('ladder'));
      assert.equal(three.status, 'completed');
      fresh = three.nodeId!;
      assert.notEqual(fresh, first, 'a fresh node after the failed wake');
    } finally {
      await mock.setFaults({});
    }
    await h.until('the stopped node terminated', async () => ((await mock.list(key)).join() === fresh ? true : undefined));
  });
  // A history with a node stopped, woken, stopped again and terminated after a failed wake (test/replay.test.ts).
  await recordHistory(h.client, poolWorkflowId(key), 'pool-stopped-rung');
  const rows = await h.ledger('ladder');
  const of = (id: string) => countEvents(rows.filter((r) => r.node_id === id));
  assert.deepEqual(of(first), {
    node_provisioning: 1,
    node_ready: 1,
    job_completed: 2,
    node_stopped: 2,
    node_started: 1,
    node_terminated: 1,
  });
  const ended = rows.find((r) => r.node_id === first && r.event_type === 'node_terminated')!;
  assert.match(String(ended.details.reason), /wake failed: no GPU left on the host/);
  assert.ok((ended.details.stoppedSeconds as number) >= 60, 'its stopped time is counted apart');
  assert.ok((ended.details.storageUsd as number) > 0);
  assert.equal(
    rows.filter((r) => r.event_type === 'node_stopped').every((r) => r.details.stoppedPricePerHour === 0.03),
    true,
  );
  assert.deepEqual(of(fresh).node_provisioning, 1);
});
