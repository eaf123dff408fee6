import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { API_PATHS } from '../../src/api/openapi';
import { ApiStack, poolBody } from '../helpers/api-stack';

let stack: ApiStack;
let keyA: string;
let keyB: string;
let jobA: string;
const SECRET_PROMPT = 'the secret prompt of team a';

before(async () => {
  stack = await new ApiStack({ coldStartSeconds: 0.5, tokensPerSecond: 200 }).start();
  keyA = await stack.workspaceKey('team-a');
  keyB = await stack.workspaceKey('team-b');
});
after(async () => {
  await stack?.stop();
});

async function finished(url: string, key: string, statusField = 'status') {
  return stack.until(`${url} terminal`, async () => {
    const r = await stack.request('GET', url, undefined, key);
    return ['completed', 'failed', 'expired', 'cancelled'].includes(r.body?.[statusField]) ? r.body : undefined;
  });
}

test('a workspace key runs jobs in its own workspace; X-ZeroGate-Key works as well as Bearer', async () => {
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('chat'), keyA)).status, 201);
  // Pool names are per workspace: team b may have its own "chat".
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('chat', { maxNodes: 1 }), keyB)).status, 201);
  const res = await fetch(`${stack.baseUrl}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-zerogate-key': keyA },
    body: JSON.stringify({ pool: 'chat', payload: { prompt: SECRET_PROMPT } }),
  });
  assert.equal(res.status, 202);
  jobA = ((await res.json()) as { id: string }).id;
  const done = await finished(`/v1/jobs/${jobA}`, keyA);
  assert.equal(done.status, 'completed');
  assert.equal(done.pool, 'chat');
  // Fair share on the shared task queue: the job's and the pool's workflows (and so their activities) carry
  // the workspace as their fairness key.
  assert.equal((await stack.env.client.workflow.getHandle(`job:${jobA}`).describe()).priority?.fairnessKey, 'team-a');
  assert.equal((await stack.env.client.workflow.getHandle('pool:team-a.chat').describe()).priority?.fairnessKey, 'team-a');
  const poolsOfB = await stack.request('GET', '/v1/pools', undefined, keyB);
  assert.deepEqual(
    poolsOfB.body.pools.map((p: { config: { maxNodes: number } }) => p.config.maxNodes),
    [1],
  );
});

test('auth matrix over every route: no key and a wrong key are 401, admin routes 403, another workspace’s things 404 without leaking', async () => {
  const wrongKey = `zp_${'0'.repeat(12)}_${'x'.repeat(32)}`;
  const fill = (path: string) =>
    path
      .replace('/v1/workspaces/{id}', '/v1/workspaces/team-a')
      .replace('{keyId}', '000000000000')
      .replace(/\/v1\/(jobs|status)\/\{id\}/, `/v1/$1/${jobA}`)
      .replace('{id}', 'chat');
  const ownedByA = (path: string) => /\{id\}/.test(path) && !path.startsWith('/v1/workspaces');
  for (const spec of API_PATHS) {
    // Team b has a pool named chat too: a delete as b is tried on a name neither has (b's pool is checked below).
    const url = spec.method === 'delete' && spec.path === '/v1/pools/{id}' ? '/v1/pools/no-such-pool' : fill(spec.path);
    const method = spec.method.toUpperCase();
    const body = ['POST', 'PATCH'].includes(method) ? {} : undefined;
    const none = await stack.request(method, url, body, null);
    if (spec.public) {
      assert.notEqual(none.status, 401, `${method} ${url} is public`);
      continue;
    }
    assert.equal(none.status, 401, `${method} ${url} without a key`);
    assert.equal(none.body.error.code, 'unauthorized');
    assert.equal((await stack.request(method, url, body, wrongKey)).status, 401, `${method} ${url} with a wrong key`);
    assert.equal((await stack.request(method, url, body, 'not-even-shaped-like-a-key')).status, 401, `${method} ${url} with garbage`);
    const asB = await stack.request(method, url, body, keyB);
    if (spec.progressToken) {
      // An API key (even the job's own workspace's) is no progress token.
      assert.equal(asB.status, 401, `${method} ${url} takes only the job's progress token`);
      assert.equal((await stack.request(method, url, body, keyA)).status, 401, `${method} ${url} with the owner's API key`);
      continue;
    }
    if (spec.path.startsWith('/v1/workspaces') || spec.path === '/metrics') {
      assert.equal(asB.status, 403, `${method} ${url} needs the admin key`);
    } else if (ownedByA(spec.path)) {
      if (spec.path.startsWith('/v1/pools/')) continue; // team b has a pool named chat too: checked below
      assert.equal(asB.status, 404, `${method} ${url} with another workspace's key`);
      assert.doesNotMatch(JSON.stringify(asB.body), /secret prompt/);
    }
  }
  // Team b's "chat" is its own pool, never team a's.
  const poolAsB = await stack.request('GET', '/v1/pools/chat', undefined, keyB);
  assert.equal(poolAsB.body.config.maxNodes, 1);
  assert.equal((await stack.request('GET', '/v1/pools/only-a-has-this', undefined, keyB)).status, 404);
  // A revoked key stops working (within the 5 s key cache).
  const issued = await stack.request('POST', '/v1/workspaces/team-b/keys', { label: 'short-lived' });
  assert.equal((await stack.request('GET', '/v1/pools', undefined, issued.body.key)).status, 200);
  assert.equal((await stack.request('DELETE', `/v1/workspaces/team-b/keys/${issued.body.id}`)).status, 204);
  await stack.until(
    'revocation seen',
    async () => (await stack.request('GET', '/v1/pools', undefined, issued.body.key)).status === 401,
    8000,
  );
  const listed = await stack.request('GET', '/v1/workspaces/team-b/keys');
  assert.ok(listed.body.keys.every((k: Record<string, unknown>) => !('key' in k) && !('keyHash' in k)));
});

