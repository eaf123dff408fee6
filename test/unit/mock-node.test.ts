import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadNodeSecretKey, NODE_SECRET_KEY_FILE, nodeSecrets } from '../../src/secrets/node-secrets';
import { testMockProvider } from '../helpers/stack';
import { waitUntil } from '../helpers/wait';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createNodeActivities } from '../../src/activities/nodes';
import type { MockProvider } from '../../src/activities/providers/mock';
import { asPoolKey, type PoolKey } from '../../src/ids';

// The boot counts from the provider's create call, so it must outlast the node process's own start-up here.
const provider = testMockProvider({ coldStartSeconds: 3, tokensPerSecond: 500 });
after(async () => {
  await provider.terminateAll();
});

const lane = { provider: 'mock', market: 'on-demand' as const, gpu: 'A10G', pricePerHour: 1 };

test('mock node: unhealthy while cold-starting, then OpenAI-compatible completions, streaming and not', async () => {
  const node = await provider.provision({ poolId: asPoolKey('p'), nodeId: 'p-n1', model: 'm', lane, laneIndex: 0 });
  assert.equal((await fetch(`${node.url}/health`)).status, 503, 'still loading');
  const booting = await provider.describe(asPoolKey('p'), 'p-n1');
  assert.equal(booting.healthy, false);
  assert.deepEqual(booting.modelServer, { url: node.url, healthPath: '/health' }, 'where the readiness wait may probe it');
  await waitUntil('the node to finish booting', async () => (await provider.describe(asPoolKey('p'), 'p-n1')).healthy, 10_000, 50);

  const plain = await fetch(`${node.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'two words' }], max_tokens: 5 }),
  });
  const body = (await plain.json()) as { object: string; choices: Array<{ message: { content: string } }>; usage: Record<string, number> };
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.usage.completion_tokens, 5);
  assert.equal(body.usage.prompt_tokens, 2);
  assert.equal(body.choices[0].message.content.trim().split(' ').length, 5);

  const streamed = await fetch(`${node.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, stream: true }),
  });
  assert.match(streamed.headers.get('content-type') ?? '', /text\/event-stream/);
  const events = (await streamed.text()).split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.equal(events.filter((e) => e.includes('"delta":{"content"')).length, 3);

  const bad = await fetch(`${node.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ max_tokens: 1 }) });
  assert.equal(bad.status, 400);
});

test("readiness wait: between the provider's answers a booting node's model server is probed directly", async () => {
  // One describe a minute: the wait can only end before the second if it probes the node itself meanwhile.
  let describes = 0;
  const counted = Object.assign(Object.create(provider) as MockProvider, {
    describe: (poolId: PoolKey, nodeId: string) => {
      describes += 1;
      return provider.describe(poolId, nodeId);
    },
  });
  const activities = createNodeActivities({
    providers: { mock: counted },
    logger: pino({ level: 'silent' }),
    healthPollMs: 60_000,
    readyProbeMs: 20,
  });
  const node = await provider.provision({ poolId: asPoolKey('r'), nodeId: 'r-n1', model: 'm', lane, laneIndex: 0 });
  const env = new MockActivityEnvironment();
  const heartbeats: Array<{ reason?: string }> = [];
  env.on('heartbeat', (details: { reason?: string }) => heartbeats.push(details));
  const ready = (await env.run(activities.waitNodeReady, { poolId: asPoolKey('r'), nodeId: 'r-n1', lane })) as { url: string };
  assert.equal(ready.url, node.url);
  assert.equal(describes, 1, 'the provider was asked once; the probes found the model server up');
  assert.ok(
    heartbeats.some((h) => h.reason === 'health 503'),
    'the probes heartbeat what they saw',
  );
  assert.equal((await fetch(`${node.url}/health`)).status, 200);
});

test('mock provider: provisioning is idempotent by node id, terminate is final, spot shortage is typed', async () => {
  const first = await provider.provision({ poolId: asPoolKey('p'), nodeId: 'p-n2', model: 'm', lane, laneIndex: 0 });
  const again = await provider.provision({ poolId: asPoolKey('p'), nodeId: 'p-n2', model: 'm', lane, laneIndex: 0 });
  assert.equal(again.url, first.url, 'the same node, not a second one');
  assert.deepEqual((await provider.list(asPoolKey('p'))).sort(), ['p-n1', 'p-n2']);
  await provider.terminate(asPoolKey('p'), 'p-n2');
  assert.equal((await provider.describe(asPoolKey('p'), 'p-n2')).exists, false);
  await provider.terminate(asPoolKey('p'), 'p-n2');

  const short = testMockProvider({ spotShortageProbability: 1 });
  await assert.rejects(
    short.provision({ poolId: asPoolKey('q'), nodeId: 'q-n1', model: 'm', lane: { ...lane, market: 'spot' }, laneIndex: 0 }),
    (err: Error) => err.name === 'CapacityUnavailable',
  );
  assert.deepEqual(await short.list(asPoolKey('q')), [], 'a refused request leaves no node');
});

test('node bearer secret: derived per node and key, kept in a 0600 file when generated, required by a mock node that was given one', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-secret-'));
  const key = loadNodeSecretKey(undefined, dir);
  assert.equal(statSync(path.join(dir, NODE_SECRET_KEY_FILE)).mode & 0o777, 0o600);
  assert.deepEqual(loadNodeSecretKey(undefined, dir), key, 'the kept key is reused');
  const secrets = nodeSecrets(key);
  assert.equal(secrets.of('p-n1'), secrets.of('p-n1'));
  assert.notEqual(secrets.of('p-n1'), secrets.of('p-n2'));
  assert.notEqual(nodeSecrets(Buffer.alloc(32, 1)).of('p-n1'), secrets.of('p-n1'));
  assert.throws(() => nodeSecrets(Buffer.from('short')), /32 bytes/);

  const guarded = testMockProvider({ coldStartSeconds: 0, stateDir: path.join(dir, 'nodes'), secrets });
  try {
    const node = await guarded.provision({ poolId: asPoolKey('s'), nodeId: 's-n1', model: 'm', lane, laneIndex: 0 });
    const ask = (headers: Record<string, string>) =>
      fetch(`${node.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }),
      });
    assert.equal((await ask({})).status, 401, 'no secret: refused');
    assert.equal((await ask({ authorization: `Bearer ${secrets.of('s-n2')}` })).status, 401, "another node's secret: refused");
    assert.equal((await ask({ authorization: `Bearer ${secrets.of('s-n1')}` })).status, 200);
    assert.equal((await guarded.describe(asPoolKey('s'), 's-n1')).healthy, true);
  } finally {
    await guarded.terminateAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mock node sleep mode, as vLLM’s: asleep it serves nothing, a wake answers once the model is back, the routes need the node’s secret', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-sleep-'));
  const secrets = nodeSecrets(Buffer.alloc(32, 4));
  const sleepy = testMockProvider({ coldStartSeconds: 0, stateDir: path.join(dir, 'nodes'), secrets, sleepWakeSeconds: 0.4 });
  try {
    const node = await sleepy.provision({ poolId: asPoolKey('z'), nodeId: 'z-n1', model: 'm', lane, laneIndex: 0 });
    const auth = { authorization: `Bearer ${secrets.of('z-n1')}` };
    const call = (route: string, method = 'POST', headers: Record<string, string> = auth) =>
      fetch(`${node.url}${route}`, { method, headers });
    const chat = () =>
      fetch(`${node.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }),
      });
    await waitUntil('the node to boot', async () => (await sleepy.describe(asPoolKey('z'), 'z-n1')).healthy, 10_000, 50);
    assert.equal((await call('/sleep', 'POST', {})).status, 401, 'nobody without the secret puts it to sleep');
    assert.equal((await chat()).status, 200);
    assert.equal((await call('/sleep?level=1')).status, 200);
    assert.deepEqual(await (await call('/is_sleeping', 'GET')).json(), { is_sleeping: true });
    const refused = await chat();
    assert.equal(refused.status, 503);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /asleep/);
    assert.equal((await fetch(`${node.url}/health`)).status, 200, 'the server is up while the model sleeps');
    const started = Date.now();
    const [first, second] = await Promise.all([call('/wake_up'), call('/wake_up')]);
    const waited = Date.now() - started;
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.ok(waited >= 350 && waited < 3000, `the wake took ${waited} ms (configured 400)`);
    assert.deepEqual(await (await call('/is_sleeping', 'GET')).json(), { is_sleeping: false });
    assert.equal((await chat()).status, 200);
  } finally {
    await sleepy.terminateAll();
    rmSync(dir, { recursive: true, force: true });
  }
});
