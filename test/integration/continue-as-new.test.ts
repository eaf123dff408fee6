import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newPoolState } from '../../src/domain/pool-machine';
import { poolWorkflowId, asPoolKey } from '../../src/ids';
import { countEvents } from '../helpers/stack';
import { ApiStack, poolBody } from '../helpers/api-stack';
import { recordHistory } from '../helpers/histories';

let stack: ApiStack;
before(async () => {
  // A tiny history limit makes Temporal suggest continue-as-new after a few dozen events.
  stack = await new ApiStack({ dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 60 } }).start();
});
after(async () => {
  await stack?.stop();
});

test('the pool continues-as-new when Temporal suggests it, losing no queued job, node or idle timer', async () => {
  assert.equal(
    (await stack.request('POST', '/v1/pools', poolBody('can', { slotsPerNode: 2, maxNodes: 3, idleTimeoutSeconds: 8 }))).status,
    201,
  );
  const handle = stack.env.client.workflow.getHandle(poolWorkflowId(asPoolKey('can')));
  const firstRun = (await handle.describe()).runId;
  const all: string[] = [];
  for (let wave = 0; wave < 4; wave++) {
    const jobs = await Promise.all(
      Array.from({ length: 6 }, () => stack.request('POST', '/v1/jobs', { pool: 'can', payload: { prompt: `w${wave}` } })),
    );
    all.push(...jobs.map((j) => j.body.status_url));
  }
  const finals = await stack.until('all completed', async () => {
    const views = await Promise.all(all.map((url) => stack.request('GET', url)));
    return views.every((v) => v.body.status === 'completed') ? views.map((v) => v.body) : undefined;
  });
  assert.equal(finals.length, 24);
  const description = await handle.describe();
  assert.notEqual(description.runId, firstRun, 'the pool continued as new at least once');
  await recordHistory(stack.env.client, poolWorkflowId(asPoolKey('can')), 'pool-continued-as-new', firstRun);
  const view = (await stack.request('GET', '/v1/pools/can')).body;
  assert.equal(view.placedTotal, 24, 'placements carried across runs');
  assert.ok(view.nodes.length >= 1 && view.nodes.length <= 3, 'nodes carried across runs');
  const nodesAfterCan = view.nodes.map((n: { id: string }) => n.id);
  assert.deepEqual((await stack.mock.list(asPoolKey('can'))).sort(), [...nodesAfterCan].sort(), 'no node orphaned or duplicated');
  // The idle timer still fires in the new run.
  let lastSeen: unknown;
  await stack
    .until(
      'back to zero',
      async () => {
        lastSeen = (await stack.request('GET', '/v1/pools/can')).body;
        return (lastSeen as { nodes?: unknown[] }).nodes?.length === 0;
      },
      30_000,
    )
    .catch((err: Error) => {
      // Say what the pool looked like, so a rare failure here can be diagnosed from the CI log.
      throw new Error(`${err.message}; pool was ${JSON.stringify(lastSeen)}`);
    });
  assert.deepEqual(await stack.mock.list(asPoolKey('can')), []);
  // Not a row lost across runs: every node billed is also closed, every job recorded.
  const events = countEvents(await stack.closedLedger('can'));
  assert.ok(events.node_provisioning >= 1);
  assert.equal(events.node_terminated, events.node_provisioning, 'each billed node has its terminated row');
  assert.equal(events.node_ready, events.node_provisioning);
  assert.equal(events.job_completed, 24);
});

test('a pool still on the first workflow type moves to poolWorkflowV2 with its state, and keeps working', async () => {
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('moved'))).status, 201);
  const client = stack.env.client;
  const handle = client.workflow.getHandle(poolWorkflowId(asPoolKey('moved')));
  const config = (await stack.request('GET', '/v1/pools/moved')).body.config;
  await handle.terminate('test: replaced by a run of the first pool workflow');
  const state = { ...newPoolState(asPoolKey('moved'), config), nodeSequence: 3, placedTotal: 7 };
  const legacy = await client.workflow.start('poolWorkflow', {
    workflowId: poolWorkflowId(asPoolKey('moved')),
    taskQueue: stack.taskQueue,
    args: [{ poolId: 'moved', config, state }],
  });
  await stack.until('moved to poolWorkflowV2', async () => (await handle.describe()).type === 'poolWorkflowV2');
  const job = await stack.request('POST', '/v1/jobs', { pool: 'moved', payload: { prompt: 'after the move' } });
  const done = await stack.until('job completed', async () => {
    const view = await stack.request('GET', job.body.status_url);
    return view.body.status === 'completed' ? view.body : undefined;
  });
  assert.equal(done.node_id, 'moved-n4', 'node numbering carried over');
  assert.equal((await stack.request('GET', '/v1/pools/moved')).body.placedTotal, 8, 'counters carried over');
  await recordHistory(client, poolWorkflowId(asPoolKey('moved')), 'pool-v1-moves-to-v2', legacy.firstExecutionRunId);
});
