import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ledgerRowsForPool } from '../../src/db/ledger';
import { jobWorkflowId, poolWorkflowId, asPoolKey } from '../../src/ids';
import { countEvents } from '../helpers/stack';
import { recordHistory } from '../helpers/histories';
import { updatePoolConfigUpdate } from '../../src/workflows/messages';
import { ApiStack, poolBody } from '../helpers/api-stack';

let stack: ApiStack;
before(async () => {
  stack = await new ApiStack({ coldStartSeconds: 1 }).start();
});
after(async () => {
  await stack?.stop();
});

test('20 concurrent jobs at zero over HTTP: all complete on at most ceil(20/4) nodes, the pool returns to zero, the ledger is exact', async () => {
  const created = await stack.request('POST', '/v1/pools', poolBody('twenty'));
  assert.equal(created.status, 201);
  const submitted = await Promise.all(
    Array.from({ length: 20 }, (_, i) => stack.request('POST', '/v1/jobs', { pool: 'twenty', payload: { prompt: `job ${i}` } })),
  );
  for (const s of submitted) {
    assert.equal(s.status, 202);
    assert.match(s.body.status_url, /^\/v1\/jobs\/[0-9a-f-]{36}$/);
  }
  let peakNodes = 0;
  const finals = await stack.until('all jobs terminal', async () => {
    const pool = await stack.request('GET', '/v1/pools/twenty');
    peakNodes = Math.max(peakNodes, pool.body.nodes.length);
    const jobs = await Promise.all(submitted.map((s) => stack.request('GET', s.body.status_url)));
    return jobs.every((j) => j.body.status === 'completed') ? jobs.map((j) => j.body) : undefined;
  });
  for (const job of finals) {
    assert.equal(job.tokens.completion, 16);
    assert.ok(job.queue_ms >= 0 && job.run_ms > 0);
  }
  assert.ok(peakNodes >= 1 && peakNodes <= 5, `peak ${peakNodes} nodes`);
  const drained = await stack.until('back to zero', async () => {
    const pool = await stack.request('GET', '/v1/pools/twenty');
    return pool.body.nodes.length === 0 && pool.body.phase === 'idle' ? pool.body : undefined;
  });
  assert.equal(drained.placedTotal, 20);
  assert.deepEqual(await stack.mock.list(asPoolKey('twenty')), []);

  const rows = await stack.closedLedger('twenty');
  const nodes = new Set(rows.filter((r) => r.event_type === 'node_provisioning').map((r) => r.node_id));
  assert.ok(nodes.size <= 5);
  assert.deepEqual(countEvents(rows), {
    node_provisioning: nodes.size,
    node_ready: nodes.size,
    teardown_started: 1,
    node_terminated: nodes.size,
    job_completed: 20,
  });
  for (const r of rows.filter((r) => r.event_type === 'node_terminated')) {
    assert.ok(Number(r.details.billedSeconds) > 0, 'billed seconds recorded');
    assert.equal(r.market, 'spot');
  }
  // The pool's day as a picture, from the same ledger: every request and every node in it.
  const picture = await stack.request('GET', '/v1/pools/twenty/timeline.svg?hours=1');
  assert.equal(picture.status, 200);
  assert.match(picture.headers.get('content-type') ?? '', /^image\/svg\+xml/);
  assert.match(picture.body, /^<svg /);
  assert.match(picture.body, /twenty · last 60 min · 20 requests · peak [1-5] nodes/);
  assert.match(picture.body, /minutes ago/);
  assert.equal((picture.body.match(/class="mark cold_start"/g) ?? []).length, nodes.size, 'a cold start marked for each node');
  assert.match(picture.body, /class="mark to_zero"/);
  assert.equal((await stack.request('GET', '/v1/pools/twenty/timeline.svg?hours=0')).status, 400);
  assert.equal((await stack.request('GET', '/v1/pools/twenty/timeline?hours=1&minutes=5')).status, 400);
  // Without a window, it fits the activity: from just before the first node was asked for, at least a minute.
  const fitted = (await stack.request('GET', '/v1/pools/twenty/timeline')).body;
  assert.equal(fitted.fitted, true);
  const spanMs = Date.parse(fitted.to) - Date.parse(fitted.from);
  assert.ok(spanMs >= 60_000 - 1 && spanMs < 10 * 60_000, `fitted span ${spanMs} ms`);
  assert.equal(fitted.requests, 20);
  assert.deepEqual(fitted.marks.filter((m: { kind: string }) => m.kind === 'cold_start').length, nodes.size);
  assert.equal(fitted.marks.at(-1).kind, 'to_zero', 'the pool went back to zero last');
  assert.equal((await stack.request('GET', '/v1/pools/twenty/timeline?minutes=5')).body.fitted, false);
  const timeline = (await stack.request('GET', '/v1/pools/twenty/timeline?hours=1')).body;
  assert.equal(timeline.requests, 20);
  assert.ok(timeline.peakNodes >= 1 && timeline.peakNodes <= nodes.size);
  assert.deepEqual(timeline.points.at(-1).slice(1), [0, 0], 'back to zero nodes and nothing running');
  assert.equal((await stack.request('GET', '/v1/pools/nope/timeline.svg')).status, 404);
  // Jobs are findable by pool and status (the Web UI's search uses the same visibility query).
  const indexed = await stack.until('visibility caught up', async () => {
    const count = await stack.env.client.workflow.count(`ZeropoolPool = "twenty" AND ZeropoolStatus = "completed"`);
    return count.count === 20 ? count : undefined;
  });
  assert.equal(indexed.count, 20);
  // …and by workspace and priority.
  const byTenant = await stack.env.client.workflow.count(
    `ZeropoolWorkspace = "default" AND ZeropoolPriority = 3 AND ZeropoolPool = "twenty"`,
  );
  assert.equal(byTenant.count, 20);
  assert.equal((await stack.env.client.workflow.count(`ZeropoolPriority < 3 AND ZeropoolPool = "twenty"`)).count, 0);
  // Machine 2: each job's outcome activity gave its slot back; no job had to signal the pool itself.
  for (const job of submitted) {
    const history = await stack.env.client.workflow.getHandle(jobWorkflowId(job.body.id)).fetchHistory();
    const signalled = (history.events ?? []).filter((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes);
    assert.deepEqual(signalled, [], `job ${job.body.id} signalled its pool itself`);
  }
  await recordHistory(stack.env.client, poolWorkflowId(asPoolKey('twenty')), 'pool-scale-from-zero');
  await recordHistory(stack.env.client, jobWorkflowId(submitted[0].body.id), 'job-completed');
});

test('a burst arriving during teardown over HTTP: teardown is cancelled and nothing is lost', async () => {
  assert.equal(
    (await stack.request('POST', '/v1/pools', poolBody('burst', { teardownGraceSeconds: 5, idleTimeoutSeconds: 2 }))).status,
    201,
  );
  const first = await stack.request('POST', '/v1/jobs', { pool: 'burst', payload: { prompt: 'warm up' } });
  await stack.until('first done', async () => (await stack.request('GET', first.body.status_url)).body.status === 'completed');
  const nodeBefore = (await stack.request('GET', '/v1/pools/burst')).body.nodes[0].id;
  await stack.until(
    'teardown under way',
    async () => (await stack.request('GET', '/v1/pools/burst')).body.phase === 'tearing_down',
    20_000,
  );
  const burst = await Promise.all(
    Array.from({ length: 6 }, () => stack.request('POST', '/v1/jobs', { pool: 'burst', payload: { prompt: 'again' } })),
  );
  const done = await stack.until('burst done', async () => {
    const jobs = await Promise.all(burst.map((b) => stack.request('GET', b.body.status_url)));
    return jobs.every((j) => ['completed', 'failed', 'expired'].includes(j.body.status)) ? jobs.map((j) => j.body) : undefined;
  });
  assert.deepEqual(
    done.map((j) => j.status),
    Array(6).fill('completed'),
  );
  assert.ok(
    done.some((j) => j.node_id === nodeBefore),
    'the node kept from teardown served the burst',
  );
  const events = countEvents(await ledgerRowsForPool(stack.database.db, 'burst'));
  assert.equal(events.teardown_cancelled, 1);
  await recordHistory(stack.env.client, poolWorkflowId(asPoolKey('burst')), 'pool-teardown-cancelled');
});

test('DELETE /v1/jobs/:id cancels a parked job; it ends cancelled and leaves the queue', async () => {
  const pool = poolBody('cancel', { lanes: [{ provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.45 }] });
  assert.equal((await stack.request('POST', '/v1/pools', { ...pool, maxNodes: 1, slotsPerNode: 1 })).status, 201);
  const slow = await stack.request('POST', '/v1/jobs', { pool: 'cancel', payload: { prompt: 'slow', max_tokens: 400 } });
  const parked = await stack.request('POST', '/v1/jobs', { pool: 'cancel', payload: { prompt: 'parked' } });
  await stack.until('parked job queued', async () =>
    (await stack.request('GET', '/v1/pools/cancel')).body.queuedJobIds?.includes(parked.body.id),
  );
  const cancel = await stack.request('DELETE', parked.body.status_url);
  assert.equal(cancel.status, 202);
  const final = await stack.until('cancelled', async () => {
    const job = await stack.request('GET', parked.body.status_url);
    return job.body.status === 'cancelled' ? job.body : undefined;
  });
  assert.equal(final.error, 'cancelled by request');
  assert.equal((await stack.request('GET', '/v1/pools/cancel')).body.queuedJobIds.includes(parked.body.id), false);
  assert.equal((await stack.request('DELETE', parked.body.status_url)).status, 409, 'already terminal');
  await stack.until('slow job done', async () => (await stack.request('GET', slow.body.status_url)).body.status === 'completed');
});

test('bad input gets a clear error and nothing is created', async () => {
  const noLanes = await stack.request('POST', '/v1/pools', { id: 'bad', model: 'm', maxNodes: 1, lanes: [] });
  assert.equal(noLanes.status, 400);
  assert.equal(noLanes.body.error.code, 'invalid_request');
  assert.ok(noLanes.body.error.details.some((d: { path: string }) => d.path === 'lanes'));
  const unknownProvider = await stack.request(
    'POST',
    '/v1/pools',
    poolBody('bad2', { lanes: [{ provider: 'nope', market: 'spot', gpu: 'x', pricePerHour: 1 }] }),
  );
  assert.equal(unknownProvider.status, 400);
  assert.equal((await stack.request('GET', '/v1/pools/bad2')).status, 404);
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('twenty'))).status, 409);
  const missingPool = await stack.request('POST', '/v1/jobs', { pool: 'does-not-exist', payload: { prompt: 'x' } });
  assert.equal(missingPool.status, 404);
  assert.equal((await stack.request('POST', '/v1/jobs', { pool: 'twenty' })).status, 400);
  const big = await stack.request('POST', '/v1/jobs', { pool: 'twenty', payload: { prompt: 'x'.repeat(100_000) } });
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, 'payload_too_large');
  assert.equal((await stack.request('GET', '/v1/jobs/00000000-0000-0000-0000-000000000000')).status, 404);
  const patch = await stack.request('PATCH', '/v1/pools/twenty', { minNodes: 9, maxNodes: 2 });
  assert.equal(patch.status, 400);
  const ok = await stack.request('PATCH', '/v1/pools/twenty', { maxNodes: 7 });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.config.maxNodes, 7);
  // Below the API: the pool workflow's own validator refuses a bad config sent straight to Temporal, and keeps the one it has.
  const pool = stack.env.client.workflow.getHandle(poolWorkflowId(asPoolKey('twenty')));
  await assert.rejects(
    pool.executeUpdate(updatePoolConfigUpdate, { args: [{ ...ok.body.config, minNodes: 9, maxNodes: 2 }] }),
    (err: Error) => /minNodes must not exceed maxNodes/.test(String((err as Error & { cause?: Error }).cause?.message)),
  );
  assert.equal((await stack.request('GET', '/v1/pools/twenty')).body.config.maxNodes, 7);
});

