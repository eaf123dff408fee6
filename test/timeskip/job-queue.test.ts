import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getCallbackSecret } from '../../src/db/callbacks';
import { jobWorkflowId } from '../../src/ids';
import { cancelJobSignal } from '../../src/workflows/messages';
import { recordHistory } from '../helpers/histories';
import { startCallbackReceiver, startNtfyServer } from '../helpers/receivers';
import { countEvents, poolConfig, switchableSpotProvider, testMockProvider } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();
const spotOnly = [{ provider: 'mock', market: 'spot' as const, gpu: 'A10G', pricePerHour: 0.5 }];
const tokens = (n: number) => ({ messages: [{ role: 'user', content: 'count' }], max_tokens: n });

test('placement is by priority, then age: 5, 3, 1 queued behind a busy node run as 1, 3, 5', async () => {
  const mock = suite.track(testMockProvider({ tokensPerSecond: 100 }));
  const h = suite.harness({ mock });
  await (await h.worker()).runUntil(async () => {
    // Manual preemption: this test is about the order of the queue, not about stopping the running job.
    await h.startPool('prio', poolConfig({ slotsPerNode: 1, maxNodes: 1, preemption: 'manual' }));
    const blocker = await h.submit('prio', tokens(150));
    await h.until('blocker running', async () => (await h.pool('prio')).running === 1);
    const low = await h.submit('prio', { prompt: 'low' }, { priority: 5 });
    const mid = await h.submit('prio', { prompt: 'mid' }, { priority: 3 });
    const high = await h.submit('prio', { prompt: 'high' }, { priority: 1 });
    await h.until('all queued', async () => (await h.pool('prio')).queued === 3);
    const queue = (await h.pool('prio')).queue;
    assert.deepEqual(
      queue.map((q) => q.jobId),
      [high, mid, low],
      'the view lists the queue in placement order',
    );
    const done = await Promise.all([blocker, low, mid, high].map((id) => h.result(id)));
    assert.ok(done.every((d) => d.status === 'completed'));
    const [, lowView, midView, highView] = done;
    assert.ok(highView.placedAt! < midView.placedAt! && midView.placedAt! < lowView.placedAt!, 'placed 1, then 3, then 5');
  });
});

test('aging: a priority-5 job that waited 5 minutes (aging 60 s) goes before a priority-1 job that just arrived', async () => {
  const mock = suite.track(switchableSpotProvider());
  const h = suite.harness({ mock });
  const env = suite.env();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('aging', poolConfig({ slotsPerNode: 1, maxNodes: 1, agingSeconds: 60, preemption: 'manual', lanes: spotOnly }));
    const old = await h.submit('aging', { prompt: 'old' }, { priority: 5 });
    await h.until('queued', async () => (await h.pool('aging')).queued === 1);
    await env.sleep('5 minutes');
    const fresh = await h.submit('aging', { prompt: 'fresh' }, { priority: 1 });
    const view = await h.until('both queued', async () => {
      const v = await h.pool('aging');
      return v.queued === 2 ? v : undefined;
    });
    const aged = view.queue.find((q) => q.jobId === old)!;
    assert.equal(aged.priority, 5);
    assert.equal(aged.effectivePriority, 1, 'five minutes at 60 s per level lift it from 5 to 1');
    assert.deepEqual(
      view.queue.map((q) => q.jobId),
      [old, fresh],
      'older of two priority-1 jobs first',
    );
    mock.spotAvailable = true;
    await env.sleep('2 minutes');
    const [oldDone, freshDone] = await Promise.all([h.result(old), h.result(fresh)]);
    assert.ok(oldDone.placedAt! < freshDone.placedAt!, 'the aged job ran first');
  });
});