test('per-workspace in-flight limit: 429 with Retry-After, and places come back when jobs end', async () => {
  const key = await stack.workspaceKey('tiny', 2);
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('p'), key)).status, 201);
  const submit = () => stack.request('POST', '/v1/jobs', { pool: 'p', payload: { prompt: 'x', max_tokens: 200 } }, key);
  const results = await Promise.all([submit(), submit(), submit(), submit()]);
  const accepted = results.filter((r) => r.status === 202);
  const refused = results.filter((r) => r.status === 429);
  assert.equal(accepted.length, 2);
  assert.equal(refused.length, 2);
  assert.equal(refused[0].body.error.code, 'too_many_jobs');
  assert.ok(Number(refused[0].headers.get('retry-after')) > 0);
  for (const r of accepted) assert.equal((await finished(r.body.status_url, key)).status, 'completed');
  assert.equal((await submit()).status, 202);
  const ws = await stack.request('GET', '/v1/workspaces/tiny');
  assert.ok(ws.body.jobsInFlight <= 1);
});

test('earlier gateway routes: /v1/compute by model, /v1/status reports completed and expired truthfully', async () => {
  const key = await stack.workspaceKey('legacy');
  const pool = poolBody('one', { model: 'legacy-model', maxNodes: 1, slotsPerNode: 1 });
  assert.equal((await stack.request('POST', '/v1/pools', pool, key)).status, 201);
  const unknown = await stack.request('POST', '/v1/compute', { model: 'no-such-model', prompt: 'hi' }, key);
  assert.equal(unknown.status, 404);
  const long = await stack.request('POST', '/v1/compute', { model: 'legacy-model', prompt: 'a long one', max_tokens: 1200 }, key);
  assert.equal(long.status, 202);
  assert.equal(long.body.pool, 'one');
  await stack.until(
    'long job processing',
    async () => (await stack.request('GET', long.body.status_url, undefined, key)).body.status === 'processing',
  );
  // The only slot is busy for ~6 s: a job with a 1 s TTL must come back "expired", not "processing".
  const doomed = await stack.request('POST', '/v1/compute', { model: 'legacy-model', prompt: 'no room', ttl_seconds: 1 }, key);
  const expired = await finished(doomed.body.status_url, key);
  assert.equal(expired.status, 'expired');
  assert.match(expired.error, /ttl/);
  const completed = await finished(long.body.status_url, key);
  assert.equal(completed.status, 'completed');
  assert.equal(completed.tokens_generated, 1200);
  assert.equal(typeof completed.result, 'string');
  // The status route is authenticated.
  assert.equal((await stack.request('GET', long.body.status_url, undefined, null)).status, 401);
});