test('operator actions: drain finishes work then releases every node; scale-to-zero releases idle baseline nodes now', async () => {
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('ops', { minNodes: 1, idleTimeoutSeconds: 600 }))).status, 201);
  await stack.until('baseline ready', async () =>
    (await stack.request('GET', '/v1/pools/ops')).body.nodes.some((n: { state: string }) => n.state === 'ready'),
  );
  const zero = await stack.request('POST', '/v1/pools/ops/scale-to-zero');
  assert.equal(zero.status, 200);
  await stack.until('scaled to zero', async () => (await stack.request('GET', '/v1/pools/ops')).body.nodes.length === 0, 20_000);
  const job = await stack.request('POST', '/v1/jobs', { pool: 'ops', payload: { prompt: 'wake' } });
  await stack.until('job done', async () => (await stack.request('GET', job.body.status_url)).body.status === 'completed');
  assert.equal((await stack.request('POST', '/v1/pools/ops/drain')).status, 200);
  const drained = await stack.until(
    'drained',
    async () => {
      const v = (await stack.request('GET', '/v1/pools/ops')).body;
      return v.phase === 'drained' ? v : undefined;
    },
    20_000,
  );
  assert.equal(drained.nodes.length, 0);
  await new Promise((r) => setTimeout(r, 1100));
  const refused = await stack.request('POST', '/v1/jobs', { pool: 'ops', payload: { prompt: 'too late' } });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, 'pool_draining');
  assert.equal((await stack.request('POST', '/v1/pools/ops/resume')).status, 200);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await stack.request('POST', '/v1/jobs', { pool: 'ops', payload: { prompt: 'back' } })).status, 202);
});

test('a pool whose workflow is unhealthy answers 503 with the reason, never a bare 500', async () => {
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('sick'))).status, 201);
  const client = stack.env.client;
  await client.workflow.getHandle(poolWorkflowId(asPoolKey('sick'))).terminate('test: replaced by a broken run');
  // A run whose every workflow task fails: without a config the machine cannot take a step.
  await client.workflow.start('poolWorkflowV2', {
    workflowId: poolWorkflowId(asPoolKey('sick')),
    taskQueue: stack.taskQueue,
    args: [{ poolId: 'sick', config: null }],
  });
  try {
    const res = await stack.request('GET', '/v1/pools/sick');
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'pool_unavailable');
    assert.match(res.body.error.message, /pool sick cannot answer now \(its workflow is unhealthy|pool sick did not answer in time/);
    const check = await stack.request('GET', '/v1/pools/sick/preempt/check');
    assert.equal(check.status, 503);
  } finally {
    await client.workflow.getHandle(poolWorkflowId(asPoolKey('sick'))).terminate('test over');
  }
});
