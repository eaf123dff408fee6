import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { temporal } from '@temporalio/proto';
import { jobWorkflowId } from '../../src/ids';
import { ApiStack, poolBody } from '../helpers/api-stack';
import { startCallbackReceiver, startNtfyServer } from '../helpers/receivers';
import type { NodeEvent } from '../helpers/stack';

let stack: ApiStack;
let receiver: Awaited<ReturnType<typeof startCallbackReceiver>>;
let ntfy: Awaited<ReturnType<typeof startNtfyServer>>;

before(async () => {
  ntfy = await startNtfyServer();
  stack = await new ApiStack({ coldStartSeconds: 0.5, tokensPerSecond: 200, ntfy: { url: ntfy.url, topic: 'zeropool-it' } }).start();
  // The receiver reads the secret the way a user would: from the API, with the workspace's key.
  // Its first answer is a 503, so one delivery is retried.
  receiver = await startCallbackReceiver(
    async () => (await stack.request('GET', '/v1/callback-secret')).body.secret,
    (n) => (n === 1 ? 503 : 200),
  );
});
after(async () => {
  await stack?.stop();
  await receiver?.close();
  await ntfy?.close();
});

const terminal = ['completed', 'failed', 'expired', 'cancelled'];
const finished = (id: string) =>
  stack.until(
    `job ${id} terminal`,
    async () => {
      const res = await stack.request('GET', `/v1/jobs/${id}`);
      return terminal.includes(res.body.status) ? res.body : undefined;
    },
    60_000,
  );
const nodeEvents = async (nodeUrl: string): Promise<NodeEvent[]> =>
  ((await (await fetch(`${nodeUrl}/_mock/events`)).json()) as { events: NodeEvent[] }).events;
const counting = (n: number) => ({ messages: [{ role: 'user', content: 'count for me' }], max_tokens: n });

