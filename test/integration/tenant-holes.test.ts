/**
 * Attacks from one workspace key that the API let through before (issue 30), against the real stack (Temporal
 * dev server, PostgreSQL, worker, mock provider): racing resizes past the node quota, text PostgreSQL cannot
 * store, bodies nested to blow a stack, out-of-range numbers. Each must be refused with a clear 4xx and leave
 * nothing behind. The docker-side holes (shared network, GPU env) are in docker-isolation.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MAX_JSON_DEPTH } from '../../src/api/body';
import { ApiStack, poolBody } from '../helpers/api-stack';

let stack: ApiStack;
let key: string;

before(async () => {
  stack = await new ApiStack({ coldStartSeconds: 0.3, tokensPerSecond: 500 }).start();
  key = await stack.workspaceKey('holes');
});
after(async () => {
  await stack?.stop();
});

/** A request whose body is sent exactly as written (no JSON.stringify on our side). */
async function raw(method: string, url: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.baseUrl}${url}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

test('racing resizes hold the node quota: five parallel PATCHes from 1 to 6 nodes under maxNodes 10 → exactly one passes, and the stored sizes add up to at most 10', async () => {
  assert.equal((await stack.request('POST', '/v1/workspaces', { id: 'resize-race', maxNodes: 10 })).status, 201);
  const raceKey = (await stack.request('POST', '/v1/workspaces/resize-race/keys', {})).body.key as string;
  const ids = ['p1', 'p2', 'p3', 'p4', 'p5'];
  for (const id of ids) assert.equal((await stack.request('POST', '/v1/pools', poolBody(id, { maxNodes: 1 }), raceKey)).status, 201);
  const answers = await Promise.all(ids.map((id) => stack.request('PATCH', `/v1/pools/${id}`, { maxNodes: 6 }, raceKey)));
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 403, 403, 403, 403], JSON.stringify(answers.map((a) => a.body)));
  const pools = (await stack.request('GET', '/v1/pools', undefined, raceKey)).body.pools as Array<{
    id: string;
    config: { maxNodes: number };
  }>;
  const total = pools.reduce((sum, p) => sum + p.config.maxNodes, 0);
  assert.equal(total, 10, `stored sizes: ${JSON.stringify(pools.map((p) => [p.id, p.config.maxNodes]))}`);
  // What each pool's workflow runs with is what is stored (a refused PATCH changed neither).
  for (const pool of pools) {
    const view = (await stack.request('GET', `/v1/pools/${pool.id}`, undefined, raceKey)).body;
    assert.equal(view.config.maxNodes, pool.config.maxNodes, `pool ${pool.id}: workflow and row agree`);
  }
  // Two PATCHes of one pool that change different fields both keep their change (merged under the lock).
  await Promise.all([
    stack.request('PATCH', '/v1/pools/p1', { idleTimeoutSeconds: 123 }, raceKey),
    stack.request('PATCH', '/v1/pools/p1', { burstThreshold: 7 }, raceKey),
  ]);
  const p1 = (await stack.request('GET', '/v1/pools', undefined, raceKey)).body.pools.find((p: { id: string }) => p.id === 'p1');
  assert.deepEqual([p1.config.idleTimeoutSeconds, p1.config.burstThreshold], [123, 7]);
});

test('text PostgreSQL cannot store is a 400 where it enters (lone surrogates, NUL), and nothing is written', async () => {
  await stack.request('POST', '/v1/pools', poolBody('texts', { maxNodes: 1 }), key);
  const lone = 'A\ud800B';
  const cases: Array<[string, string, unknown, RegExp]> = [
    ['POST', '/v1/jobs', { pool: 'texts', payload: { prompt: lone } }, /^payload\.prompt: .*lone UTF-16 surrogate/],
    [
      'POST',
      '/v1/jobs',
      { pool: 'texts', payload: { prompt: 'hi' }, callbackUrl: `https://example.com/${lone}` },
      /^callbackUrl: .*surrogate/,
    ],
    ['POST', '/v1/jobs', { pool: 'texts', payload: { prompt: 'hi', [`k${lone}`]: 1 } }, /^payload\.kA.*B: a key: .*surrogate/],
    ['POST', '/v1/pools', poolBody('bad-model', { model: lone }), /^model: .*surrogate/],
    ['POST', '/v1/chat/completions', { model: 'llama-3-8b', messages: [{ role: 'user', content: lone }] }, /surrogate/],
    ['PATCH', '/v1/pools/texts', { model: `x\u0000y` }, /^model: .*NUL/],
  ];
  for (const [method, url, body, message] of cases) {
    const answer = await stack.request(method, url, body, key);
    assert.equal(answer.status, 400, `${method} ${url}: ${JSON.stringify(answer.body)}`);
    assert.match(answer.body.error.message, message);
  }
  assert.equal((await stack.request('GET', '/v1/pools/bad-model', undefined, key)).status, 404, 'no pool was made');
  assert.notEqual((await stack.request('GET', '/v1/pools/texts', undefined, key)).body.config.model, 'x\u0000y');

  // Progress from a node, with the job's own token: the text is refused, the job goes on to complete.
  const job = await stack.request('POST', '/v1/jobs', { pool: 'texts', payload: { prompt: 'hello', max_tokens: 4 } }, key);
  assert.equal(job.status, 202, JSON.stringify(job.body));
  const progress = await fetch(`${stack.baseUrl}/v1/jobs/${job.body.id}/progress`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${job.body.progress_token}` },
    body: JSON.stringify({ completion_tokens: 1, text: lone }),
  });
  assert.equal(progress.status, 400, await progress.text());
  const huge = await fetch(`${stack.baseUrl}/v1/jobs/${job.body.id}/progress`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${job.body.progress_token}` },
    body: '{"completion_tokens": 1e300}',
  });
  assert.equal(huge.status, 400, 'completion_tokens is bounded');
  const done = await stack.until('job terminal', async () => {
    const view = (await stack.request('GET', `/v1/jobs/${job.body.id}`, undefined, key)).body;
    return ['completed', 'failed'].includes(view.status) ? view : undefined;
  });
  assert.equal(done.status, 'completed');
});