test('retries: a 5xx is retried with growing backoff and completes; a 4xx fails at once; attempts run out', async () => {
  const mock = suite.track(testMockProvider());
  const h = suite.harness({ mock });
  await (await h.worker()).runUntil(async () => {
    await h.startPool('retry', poolConfig({ slotsPerNode: 1, maxNodes: 1, minNodes: 1 }));
    const node = await h.until('warm node', async () => (await h.pool('retry')).nodes.find((n) => n.state === 'ready'));

    await fetch(`${node.url}/_mock/fail?status=503&count=2`, { method: 'POST' });
    const flakyId = await h.submit('retry', { prompt: 'again' }, { maxAttempts: 3 });
    const flaky = await h.result(flakyId);
    assert.equal(flaky.status, 'completed');
    assert.equal(flaky.failures, 2);
    assert.equal(flaky.attempt, 3);
    // Two failed attempts, each retried after its backoff, then completed (test/replay.test.ts).
    await recordHistory(h.client, jobWorkflowId(flakyId), 'job-retried');
    const runs = flaky.runs!;
    assert.equal(runs.length, 3);
    assert.deepEqual(
      runs.map((r) => r.outcome),
      ['failed', 'failed', 'completed'],
    );
    const firstGap = runs[1].startedAt - runs[0].endedAt;
    const secondGap = runs[2].startedAt - runs[1].endedAt;
    assert.ok(firstGap >= 2000, `first backoff ≥ 2 s (${firstGap} ms)`);
    assert.ok(secondGap >= 4000, `second backoff ≥ 4 s (${secondGap} ms)`);

    const invalid = await h.result(await h.submit('retry', tokens(100_000)));
    assert.equal(invalid.status, 'failed');
    assert.equal(invalid.attempt, 1, 'a 4xx is not retried');
    assert.match(invalid.error ?? '', /400/);

    await fetch(`${node.url}/_mock/fail?status=500&count=10`, { method: 'POST' });
    const hopeless = await h.result(await h.submit('retry', { prompt: 'no luck' }, { maxAttempts: 3 }));
    assert.equal(hopeless.status, 'failed');
    assert.equal(hopeless.failures, 3);
    assert.match(hopeless.error ?? '', /gave up after 3 failed attempts: model server answered 500/);
  });
});

test('TTL runs from submission: retry backoffs do not restart it; the expired job is kept and its callback is signed', async () => {
  const mock = suite.track(testMockProvider());
  const h = suite.harness({ mock });
  const db = suite.database().db;
  const receiver = await startCallbackReceiver(async () => (await getCallbackSecret(db, 'default'))!);
  try {
    await (await h.worker()).runUntil(async () => {
      await h.startPool('clock', poolConfig({ slotsPerNode: 1, maxNodes: 1, minNodes: 1 }));
      const node = await h.until('warm node', async () => (await h.pool('clock')).nodes.find((n) => n.state === 'ready'));
      await fetch(`${node.url}/_mock/fail?status=503&count=100`, { method: 'POST' });
      const jobId = await h.submit('clock', { prompt: 'x' }, { ttlSeconds: 10, maxAttempts: 20, callbackUrl: `${receiver.url}/hook` });
      const view = await h.result(jobId);
      assert.equal(view.status, 'expired', 'the deadline passed during a backoff');
      assert.ok((view.failures ?? 0) >= 2 && (view.failures ?? 0) < 20, `failed ${view.failures} times, far from maxAttempts`);
      const stored = await db.query('SELECT status FROM jobs WHERE id = $1', [jobId]);
      assert.equal(stored.rows[0].status, 'expired');
      const callback = await h.until('callback', async () => receiver.received[0]);
      assert.equal(callback.verified, true, 'HMAC-SHA256 over timestamp and body, under the workspace secret');
      assert.equal(callback.body.event, 'job.expired');
      assert.equal(callback.body.job.id, jobId);
      assert.equal(callback.body.job.status, 'expired');
      const state = await h.until(
        'callback state',
        async () => (await db.query('SELECT callback FROM jobs WHERE id = $1', [jobId])).rows[0]?.callback,
      );
      assert.equal(state.state, 'delivered');
    });
  } finally {
    await receiver.close();
  }
});

test('cancel: a queued job is withdrawn; a running job is aborted at its node and its slot goes to the next job', async () => {
  const mock = suite.track(testMockProvider({ tokensPerSecond: 50 }));
  const h = suite.harness({ mock });
  await (await h.worker()).runUntil(async () => {
    await h.startPool('cancel', poolConfig({ slotsPerNode: 1, maxNodes: 1, preemption: 'manual' }));
    const running = await h.submit('cancel', tokens(2000));
    await h.until('long job running', async () => (await h.pool('cancel')).running === 1);
    const queued = await h.submit('cancel', { prompt: 'waiting' });
    const next = await h.submit('cancel', { prompt: 'next' });
    const view = await h.until('two queued behind it', async () => {
      const v = await h.pool('cancel');
      return v.running === 1 && v.queued === 2 ? v : undefined;
    });
    const nodeUrl = view.nodes[0].url!;
    await h.until('tokens flowing', async () => (await h.nodeEvents(nodeUrl)).some((e) => e.event === 'start' && e.jobId === running));

    await h.client.workflow.getHandle(jobWorkflowId(queued)).signal(cancelJobSignal, { reason: 'not needed' });
    const queuedDone = await h.result(queued);
    assert.equal(queuedDone.status, 'cancelled');
    assert.equal(queuedDone.runs, undefined, 'it never reached a node');

    await h.client.workflow.getHandle(jobWorkflowId(running)).signal(cancelJobSignal, {});
    const runningDone = await h.result(running);
    assert.equal(runningDone.status, 'cancelled');
    assert.equal(runningDone.runs?.[0].outcome, 'cancelled');
    assert.equal((await h.result(next)).status, 'completed', 'the freed slot served the next job');
    const events = await h.nodeEvents(nodeUrl);
    const abort = events.find((e) => e.event === 'abort' && e.jobId === running);
    assert.ok(abort, 'the node saw the request cut off');
    assert.ok(abort.tokens < 2000, 'before it finished');
    const nextStart = events.find((e) => e.event === 'start' && e.jobId === next)!;
    assert.ok(nextStart.at >= abort.at, 'the next job started only after the abort');
    assert.ok(
      events.every((e) => e.active <= 1),
      'never two requests in the one slot',
    );
  });
  assert.equal(countEvents(await h.ledger('cancel')).job_cancelled, 2);
});