test('analytics, ledger rows and chain verification answer for the caller’s workspace only', async () => {
  const a = await stack.request('GET', '/v1/analytics', undefined, keyA);
  assert.equal(a.status, 200);
  assert.equal(a.body.workspace, 'team-a');
  assert.equal(a.body.total_inferences_processed, 1);
  assert.equal(a.body.total_tokens_generated, 16);
  assert.ok(a.body.gpu_seconds_billed > 0 && a.body.cost_usd > 0);
  assert.ok(a.body.idle_tax_usd >= 0 && a.body.idle_tax_usd <= a.body.cost_usd);
  assert.equal(a.body.aggregated_idle_tax_saved_usd, a.body.savings_usd);
  assert.ok(typeof a.body.average_queue_overhead_ms === 'number');
  assert.deepEqual(
    a.body.pools.map((p: { pool: string }) => p.pool),
    ['chat'],
  );
  assert.equal(
    (await stack.request('GET', '/v1/analytics?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', undefined, keyA)).status,
    400,
  );
  assert.equal((await stack.request('GET', '/v1/analytics?bogus=1', undefined, keyA)).status, 400);

  const rows = await stack.request('GET', '/v1/ledger?limit=1000', undefined, keyA);
  assert.ok(rows.body.events.length >= 4);
  assert.ok(rows.body.events.every((e: { node_id: string | null }) => e.node_id === null || e.node_id.startsWith('team-a.chat-')));
  const verified = await stack.request('GET', '/v1/ledger/verify', undefined, keyA);
  assert.equal(verified.body.ok, true);
  assert.equal(verified.body.rows_checked, rows.body.events.length);
});

test('/ready checks Temporal and PostgreSQL; /metrics (admin) exposes nodes, queue and outcomes', async () => {
  const ready = await stack.request('GET', '/ready', undefined, null);
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.body.checks, { postgres: true, temporal: true });
  const metrics = await stack.request('GET', '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /zeropool_jobs_total\{workspace="team-a",pool="chat",status="completed"\} 1/);
  assert.match(metrics.body, /zeropool_queue_depth\{workspace="team-a",pool="chat"\} 0/);
  assert.match(metrics.body, /zeropool_job_queue_seconds_bucket/);
  assert.match(metrics.body, /zeropool_node_cold_start_seconds_count/);
  const docs = await fetch(`${stack.baseUrl}/docs`);
  assert.equal(docs.status, 200);
  assert.match(await docs.text(), /swagger-ui-bundle\.js/);
  assert.equal((await fetch(`${stack.baseUrl}/docs/swagger-ui-bundle.js`)).status, 200);
});

test('what the fuzzer found (schemathesis): an out-of-range ledger cursor is a 400, not a 500; a method a path does not serve is a 405 naming the ones it does', async () => {
  const cursor = await stack.request('GET', '/v1/ledger?after=9223372036854775808', undefined, keyA);
  assert.equal(cursor.status, 400, JSON.stringify(cursor.body));
  const put = await stack.request('PUT', '/v1/pools', {}, keyA);
  assert.equal(put.status, 405);
  assert.deepEqual(put.headers.get('allow')?.split(', ').sort(), ['GET', 'POST']);
  assert.equal(put.body.error.code, 'method_not_allowed');
  const patchJob = await stack.request('PATCH', `/v1/jobs/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`, {}, keyA);
  assert.equal(patchJob.status, 405);
  assert.deepEqual(patchJob.headers.get('allow')?.split(', ').sort(), ['DELETE', 'GET']);
  assert.equal((await stack.request('GET', '/v1/no-such-route', undefined, keyA)).status, 404, 'an unknown path is still a 404');
});

