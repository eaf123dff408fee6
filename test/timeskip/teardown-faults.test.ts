import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeAnalytics } from '../../src/db/analytics';
import type { LedgerRow } from '../../src/db/ledger';
import { DEFAULT_WORKSPACE, poolWorkflowId, asPoolKey } from '../../src/ids';
import { scaleToZeroUpdate } from '../../src/workflows/messages';
import { poolConfig } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();

/** Every node with a node_provisioning row has exactly one node_terminated row; returns the rows by node. */
function assertEveryNodeClosedOnce(rows: LedgerRow[]): Map<string, { provisioned: LedgerRow; terminated: LedgerRow }> {
  const byNode = new Map<string, { provisioned: LedgerRow; terminated: LedgerRow }>();
  const provisioned = rows.filter((r) => r.event_type === 'node_provisioning');
  assert.ok(provisioned.length > 0, 'nodes were provisioned');
  for (const row of provisioned) {
    const terminated = rows.filter((r) => r.event_type === 'node_terminated' && r.node_id === row.node_id);
    assert.equal(terminated.length, 1, `node ${row.node_id} has exactly one node_terminated row`);
    byNode.set(row.node_id!, { provisioned: row, terminated: terminated[0] });
  }
  return byNode;
}

test('terminateNode fails for 10 minutes of workflow time: the pool keeps placing jobs; billing ends when the terminate succeeds', async () => {
  const h = suite.harness();
  const env = suite.env();
  const mock = suite.mock();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('tf', poolConfig({ idleTimeoutSeconds: 60, teardownGraceSeconds: 0, slotsPerNode: 1 }));
    const first = await h.result(await h.submit('tf'));
    assert.equal(first.status, 'completed');
    const doomed = first.nodeId!;
    await mock.setFaults({ terminate: { message: 'provider outage (test)' } });
    try {
      await env.sleep('70 seconds');
      const failing = await h.until(
        'the node shows terminate_failed',
        async () => (await h.pool('tf')).nodes.find((n) => n.id === doomed && n.state === 'terminate_failed'),
        60_000,
      );
      assert.match(failing.lastError ?? '', /provider outage/);
      // Ten minutes of workflow time with the provider refusing every terminate: jobs still run, on new nodes.
      for (let minute = 0; minute < 10; minute += 2) {
        const job = await h.result(await h.submit('tf'));
        assert.equal(job.status, 'completed', `job at minute ${minute}`);
        assert.notEqual(job.nodeId, doomed);
        await env.sleep('2 minutes');
      }
      const view = await h.pool('tf');
      const stuck = view.nodes.find((n) => n.id === doomed);
      assert.equal(stuck?.state, 'terminate_failed', 'still failing after 10 minutes');
      assert.ok((stuck?.terminateFailures ?? 0) >= 3, `retried: ${stuck?.terminateFailures} failures`);
      assert.ok((await mock.list(asPoolKey('tf'))).includes(doomed), 'the provider still holds it');
    } finally {
      await mock.setFaults({});
    }
    await env.sleep('6 minutes');
    await h.until('every node terminated', async () => (await h.pool('tf')).nodes.length === 0, 60_000);
  });
  assert.deepEqual(await mock.list(asPoolKey('tf')), []);
  const closed = assertEveryNodeClosedOnce(await h.ledger('tf'));
  const doomedRows = [...closed.values()].find((r) => (r.terminated.details.terminateFailures as number) >= 3);
  assert.ok(doomedRows, 'the failing node closed with its failures counted');
  const billedMs = doomedRows.terminated.occurred_at.getTime() - doomedRows.provisioned.occurred_at.getTime();
  assert.ok(billedMs >= 11 * 60_000, `billed until the terminate succeeded (${billedMs} ms)`);
});

test('scale-to-zero and the idle teardown raced against arrivals, many times: one node_terminated row per node, no billing after', async () => {
  const h = suite.harness();
  const env = suite.env();
  const mock = suite.mock();
  const pool = asPoolKey('race');
  await (await h.worker()).runUntil(async () => {
    await h.startPool(pool, poolConfig({ idleTimeoutSeconds: 30, teardownGraceSeconds: 0, slotsPerNode: 1, maxNodes: 3 }));
    const handle = h.client.workflow.getHandle(poolWorkflowId(pool));
    const jobs: string[] = [];
    for (let round = 0; round < 8; round++) {
      jobs.push(await h.submit(pool));
      await h.result(jobs[jobs.length - 1]);
      if (round % 2 === 0) {
        // Scale-to-zero and an arrival at the same moment; in odd rounds the arrival goes first.
        const [, next] = await Promise.all([handle.executeUpdate(scaleToZeroUpdate), h.submit(pool)]);
        jobs.push(next);
      } else {
        // The idle timer fires exactly as a job arrives.
        await env.sleep('30 seconds');
        jobs.push(await h.submit(pool));
        await handle.executeUpdate(scaleToZeroUpdate);
      }
    }
    const results = await Promise.all(jobs.map((id) => h.result(id)));
    assert.deepEqual(new Set(results.map((r) => r.status)), new Set(['completed']), 'every job completed');
    await handle.executeUpdate(scaleToZeroUpdate);
    await h.until('the pool is at zero', async () => (await h.pool(pool)).nodes.length === 0, 60_000);
  });
  assert.deepEqual(await mock.list(pool), [], 'the provider holds nothing');
  const rows = await h.ledger(pool);
  const closed = assertEveryNodeClosedOnce(rows);
  assert.ok(closed.size >= 3, `several nodes came and went (${closed.size})`);
  const lastEnd = Math.max(...[...closed.values()].map((r) => r.terminated.occurred_at.getTime()));
  const after = await computeAnalytics(h.db, {
    workspaceId: DEFAULT_WORKSPACE,
    poolId: pool,
    from: new Date(lastEnd + 1),
    to: new Date(lastEnd + 3_600_000),
  });
  assert.equal(after.totals.gpuSecondsBilled, 0, 'nothing is billed after the last node went');
  assert.equal(after.totals.costUsd, 0);
});
