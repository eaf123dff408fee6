/**
 * The warm-state ladder's sleeping rung on the mock provider (real node processes, vLLM-style `POST /sleep` and
 * `POST /wake_up`) under the time-skipping server: the idle timer puts the model server to sleep instead of
 * terminating the node, new work wakes the same node, a node that died while asleep is terminated and a fresh one
 * runs the job, and the ledger bills the sleep at the lane's sleeping price.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countEvents, oneNodeRungPool } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';
import { asPoolKey, poolWorkflowId } from '../../src/ids';
import { recordHistory } from '../helpers/histories';

const suite = timeSkippingSuite();

interface MockStats {
  sleeps: number;
  wakes: number;
  sleeping: boolean;
}

test('sleeping rung (mock provider): idle → model server asleep on the same machine, the next job wakes it; a node that died asleep is replaced by a fresh one; rows for each step', async () => {
  const h = suite.harness();
  const env = suite.env();
  const mock = suite.mock();
  const key = asPoolKey('sleepy');
  const config = oneNodeRungPool({ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2, sleepingPricePerHour: 0.15 });
  const asleep = () =>
    h.until('the node asleep', async () => {
      const view = await h.pool('sleepy');
      const node = view.nodes[0];
      return view.nodes.length === 1 && node.state === 'sleeping' && !node.inFlight ? node : undefined;
    });
  const stats = async (url: string) => (await (await fetch(`${url}/_mock/stats`)).json()) as MockStats;
  let first = '';
  let fresh = '';
  await (await h.worker()).runUntil(async () => {
    await h.startPool('sleepy', config);
    const one = await h.result(await h.submit('sleepy'));
    assert.equal(one.status, 'completed');
    first = one.nodeId!;
    await env.sleep('2 minutes');
    const node = await asleep();
    assert.equal(node.id, first);
    assert.equal((await h.pool('sleepy')).phase, 'idle', 'a pool whose nodes all sleep is idle');
    assert.deepEqual(await stats(node.url!).then((s) => [s.sleeps, s.sleeping]), [1, true], 'the model server itself was put to sleep');
    assert.deepEqual(await mock.list(key), [first], 'the machine is kept');

    const two = await h.result(await h.submit('sleepy'));
    assert.equal(two.status, 'completed');
    assert.equal(two.nodeId, first, 'woken, not created');
    assert.equal(two.coldStartPhases?.rung, 'sleeping');
    assert.equal((await stats(node.url!)).wakes, 1);

    await env.sleep('2 minutes');
    const again = await asleep();
    // The node dies while asleep: its wake cannot reach it.
    await fetch(`${again.url}/_mock/interrupt`, { method: 'POST' });
    const three = await h.result(await h.submit('sleepy'));
    assert.equal(three.status, 'completed');
    fresh = three.nodeId!;
    assert.notEqual(fresh, first, 'a fresh node after the failed wake');
    await h.until('the dead node terminated', async () => ((await mock.list(key)).join() === fresh ? true : undefined));
  });
  // A history with a node asleep, woken, asleep again and terminated after a failed wake (test/replay.test.ts).
  await recordHistory(h.client, poolWorkflowId(key), 'pool-sleeping-rung');
  const rows = await h.ledger('sleepy');
  const of = (id: string) => countEvents(rows.filter((r) => r.node_id === id));
  assert.deepEqual(of(first), { node_provisioning: 1, node_ready: 1, job_completed: 2, node_slept: 2, node_woke: 2, node_terminated: 1 });
  const ended = rows.find((r) => r.node_id === first && r.event_type === 'node_terminated')!;
  assert.match(String(ended.details.reason), /wake failed/);
  assert.ok((ended.details.sleptSeconds as number) >= 60, 'its time asleep is counted apart');
  assert.ok(Math.abs((ended.details.sleepingUsd as number) - ((ended.details.sleptSeconds as number) / 3600) * 0.15) < 1e-9);
  assert.ok(rows.filter((r) => r.event_type === 'node_slept').every((r) => r.details.sleepingPricePerHour === 0.15));
  assert.equal(of(fresh).node_provisioning, 1);
});
