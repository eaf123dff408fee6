import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { temporal } from '@temporalio/proto';
import { poolWorkflowId, asPoolKey } from '../../src/ids';
import { jobArrivedSignal } from '../../src/workflows/messages';
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
    assert.deepEqual(
      results.map((r) => r.status),
      Array(10).fill('completed'),
    );
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

test('a ledger write that fails after its insert is retried by Temporal and still leaves exactly one row', async () => {
  const h = suite.harness();
  const calls: Record<string, number> = {};
  const worker = await h.worker({
    afterLedgerWrite: (event) => {
      calls[event.eventKey] = (calls[event.eventKey] ?? 0) + 1;
      // The row is committed; the activity then fails as if the worker lost its reply.
      if (calls[event.eventKey] === 1) throw new Error(`injected failure after writing ${event.eventKey}`);
    },
  });
  await worker.runUntil(async () => {
    await h.startPool('retry', poolConfig({ maxNodes: 1 }));
    const jobId = await h.submit('retry');
    assert.equal((await h.result(jobId)).status, 'completed');
    const rows = await h.until('job row written', async () => {
      const r = await h.ledger('retry');
      return r.some((row) => row.event_type === 'job_completed') && r.some((row) => row.event_type === 'node_ready') ? r : undefined;
    });
    const counts = countEvents(rows);
    assert.equal(counts.node_provisioning, 1);
    assert.equal(counts.node_ready, 1);
    assert.equal(counts.job_completed, 1);
    const retried = Object.entries(calls)
      .filter(([, n]) => n >= 2)
      .map(([key]) => key);
    assert.ok(
      retried.some((k) => k.endsWith(':provisioning')),
      `provisioning write retried: ${JSON.stringify(calls)}`,
    );
    assert.ok(retried.includes(`${jobId}:completed`), `job outcome write retried: ${JSON.stringify(calls)}`);
    const job = await h.db.query('SELECT status FROM jobs WHERE id = $1', [jobId]);
    assert.equal(job.rows[0].status, 'completed');
  });
});

test("arrivals that come with the pool run's first workflow task: exactly one provision call per node", async () => {
  const h = suite.harness();
  // No worker yet: the start and the four arrivals all reach the pool in its first workflow task.
  await h.startPool('first', poolConfig({ maxNodes: 4, slotsPerNode: 2 }));
  const handle = h.client.workflow.getHandle(poolWorkflowId(asPoolKey('first')));
  for (let i = 0; i < 4; i++) await handle.signal(jobArrivedSignal, { jobId: randomUUID(), attempt: 1, front: false });
  await (await h.worker()).runUntil(async () => {
    await h.until('two nodes provisioned', async () => (await h.pool('first')).nodes.filter((n) => n.url).length === 2);
  });
  const history = await handle.fetchHistory();
  const provisions = (history.events ?? []).filter(
    (e) =>
      e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
      e.activityTaskScheduledEventAttributes?.activityType?.name === 'provisionNode',
  );
  assert.equal(provisions.length, 2, "one provision per node: the run's start is taken before the arrivals");
});