test('quotas per workspace: pools and their nodes are bounded (creates, resizes, races); the admin sets and lifts them', async () => {
  const created = await stack.request('POST', '/v1/workspaces', { id: 'quota-q', maxPools: 1, maxNodes: 4 });
  assert.equal(created.status, 201);
  assert.deepEqual([created.body.maxPools, created.body.maxNodes, created.body.minServicePriority], [1, 4, 2]);
  const key = (await stack.request('POST', '/v1/workspaces/quota-q/keys', {})).body.key as string;
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('first', { maxNodes: 3 }), key)).status, 201);
  const second = await stack.request('POST', '/v1/pools', poolBody('second', { maxNodes: 1 }), key);
  assert.equal(second.status, 403);
  assert.equal(second.body.error.code, 'quota_exceeded');
  assert.match(second.body.error.message, /may have 1 pool\(s\) and has 1/);
  // Only the admin changes quotas; a workspace key cannot lift its own.
  assert.equal((await stack.request('PATCH', '/v1/workspaces/quota-q', { maxPools: 10 }, key)).status, 403);
  assert.equal((await stack.request('PATCH', '/v1/workspaces/quota-q', { maxPools: 10 })).body.maxPools, 10);
  const tooBig = await stack.request('POST', '/v1/pools', poolBody('second', { maxNodes: 2 }), key);
  assert.equal(tooBig.status, 403);
  assert.match(tooBig.body.error.message, /may reach 4 node\(s\) together; they reach 3 and this adds 2/);
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('second', { maxNodes: 1 }), key)).status, 201);
  // A resize past the quota is refused too (the PATCH route cannot go around it); shrinking is always allowed.
  const grown = await stack.request('PATCH', '/v1/pools/first', { maxNodes: 4 }, key);
  assert.equal(grown.status, 403);
  assert.equal((await stack.request('PATCH', '/v1/pools/first', { maxNodes: 2 }, key)).status, 200);
  // Racing creates cannot both take the last place: the workspace row is locked while pools are counted.
  assert.equal((await stack.request('PATCH', '/v1/workspaces/quota-q', { maxPools: 3 })).status, 200);
  const race = await Promise.all(
    ['r1', 'r2', 'r3', 'r4'].map((id) => stack.request('POST', '/v1/pools', poolBody(id, { maxNodes: 1 }), key)),
  );
  assert.deepEqual(race.map((r) => r.status).sort(), [201, 403, 403, 403]);
  // null lifts a quota; the default workspace (the admin's) is unlimited.
  assert.equal((await stack.request('PATCH', '/v1/workspaces/quota-q', { maxPools: null, maxNodes: null })).body.maxPools, null);
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('after-lift', { maxNodes: 50 }), key)).status, 201);
  const admin = (await stack.request('GET', '/v1/workspaces/default')).body;
  assert.deepEqual([admin.maxPools, admin.maxNodes, admin.minServicePriority], [null, null, 1]);
});

test('what the fuzzer found, second run: NUL characters are a 400 (PostgreSQL cannot store them), services without the docker provider a 409, a chat message that is not an object a 400 before any node sees it', async () => {
  const named = await stack.request('PATCH', '/v1/workspaces/team-a', { name: 'team\u0000a' });
  assert.equal(named.status, 400, JSON.stringify(named.body));
  assert.equal(named.body.error.code, 'invalid_request');
  assert.match(named.body.error.message, /^name: /);
  assert.equal((await stack.request('GET', '/v1/pools/ch%00at', undefined, keyA)).status, 400);
  assert.equal((await stack.request('GET', '/v1/ledger?pool=a%00b', undefined, keyA)).status, 400);
  // Nothing was written: the name is as it was.
  assert.notEqual((await stack.request('GET', '/v1/workspaces/team-a')).body.name, 'team\u0000a');

  const service = await stack.request('POST', '/v1/services', { name: 'svc', image: 'x', vramGb: 1 }, keyA);
  assert.equal(service.status, 409, 'the server is healthy; it just runs no local services');
  assert.equal(service.body.error.code, 'docker_disabled');

  const nullMessage = await stack.request('POST', '/v1/chat/completions', { model: 'llama-3-8b', messages: [null] }, keyA);
  assert.equal(nullMessage.status, 400, JSON.stringify(nullMessage.body));
  assert.equal(nullMessage.body.error.type, 'invalid_request_error');
  const fractional = await stack.request('POST', '/v1/completions', { model: 'llama-3-8b', prompt: 'hi', max_tokens: 1.5 }, keyA);
  assert.equal(fractional.status, 400);
});