test('on a full pool a priority-1 job preempts a priority-5 job: the node shows the victim aborted before the preemptor starts, the victim resumes from its snapshot, callbacks arrive signed', async () => {
  assert.equal(
    (await stack.request('POST', '/v1/pools', poolBody('full', { maxNodes: 1, slotsPerNode: 1, idleTimeoutSeconds: 30 }))).status,
    201,
  );
  const hook = `${receiver.url}/zeropool`;
  const low = await stack.request('POST', '/v1/jobs', { pool: 'full', payload: counting(800), priority: 5, callbackUrl: hook });
  assert.equal(low.status, 202);
  assert.equal(low.body.priority, 5);
  const victim: string = low.body.id;

  const running = await stack.until('victim running', async () => {
    const res = await stack.request('GET', `/v1/pools/full`);
    return res.body.running === 1 && res.body.nodes[0]?.url ? res.body : undefined;
  });
  const nodeUrl: string = running.nodes[0].url;
  await stack.until('victim streaming', async () => (await nodeEvents(nodeUrl)).some((e) => e.event === 'start' && e.jobId === victim));

  // The node reports progress with the job's own token; an API key or another token is refused.
  const progressUrl = `/v1/jobs/${victim}/progress`;
  assert.equal((await stack.request('POST', progressUrl, { completion_tokens: 5 }, 'zpj_wrong')).status, 401);
  assert.equal((await stack.request('POST', progressUrl, { completion_tokens: 5 })).status, 401, 'the admin key is no progress token');
  assert.equal((await stack.request('POST', progressUrl, { completion_tokens: -1 }, low.body.progress_token)).status, 400);
  const oversized = await stack.request(
    'POST',
    progressUrl,
    { completion_tokens: 9, text: 'x'.repeat(16 * 1024 + 1) },
    low.body.progress_token,
  );
  assert.equal(oversized.status, 400, 'a report is bounded: each one lands in the job’s history');
  assert.equal((await stack.request('POST', progressUrl, { completion_tokens: 7, attempt: 1 }, low.body.progress_token)).status, 202);
  const withProgress = await stack.until('progress shown', async () => {
    const res = await stack.request('GET', `/v1/jobs/${victim}`);
    return res.body.progress?.completion_tokens >= 7 ? res.body : undefined;
  });
  assert.equal(withProgress.status, 'running');
  // The node was told where to report (X-Zeropool-Progress-Url) and does so itself every 50 tokens.
  const fromNode = await stack.until(
    'progress reported by the node itself',
    async () => {
      const res = await stack.request('GET', `/v1/jobs/${victim}`);
      const p = res.body.progress;
      return p?.source === 'node' && p.completion_tokens >= 50 && p.completion_tokens % 50 === 0 ? p : undefined;
    },
    10_000,
  );
  assert.equal(fromNode.attempt, 1);
  // The node got its token from the inference activity, which derives it: the secret is nowhere in the history.
  const history = await stack.env.client.workflow.getHandle(jobWorkflowId(victim)).fetchHistory();
  const historyBytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
  assert.ok(historyBytes.includes(Buffer.from(victim)), 'the history holds the job id (the search works)');
  assert.ok(!historyBytes.includes(Buffer.from(low.body.progress_token)), 'the progress token is not in the job workflow history');

  const check = await stack.request('GET', '/v1/pools/full/preempt/check');
  assert.equal(check.status, 200);
  assert.deepEqual(check.body.preemptions, []);
  assert.match(check.body.reasons.join(' '), /no job is waiting/);

  const high = await stack.request('POST', '/v1/jobs', { pool: 'full', payload: counting(40), priority: 1, callbackUrl: hook });
  const preemptor: string = high.body.id;
  const [victimDone, preemptorDone] = await Promise.all([finished(victim), finished(preemptor)]);
  assert.equal(preemptorDone.status, 'completed');
  assert.equal(victimDone.status, 'completed');
  assert.equal(victimDone.preemptions, 1);
  assert.equal(victimDone.failures, 0);
  assert.equal(victimDone.tokens.completion, 800);
  assert.equal(
    victimDone.result.text,
    Array.from({ length: 800 }, (_, i) => `tok${i} `).join(''),
    'resumed: nothing lost, nothing repeated',
  );

  const events = await nodeEvents(nodeUrl);
  const abort = events.find((e) => e.event === 'abort' && e.jobId === victim);
  const preemptorStart = events.find((e) => e.event === 'start' && e.jobId === preemptor);
  const resumed = events.filter((e) => e.event === 'start' && e.jobId === victim)[1];
  assert.ok(abort && preemptorStart && resumed, 'abort, preemptor start and resumed start all seen by the node');
  assert.ok(abort.at <= preemptorStart.at, 'victim aborted before the preemptor started');
  assert.ok(resumed.at >= preemptorStart.at, 'the victim resumed after the preemptor got its slot');
  assert.ok(
    resumed.fromToken > 0 && resumed.fromToken <= abort.tokens,
    `resumed from its snapshot (token ${resumed.fromToken} of ${abort.tokens} produced)`,
  );
  assert.ok(
    events.every((e) => e.active <= 1),
    'two jobs never shared the slot',
  );

  const delivered = await stack.until(
    'both callbacks delivered',
    async () => {
      const ok = receiver.received.filter((r) => r.status === 200);
      return ok.length >= 2 ? ok : undefined;
    },
    60_000,
  );
  assert.ok(
    receiver.received.every((r) => r.verified),
    'every callback carried a valid signature',
  );
  assert.deepEqual(new Set(delivered.map((r) => r.body.job.id)), new Set([victim, preemptor]));
  assert.equal(receiver.received[0].status, 503, 'the first delivery was refused and retried');
  const victimRecord = await stack.until('callback state recorded', async () => {
    const res = await stack.request('GET', `/v1/jobs/${victim}`);
    return res.body.callback?.state === 'delivered' ? res.body : undefined;
  });
  assert.ok(victimRecord.callback.attempts >= 1);
  const titles = await stack.until('ntfy notifications', async () => {
    const seen = ntfy.published.filter((p) => p.message.includes(victim)).map((p) => p.title);
    return seen.includes('zeropool job completed') ? seen : undefined;
  });
  assert.deepEqual(titles.slice(0, 2), ['zeropool job preempted', 'zeropool job resumed']);

  const ledger = await stack.request('GET', '/v1/ledger?limit=500');
  const preempted = ledger.body.events.filter((e: { event_type: string }) => e.event_type === 'job_preempted');
  assert.equal(preempted.length, 1);
  assert.equal(preempted[0].job_id, victim);
  assert.equal(preempted[0].details.by, preemptor);
});

