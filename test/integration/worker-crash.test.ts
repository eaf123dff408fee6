import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ledgerRowsForPool } from '../../src/db/ledger';
import { ApiStack, poolBody } from '../helpers/api-stack';
import { asPoolKey } from '../../src/ids';
import { Worker } from '@temporalio/worker';
import { writeFileSync } from 'node:fs';
import { workflowBundle } from '../../src/worker';

let stack: ApiStack;
before(async () => {
  // Cold start long enough that the kill lands while nodes are still booting.
  stack = await new ApiStack({ coldStartSeconds: 4, workerProcess: true }).start();
});
after(async () => {
  await stack?.stop();
});

test('the worker killed in the middle of scale-up and restarted: provisioning finishes, every job completes, no node orphaned', async () => {
  // A long idle timeout: the nodes must still be up when the test looks for them (a slow run once saw them torn down first).
  assert.equal(
    (await stack.request('POST', '/v1/pools', poolBody('crash', { slotsPerNode: 2, maxNodes: 4, idleTimeoutSeconds: 120 }))).status,
    201,
  );
  const jobs = await Promise.all(
    Array.from({ length: 8 }, () => stack.request('POST', '/v1/jobs', { pool: 'crash', payload: { prompt: 'hi' } })),
  );
  const booting = await stack.until('nodes booting', async () => {
    const pool = await stack.request('GET', '/v1/pools/crash');
    const provisioning = pool.body.nodes?.filter((n: { state: string }) => n.state === 'provisioning') ?? [];
    return provisioning.length > 0 && (await stack.mock.list(asPoolKey('crash'))).length > 0 ? pool.body : undefined;
  });
  assert.ok(booting.nodes.length >= 1);
  await stack.killWorkerProcess();
  const startedBeforeKill = await stack.mock.list(asPoolKey('crash'));
  await stack.startWorkerProcess();

  const finals = await stack.until(
    'all jobs completed after the restart',
    async () => {
      const all = await Promise.all(jobs.map((j) => stack.request('GET', j.body.status_url)));
      return all.every((j) => j.body.status === 'completed') ? all.map((j) => j.body) : undefined;
    },
    90_000,
  );
  assert.equal(finals.length, 8);
  // Provisioning cut off by the crash resumes once the lost activity attempts time out.
  const pool = await stack.until(
    'every node ready',
    async () => {
      const view = (await stack.request('GET', '/v1/pools/crash')).body;
      return view.nodes.every((n: { state: string }) => n.state === 'ready') ? view : undefined;
    },
    90_000,
  );
  const poolNodes = pool.nodes.map((n: { id: string }) => n.id).sort();
  assert.deepEqual((await stack.mock.list(asPoolKey('crash'))).sort(), poolNodes, 'the provider holds exactly the pool’s nodes');
  const rows = await ledgerRowsForPool(stack.database.db, 'crash');
  const ends = rows
    .filter((r) => r.event_type === 'node_terminated' || r.event_type === 'node_lost')
    .map((r) => `${r.node_id} ${r.event_type}: ${r.details.reason}`);
  for (const id of startedBeforeKill)
    assert.ok(poolNodes.includes(id), `node ${id} started before the crash was adopted, not orphaned (${ends.join('; ')})`);
  // A ledger write that died with the worker is retried once its attempt times out (30 s): wait for it.
  const provisioned = await stack.until(
    'one provisioning row per node',
    async () => {
      const written = (await ledgerRowsForPool(stack.database.db, 'crash'))
        .filter((r) => r.event_type === 'node_provisioning')
        .map((r) => r.node_id!);
      return written.length >= poolNodes.length ? written.sort() : undefined;
    },
    60_000,
  );
  assert.deepEqual(provisioned, poolNodes, 'one provisioning row per node, none twice');
  // The job workflows that lived through the crash replay with the current code (a query on a finished job
  // replays its whole history: a nondeterminism would make GET /v1/jobs/:id fail long after the job ended).
  for (const job of jobs) {
    const history = await stack.env.client.workflow.getHandle(`job:${job.body.id}`).fetchHistory();
    try {
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, `job:${job.body.id}`);
    } catch (err) {
      if (process.env.DUMP_HISTORIES) writeFileSync(`/tmp/history-${job.body.id}.json`, JSON.stringify(history));
      throw err;
    }
  }
});