test('GET /v1/jobs: newest first, filters (pool, status, open, time), cursor pages that never repeat a job; another workspace sees none of them', async () => {
  const keyC = await stack.workspaceKey('team-c');
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('lister'), keyC)).status, 201);
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('other'), keyC)).status, 201);
  const submit = async (pool: string, maxTokens = 4) => {
    const res = await stack.request('POST', '/v1/jobs', { pool, payload: { prompt: 'list me', max_tokens: maxTokens } }, keyC);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const done: string[] = [];
  for (const pool of ['lister', 'lister', 'other', 'lister']) done.push(await submit(pool));
  for (const id of done) assert.equal((await finished(`/v1/jobs/${id}`, keyC)).status, 'completed');
  // One still running (2 s of tokens): listed as open, with its live status.
  const running = await submit('lister', 400);

  const page1 = await stack.request('GET', '/v1/jobs?pool=lister&limit=2', undefined, keyC);
  assert.equal(page1.status, 200, JSON.stringify(page1.body));
  assert.deepEqual(
    page1.body.jobs.map((j: { id: string }) => j.id),
    [running, done[3]],
    'newest first',
  );
  assert.ok(!('result' in page1.body.jobs[1]), 'results stay on GET /v1/jobs/:id');
  assert.notEqual(page1.body.jobs[0].status, 'completed', 'the open job is asked live');
  const page2 = await stack.request('GET', `/v1/jobs?pool=lister&limit=2&cursor=${page1.body.next_cursor}`, undefined, keyC);
  assert.deepEqual(
    page2.body.jobs.map((j: { id: string }) => j.id),
    [done[1], done[0]],
  );
  const page3 = await stack.request('GET', `/v1/jobs?pool=lister&limit=2&cursor=${page2.body.next_cursor}`, undefined, keyC);
  assert.deepEqual(page3.body, { jobs: [], next_cursor: null });

  const open = await stack.request('GET', '/v1/jobs?status=open', undefined, keyC);
  assert.deepEqual(
    open.body.jobs.map((j: { id: string }) => j.id),
    [running],
  );
  const completedOther = await stack.request('GET', '/v1/jobs?status=completed&pool=other', undefined, keyC);
  assert.deepEqual(
    completedOther.body.jobs.map((j: { id: string; status: string }) => [j.id, j.status]),
    [[done[2], 'completed']],
  );
  assert.equal((await stack.request('GET', '/v1/jobs?status=failed', undefined, keyC)).body.jobs.length, 0);
  const future = new Date(Date.now() + 3_600_000).toISOString();
  assert.equal((await stack.request('GET', `/v1/jobs?since=${future}`, undefined, keyC)).body.jobs.length, 0);
  assert.equal((await stack.request('GET', `/v1/jobs?until=${future}`, undefined, keyC)).body.jobs.length, 5);
  // Another workspace: none of them.
  const asB = await stack.request('GET', '/v1/jobs?limit=100', undefined, keyB);
  assert.equal(asB.status, 200);
  assert.ok(asB.body.jobs.every((j: { id: string }) => ![...done, running].includes(j.id)));
  // Bad filters are 400s that say what is wrong.
  const badStatus = await stack.request('GET', '/v1/jobs?status=runing', undefined, keyC);
  assert.equal(badStatus.status, 400);
  assert.match(JSON.stringify(badStatus.body.error), /status.*open/, 'the error names the field and what it may be');
  assert.equal((await stack.request('GET', '/v1/jobs?cursor=nonsense', undefined, keyC)).status, 400);
  assert.equal((await stack.request('GET', '/v1/jobs?limit=0', undefined, keyC)).status, 400);
  assert.equal((await finished(`/v1/jobs/${running}`, keyC)).status, 'completed');
});