test('preemption: a priority-1 job stops a priority-5 job on a full pool; the victim resumes from its snapshot without using a retry', async () => {
  const mock = suite.track(testMockProvider({ tokensPerSecond: 100 }));
  const h = suite.harness({ mock });
  const ntfy = await startNtfyServer();
  try {
    await (await h.worker({ ntfy: { url: ntfy.url, topic: 'gpu-jobs' } })).runUntil(async () => {
      await h.startPool('full', poolConfig({ slotsPerNode: 1, maxNodes: 1 }));
      const victim = await h.submit('full', tokens(300), { priority: 5, maxAttempts: 1, notify: true });
      const nodeUrl = (
        await h.until('victim running', async () => {
          const v = await h.pool('full');
          return v.running === 1 ? v : undefined;
        })
      ).nodes[0].url!;
      await h.until('victim on the node', async () => (await h.nodeEvents(nodeUrl)).some((e) => e.event === 'start' && e.jobId === victim));
      await new Promise((r) => setTimeout(r, 600)); // some 60 tokens in
      const urgent = await h.submit('full', tokens(20), { priority: 1, notify: true });

      const [victimDone, urgentDone] = await Promise.all([h.result(victim), h.result(urgent)]);
      assert.equal(urgentDone.status, 'completed');
      assert.equal(victimDone.status, 'completed', 'maxAttempts 1, yet it completed: preemption used no attempt');
      assert.equal(victimDone.preemptions, 1);
      assert.equal(victimDone.failures, undefined);
      assert.deepEqual(
        victimDone.runs?.map((r) => r.outcome),
        ['preempted', 'completed'],
      );

      const events = await h.nodeEvents(nodeUrl);
      const abort = events.find((e) => e.event === 'abort' && e.jobId === victim)!;
      const urgentStart = events.find((e) => e.event === 'start' && e.jobId === urgent)!;
      const resumed = events.filter((e) => e.event === 'start' && e.jobId === victim)[1];
      assert.ok(abort && abort.tokens > 0, 'the victim was cut off at the node after making progress');
      assert.ok(urgentStart.at >= abort.at, 'the preemptor started only after the abort');
      assert.ok(
        events.every((e) => e.active <= 1),
        'the node never served two requests in its one slot',
      );
      assert.ok(resumed.fromToken > 0, `the next attempt continued from token ${resumed.fromToken}`);
      assert.ok(resumed.fromToken <= abort.tokens, 'from no further than the node got');
      const expected = Array.from({ length: 300 }, (_, i) => `tok${i} `).join('');
      assert.equal((victimDone.result as { text: string }).text, expected, 'one continuous completion: nothing lost, nothing repeated');
      assert.equal(victimDone.usage?.completionTokens, 300);

      const view = await h.pool('full');
      assert.equal(view.preemptedTotal, 1);
      // A job preempted, queued again and resumed from its snapshot, through the job machine (test/replay.test.ts).
      await recordHistory(h.client, jobWorkflowId(victim), 'job-preempted-resumed');
      const seen = await h.until('notifications', async () => {
        const events = ntfy.published.map((p) => `${p.title}`);
        // Both jobs' completions: the two arrive independently, so wait for both rather than the first.
        const completions = events.filter((e) => e === 'zeropool job completed').length;
        return ['preempted', 'resumed'].every((e) => events.includes(`zeropool job ${e}`)) && completions >= 2 ? events : undefined;
      });
      assert.ok(seen.length >= 4, 'preempted, resumed and both completions');
      assert.ok(ntfy.published.every((p) => p.topic === 'gpu-jobs'));
    });
  } finally {
    await ntfy.close();
  }
  const rows = await h.ledger('full');
  const preempted = rows.filter((r) => r.event_type === 'job_preempted');
  assert.equal(preempted.length, 1);
});