test("a workspace's job notifications go to its own unguessable topic, the default workspace's to the base topic", async () => {
  const key = await stack.workspaceKey('notified');
  const workspace = await stack.request('GET', '/v1/workspaces/notified');
  const topic: string = workspace.body.notifyTopic;
  assert.match(topic, /^zeropool-it-notified-[-_A-Za-z0-9]{16}$/);
  assert.notEqual(topic, (await stack.request('GET', '/v1/workspaces/default')).body.notifyTopic);
  assert.equal((await stack.request('GET', '/v1/workspaces/default')).body.notifyTopic, 'zeropool-it');
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('told'), key)).status, 201);
  const job = await stack.request('POST', '/v1/jobs', { pool: 'told', payload: { prompt: 'tell me' } }, key);
  assert.equal(job.status, 202);
  const published = await stack.until('the workspace notification', async () =>
    ntfy.published.find((p) => p.message.includes(job.body.id) && p.title === 'zeropool job completed'),
  );
  assert.equal(published.topic, topic, 'published to the workspace topic');
  assert.ok(!ntfy.published.some((p) => p.topic === 'zeropool-it' && p.message.includes(job.body.id)), 'nothing on the base topic');
});

test('manual preemption: the check names what a round would do, the trigger does it', async () => {
  assert.equal(
    (await stack.request('POST', '/v1/pools', poolBody('manual', { maxNodes: 1, slotsPerNode: 1, preemption: 'manual' }))).status,
    201,
  );
  const low = (await stack.request('POST', '/v1/jobs', { pool: 'manual', payload: counting(1500), priority: 4 })).body.id;
  await stack.until('low running', async () => (await stack.request('GET', '/v1/pools/manual')).body.running === 1);
  const high = (await stack.request('POST', '/v1/jobs', { pool: 'manual', payload: counting(10), priority: 2 })).body.id;
  const check = await stack.until('check names the preemption', async () => {
    const res = await stack.request('GET', '/v1/pools/manual/preempt/check');
    return res.body.preemptions.length === 1 ? res.body : undefined;
  });
  assert.equal(check.mode, 'manual');
  assert.deepEqual(check.preemptions[0], {
    victim: low,
    victimPriority: 4,
    nodeId: check.preemptions[0].nodeId,
    preemptor: high,
    preemptorPriority: 2,
  });
  assert.equal((await stack.request('GET', `/v1/jobs/${high}`)).body.status, 'queued', 'manual mode waits for the operator');
  const triggered = await stack.request('POST', '/v1/pools/manual/preempt');
  assert.equal(triggered.status, 200);
  assert.equal(triggered.body.preemptions[0].victim, low);
  assert.equal((await finished(high)).status, 'completed');
  const lowDone = await finished(low);
  assert.equal(lowDone.status, 'completed');
  assert.equal(lowDone.preemptions, 1);
});

test('cancel over HTTP in every state; bad input is refused before anything starts', async () => {
  assert.equal(
    (await stack.request('POST', '/v1/pools', poolBody('cancel', { maxNodes: 1, slotsPerNode: 1, preemption: 'manual' }))).status,
    201,
  );
  const long = (await stack.request('POST', '/v1/jobs', { pool: 'cancel', payload: counting(4000) })).body.id;
  const waiting = (await stack.request('POST', '/v1/jobs', { pool: 'cancel', payload: counting(5) })).body.id;
  await stack.until('one running', async () => (await stack.request('GET', '/v1/pools/cancel')).body.running === 1);
  for (const id of [waiting, long]) {
    const res = await stack.request('DELETE', `/v1/jobs/${id}`);
    assert.equal(res.status, 202);
    const done = await finished(id);
    assert.equal(done.status, 'cancelled');
  }
  assert.equal((await stack.request('DELETE', `/v1/jobs/${long}`)).status, 409, 'already cancelled');
  const pool = await stack.until('slot freed', async () => {
    const res = await stack.request('GET', '/v1/pools/cancel');
    return res.body.running === 0 && res.body.queued === 0 ? res.body : undefined;
  });
  const events = await nodeEvents(pool.nodes[0].url);
  assert.ok(
    events.some((e) => e.event === 'abort' && e.jobId === long),
    'the running request was aborted at the node',
  );

  const bad = [
    { pool: 'cancel', payload: {} },
    { pool: 'cancel', payload: { messages: [] } },
    { pool: 'cancel', payload: { prompt: 'x' }, priority: 0 },
    { pool: 'cancel', payload: { prompt: 'x' }, priority: 6 },
    { pool: 'cancel', payload: { prompt: 'x' }, callbackUrl: 'http://10.0.0.7/hook' },
    { pool: 'cancel', payload: { prompt: 'x' }, callbackUrl: 'file:///etc/passwd' },
  ];
  for (const body of bad) {
    const res = await stack.request('POST', '/v1/jobs', body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.body.error.code, 'invalid_request');
  }
});