test('DELETE /v1/pools/:id: refused while jobs run or nodes remain (drain first); then gone, its ledger rows and job records kept, the chain intact; the id reused with new node ids', async () => {
  const keyD = await stack.workspaceKey('team-d');
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('typo'), keyD)).status, 201);
  const first = await stack.request('POST', '/v1/jobs', { pool: 'typo', payload: { prompt: 'x', max_tokens: 400 } }, keyD);
  await stack.until(
    'running',
    async () => (await stack.request('GET', `/v1/jobs/${first.body.id}`, undefined, keyD)).body.status === 'running',
  );
  const busy = await stack.request('DELETE', '/v1/pools/typo', undefined, keyD);
  assert.equal(busy.status, 409);
  assert.match(busy.body.error.message, /1 node\(s\) and 1 job\(s\).*drain it first/);
  assert.equal((await stack.request('GET', '/v1/pools/typo', undefined, keyD)).body.draining, false, 'a refused delete changes nothing');
  const firstDone = await finished(`/v1/jobs/${first.body.id}`, keyD);
  assert.equal(firstDone.status, 'completed');
  assert.equal((await stack.request('POST', '/v1/pools/typo/drain', undefined, keyD)).status, 200);
  await stack.until('no nodes', async () => (await stack.request('GET', '/v1/pools/typo', undefined, keyD)).body.nodes.length === 0);
  const rowsBefore = (await stack.request('GET', '/v1/ledger?pool=typo&limit=1000', undefined, keyD)).body.events;
  assert.ok(rowsBefore.some((e: { event_type: string }) => e.event_type === 'node_terminated'));

  assert.equal((await stack.request('DELETE', '/v1/pools/typo', undefined, keyD)).status, 204);
  assert.equal((await stack.request('GET', '/v1/pools/typo', undefined, keyD)).status, 404);
  assert.deepEqual((await stack.request('GET', '/v1/pools', undefined, keyD)).body.pools, []);
  assert.equal((await stack.request('DELETE', '/v1/pools/typo', undefined, keyD)).status, 404);
  assert.equal((await stack.request('POST', '/v1/jobs', { pool: 'typo', payload: { prompt: 'x' } }, keyD)).status, 404);
  assert.deepEqual((await stack.request('GET', '/v1/ledger?pool=typo&limit=1000', undefined, keyD)).body.events, rowsBefore);
  assert.deepEqual(
    (await stack.request('GET', '/v1/jobs?pool=typo', undefined, keyD)).body.jobs.map((j: { id: string }) => j.id),
    [first.body.id],
  );
  assert.equal((await stack.request('GET', '/v1/ledger/verify', undefined, keyD)).body.ok, true);

  // The id again: a new pool, whose nodes never share an id (a ledger key) with the old one's.
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('typo'), keyD)).status, 201);
  const again = await stack.request('POST', '/v1/jobs', { pool: 'typo', payload: { prompt: 'y' } }, keyD);
  const againDone = await finished(`/v1/jobs/${again.body.id}`, keyD);
  assert.equal(againDone.status, 'completed');
  assert.notEqual(againDone.node_id, firstDone.node_id);
  assert.equal((await stack.request('GET', '/v1/ledger/verify', undefined, keyD)).body.ok, true);
});

test('new pools are adaptive unless they say fixed (issue 26: the ladder won on the evaluation set); pools stored before keep theirs, and their view says how to change', async () => {
  const keyE = await stack.workspaceKey('team-e');
  const { keepAlive: _pinned, ...unpinned } = poolBody('by-default');
  assert.equal((await stack.request('POST', '/v1/pools', unpinned, keyE)).status, 201);
  const byDefault = await stack.request('GET', '/v1/pools/by-default', undefined, keyE);
  assert.equal(byDefault.body.config.keepAlive.mode, 'adaptive');
  assert.equal(byDefault.body.keepAlive.mode, 'adaptive');
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('said-fixed'), keyE)).status, 201);
  const saidFixed = await stack.request('GET', '/v1/pools/said-fixed', undefined, keyE);
  assert.equal(saidFixed.body.keepAlive.mode, 'fixed');
  assert.match(saidFixed.body.keepAlive.windows.reason, /new pools are adaptive.*PATCH keepAlive/);
  // A pool stored before keep-alive modes existed (no keepAlive in its config) stays fixed through a PATCH.
  await stack.database.db.query(`UPDATE pools SET config = config - 'keepAlive' WHERE workspace_id = 'team-e' AND id = 'said-fixed'`);
  const patched = await stack.request('PATCH', '/v1/pools/said-fixed', { maxNodes: 4 }, keyE);
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.equal(patched.body.config.keepAlive.mode, 'fixed');
});