test('bodies nested deeper than the limit are a 400 naming it, before anything recurses: a job payload (5,000 levels) and a chat request (30,000 levels) never reach a node', async () => {
  await stack.request('POST', '/v1/pools', poolBody('deep', { model: 'deep-model', maxNodes: 1 }), key);
  const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
  const job = await raw('POST', '/v1/jobs', `{"pool":"deep","payload":{"prompt":"hi","extra":${nested(5_000)}}}`);
  assert.equal(job.status, 400, JSON.stringify(job.body));
  assert.equal(job.body.error.code, 'body_too_deep');
  assert.match(job.body.error.message, new RegExp(`deeper than ${MAX_JSON_DEPTH} levels`));
  const chat = await raw(
    'POST',
    '/v1/chat/completions',
    `{"model":"deep-model","messages":[{"role":"user","content":"hi","x":${nested(30_000)}}]}`,
  );
  assert.equal(chat.status, 400, JSON.stringify(chat.body));
  // Nothing was placed: the pool never started a node for it, so no node could be blamed.
  const pool = (await stack.request('GET', '/v1/pools/deep', undefined, key)).body;
  assert.equal(pool.nodes.length, 0, JSON.stringify(pool.nodes));
  // Within the limit is fine: brackets inside strings do not count.
  const shallow = await raw('POST', '/v1/jobs', `{"pool":"deep","payload":{"prompt":"${'['.repeat(200)}","max_tokens":2}}`);
  assert.equal(shallow.status, 202, JSON.stringify(shallow.body));
});

test('numbers are bounded the same on both job routes; the priority header is an integer', async () => {
  await stack.request('POST', '/v1/pools', poolBody('numbers', { model: 'numbers-model', maxNodes: 1 }), key);
  for (const max_tokens of [-1, 0, 1.5, 1e12]) {
    const job = await stack.request('POST', '/v1/jobs', { pool: 'numbers', payload: { prompt: 'hi', max_tokens } }, key);
    assert.equal(job.status, 400, `jobs max_tokens ${max_tokens}: ${JSON.stringify(job.body)}`);
    const chat = await stack.request('POST', '/v1/completions', { model: 'numbers-model', prompt: 'hi', max_tokens }, key);
    assert.equal(chat.status, 400, `completions max_tokens ${max_tokens}`);
  }
  const fractional = await fetch(`${stack.baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-zeropool-priority': '1.5' },
    body: JSON.stringify({ model: 'numbers-model', prompt: 'hi', max_tokens: 2 }),
  });
  assert.equal(fractional.status, 400);
  assert.match(await fractional.text(), /x-zeropool-priority must be an integer from 1 to 5/);
});

test("a ledger row appended to another workspace's chain with the database login alone is named by that workspace's verify; its own rows verify", async () => {
  await stack.request('POST', '/v1/pools', poolBody('ledgered', { model: 'ledgered-model', maxNodes: 1 }), key);
  const job = await stack.request('POST', '/v1/jobs', { pool: 'ledgered', payload: { prompt: 'hi', max_tokens: 4 } }, key);
  assert.equal(job.status, 202);
  await stack.until('job completed', async () => {
    const view = (await stack.request('GET', `/v1/jobs/${job.body.id}`, undefined, key)).body;
    return view.status === 'completed' ? view : undefined;
  });
  const before = (await stack.request('GET', '/v1/ledger/verify', undefined, key)).body;
  assert.equal(before.ok, true, JSON.stringify(before.first_broken));
  assert.ok(before.rows_checked >= 2, 'the pool and the job wrote marked rows');
  // Someone holding the services' database login (not the node secret key) bills the workspace for an H100.
  await stack.database.db.query(
    `INSERT INTO ledger (event_key, event_type, occurred_at, workspace_id, pool_id, node_id, provider, market, gpu, price_per_hour)
     VALUES ('holes-forged', 'node_provisioning', now(), 'holes', 'ledgered', 'ledgered-n99', 'mock', 'on-demand', 'H100', 40)`,
  );
  const after = (await stack.request('GET', '/v1/ledger/verify', undefined, key)).body;
  assert.equal(after.ok, false);
  assert.equal(after.first_broken.event_key, 'holes-forged');
  assert.match(after.first_broken.reason, /no writer mark/);
});
