import assert from 'node:assert/strict';
import { after, beforeEach, test } from 'node:test';
import pino from 'pino';
import { nodeSecrets } from '../../src/secrets/node-secrets';
import { createNodeActivities } from '../../src/activities/nodes';
import {
  AuthFailedError,
  CapacityUnavailableError,
  InvalidRequestError,
  type ProvisionRequest,
} from '../../src/activities/providers/provider';
import { RUNPOD_ENV, RunpodProvider, runpodPodName } from '../../src/activities/providers/runpod';
import { poolKey } from '../../src/ids';
import spec from '../fixtures/runpod/openapi-v2.json';
import { RunpodContract } from '../fakes/runpod-contract';
import { RunpodFake } from '../fakes/runpod-fake';

const API_KEY = 'rp-test-key-0123456789';
const secrets = nodeSecrets(Buffer.alloc(32, 5));
const POOL = poolKey('team-a', 'chat');
let fake: RunpodFake;

beforeEach(async () => {
  await fake?.stop();
  fake = await new RunpodFake({ apiKey: API_KEY, startingMs: 50, runningMs: 150, containers: true }).start();
});
after(async () => {
  await fake?.stop();
});

const provider = (overrides: { apiKey?: string } = {}) =>
  new RunpodProvider({ apiKey: overrides.apiKey ?? API_KEY, baseUrl: fake.url, proxyUrl: fake.proxyUrl, secrets, healthTimeoutMs: 1000 });
const request = (nodeId: string, runpod: Record<string, unknown> = {}): ProvisionRequest => ({
  poolId: POOL,
  nodeId,
  model: 'm',
  laneIndex: 0,
  lane: {
    provider: 'runpod',
    market: 'on-demand',
    gpu: 'A40',
    pricePerHour: 0.5,
    runpod: {
      gpuTypes: ['NVIDIA A40', 'NVIDIA L40S'],
      gpuCount: 1,
      cloud: 'SECURE',
      image: 'vllm/vllm-openai:v0.11.0',
      args: '--model m --api-key {nodeToken}',
      env: { VLLM_API_KEY: '{nodeToken}' },
      volumePath: '/workspace',
      port: 8000,
      healthPath: '/health',
      ...runpod,
    },
  },
});
const until = async <T>(what: string, probe: () => Promise<T | undefined>, ms = 8000): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test('RunPod contract (published OpenAPI v2 schema): accepts the schema’s own examples and refuses what RunPod would (a field it lacks, a pod missing a required field, an undocumented route)', () => {
  const contract = new RunpodContract();
  const createPod = (spec as any).paths['/v2/pods'].post;
  assert.deepEqual(contract.checkRequest('POST', '/v2/pods', createPod.requestBody.content['application/json'].examples.gpuPod.value), []);
  const example = createPod.responses['201'].content['application/json'].examples.pod.value;
  assert.deepEqual(contract.checkResponse('POST', '/v2/pods', 201, example), []);
  assert.deepEqual(contract.checkResponse('GET', '/v2/pods/abc', 200, example), []);
  assert.deepEqual(contract.checkResponse('DELETE', '/v2/pods/abc', 204, undefined), []);

  assert.match(
    contract.checkRequest('POST', '/v2/pods', { name: 'x', image: 'i', gpu: { id: 'NVIDIA A40' }, interruptible: true }).join(),
    /unevaluated properties.*interruptible/,
    'v2 has no interruptible pods',
  );
  assert.match(contract.checkRequest('POST', '/v2/pods', { name: 'x', gpu: { id: 'NVIDIA A40' } }).join(), /image/);
  const { cost: _cost, ...withoutCost } = example;
  assert.match(contract.checkResponse('GET', '/v2/pods/abc', 200, withoutCost).join(), /cost/);
  assert.match(contract.checkResponse('GET', '/v2/pods/abc', 404, { title: 'Not Found', status: 404 }).join(), /detail/);
  assert.match(contract.checkRequest('POST', '/v1/pods', {}).join(), /no such operation/);
});

test('RunPod (local fake, checked against the published v2 schema): one pod per node named and marked by its env, ready when RUNNING and its server answers through the proxy with the node secret', async () => {
  const rp = provider();
  const first = await rp.provision(request('team-a.chat-n1'));
  await rp.provision(request('team-a.chat-n1'));
  await provider().provision(request('team-a.chat-n1'));
  assert.equal(fake.created, 1, 'a retried or restarted provision finds the pod by name and env');
  const pod = fake.livePods()[0]!;
  assert.equal(pod.body.name, runpodPodName('team-a.chat-n1'));
  assert.deepEqual(pod.body.gpu, { id: 'NVIDIA A40', count: 1 });
  assert.deepEqual(pod.body.ports, ['8000/http']);
  const token = secrets.of('team-a.chat-n1');
  assert.equal(pod.body.args, `--model m --api-key ${token}`);
  assert.equal(pod.body.env.VLLM_API_KEY, token);
  assert.equal(pod.body.env[RUNPOD_ENV.pool], POOL);
  assert.equal(pod.body.env[RUNPOD_ENV.workspace], 'team-a');
  assert.equal(first.url, `${fake.url}/proxy/${pod.id}-8000`);
  assert.deepEqual(first.price, { perHour: 0.4, source: 'runpod:pod-cost' }, 'the price is the cost RunPod states for the pod');

  assert.equal((await rp.describe(POOL, 'team-a.chat-n1')).healthy, false, 'still provisioning');
  const ready = await until('RUNNING and healthy', async () => {
    const status = await rp.describe(POOL, 'team-a.chat-n1');
    return status.healthy ? status : undefined;
  });
  assert.equal(ready.url, first.url);
  // The container got the secret from the pod's env: without it the model server refuses.
  assert.equal((await fetch(`${first.url}/v1/models`)).status, 401);
  assert.equal((await fetch(`${first.url}/v1/models`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  assert.deepEqual(await rp.list(POOL), ['team-a.chat-n1']);
  assert.deepEqual(await rp.list(poolKey('team-b', 'chat')), []);
  assert.deepEqual(fake.violations, [], 'every request and response matched RunPod’s published schema');
});

test('RunPod (local fake): GPU types are tried in rank order; all out of stock is a capacity shortage; unknown types a bad request; a bad key a clear auth error; nothing extra created', async () => {
  fake.stock.set('NVIDIA A40', 0);
  await provider().provision(request('team-a.chat-n1'));
  assert.deepEqual(
    fake.createBodies.map((b) => (b.gpu as { id: string }).id),
    ['NVIDIA A40', 'NVIDIA L40S'],
  );
  assert.equal(fake.livePods()[0]!.body.gpu.id, 'NVIDIA L40S');

  fake.stock.set('NVIDIA L40S', 0);
  await assert.rejects(provider().provision(request('team-a.chat-n2')), (err: Error) => {
    assert.ok(err instanceof CapacityUnavailableError);
    assert.match(err.message, /NVIDIA A40: There are no longer any instances available/);
    return true;
  });
  await assert.rejects(provider().provision(request('team-a.chat-n3', { gpuTypes: ['NVIDIA Z9000'] })), (err: Error) => {
    assert.ok(err instanceof InvalidRequestError);
    assert.match(err.message, /Unknown GPU type/);
    return true;
  });
  await assert.rejects(provider({ apiKey: 'wrong' }).provision(request('team-a.chat-n4')), (err: Error) => {
    assert.ok(err instanceof AuthFailedError);
    assert.match(err.message, /401/);
    return true;
  });
  assert.equal(fake.created, 1);
  assert.deepEqual(fake.violations, []);
});

test('RunPod (local fake): a create whose answer is lost (500 injected after the pod was made) is not repeated; a 429 is waited out (Retry-After) and the create sent again; a 503 on a read is retried', async () => {
  fake.fault({ method: 'POST', pathPrefix: '/v2/pods', status: 500, afterEffect: true });
  await provider().provision(request('team-a.chat-n1'));
  assert.equal(fake.created, 1);
  assert.equal(fake.calls.filter((c) => c.method === 'POST').length, 1, 'found by lookup, not created twice');

  fake.fault({ method: 'POST', pathPrefix: '/v2/pods', status: 429, retryAfterSeconds: 1 });
  fake.fault({ method: 'GET', pathPrefix: '/v2/pods', status: 503 });
  const started = Date.now();
  await provider().provision(request('team-a.chat-n2'));
  assert.ok(Date.now() - started >= 1000, 'Retry-After was honoured');
  assert.equal(fake.created, 2);
  assert.deepEqual(
    fake.calls.slice(-4).map((c) => `${c.method} ${c.status}`),
    ['GET 503', 'GET 200', 'POST 429', 'POST 201'],
  );
  assert.deepEqual(fake.violations, []);
});

test('RunPod (local fake): a create that times out after RunPod made the pod is not repeated: the pod is found by name, none duplicated', async () => {
  fake.fault({ method: 'POST', pathPrefix: '/v2/pods', status: 201, delayMs: 1500 });
  const rp = new RunpodProvider({ apiKey: API_KEY, baseUrl: fake.url, proxyUrl: fake.proxyUrl, secrets, requestTimeoutMs: 500 });
  const node = await rp.provision(request('team-a.chat-n1'));
  assert.equal(node.nodeId, 'team-a.chat-n1');
  assert.equal(fake.created, 1);
  assert.equal(fake.calls.filter((c) => c.method === 'POST').length, 0, 'the create’s answer never arrived in time');
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(fake.created, 1);
});

test('RunPod (local fake): a pod without our env is never listed or deleted; an EXITED pod is a lost node; terminate works while provisioning and is idempotent', async () => {
  await fetch(`${fake.url}/v2/pods`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: runpodPodName('team-a.chat-n9'), image: 'x', gpu: { id: 'NVIDIA A40' } }),
  });
  const rp = provider();
  assert.deepEqual(await rp.list(POOL), []);
  await rp.terminate(POOL, 'team-a.chat-n9');
  assert.equal(fake.livePods().length, 1, 'a pod named alike but not marked as ours is not touched');

  await rp.provision(request('team-a.chat-n1'));
  await rp.terminate(POOL, 'team-a.chat-n1');
  assert.equal(fake.livePods().length, 1, 'deleted while still provisioning');
  await rp.terminate(POOL, 'team-a.chat-n1');
  assert.equal(fake.calls.filter((c) => c.method === 'DELETE').length, 1);

  await rp.provision(request('team-a.chat-n2'));
  const pod = fake.livePods().find((p) => p.body.env?.[RUNPOD_ENV.node] === 'team-a.chat-n2')!;
  fake.exit(pod.id);
  const lost = await rp.describe(POOL, 'team-a.chat-n2');
  assert.equal(lost.exists, false);
  assert.match(lost.reason ?? '', /EXITED/);
  assert.deepEqual(fake.violations, []);
});

test('RunPod (local fake): reconciliation deletes a pod no pool knows (its worker died before recording it) and keeps the known one', async () => {
  const rp = provider();
  await rp.provision(request('team-a.chat-n1'));
  await rp.provision(request('team-a.chat-n2'));
  const activities = createNodeActivities({ providers: { runpod: rp }, logger: pino({ level: 'silent' }) });
  assert.deepEqual(await activities.reconcileNodes({ poolId: POOL, providers: ['runpod'], knownNodeIds: ['team-a.chat-n1'] }), [
    'team-a.chat-n2',
  ]);
  assert.deepEqual(await rp.list(POOL), ['team-a.chat-n1']);
  assert.deepEqual(fake.violations, []);
});

test('RunPod (local fake, checked against the published v2 schema): stop and start through /v2/pods/{id}/action; a stopped pod stays listed (the orphan sweep finds it); a start with no GPU left is CapacityUnavailable; both idempotent', async () => {
  const rp = provider();
  const activities = createNodeActivities({ providers: { runpod: rp }, logger: pino({ level: 'silent' }) });
  const ref = { poolId: POOL, nodeId: 'team-a.chat-n1', lane: request('team-a.chat-n1').lane };
  const healthy = () =>
    until('the pod healthy', async () => {
      const status = await rp.describe(POOL, 'team-a.chat-n1');
      return status.healthy ? status : undefined;
    });
  await rp.provision(request('team-a.chat-n1'));
  const ready = await healthy();
  assert.ok(ready.url);

  await activities.stopNode(ref);
  const pod = fake.livePods()[0]!;
  assert.equal(pod.status, 'EXITED');
  assert.ok(fake.stopped.has(pod.id), 'stopped by the action, not taken away');
  assert.deepEqual(await rp.list(POOL), ['team-a.chat-n1'], 'a stopped pod is still ours');
  await rp.stop(POOL, 'team-a.chat-n1');
  assert.equal(fake.calls.filter((c) => c.path.endsWith('/action')).length, 1, 'stopping a stopped pod asks nothing');

  const started = await activities.startNode(ref);
  assert.equal(started.url, ready.url, 'the same pod, reached the same way');
  assert.equal((await healthy()).url, ready.url, 'it boots to RUNNING and its server answers again');
  assert.equal(fake.created, 1, 'woken, not created');

  // Stopped again, and meanwhile the last A40 is taken: the start is refused as a shortage.
  await activities.stopNode(ref);
  fake.stock.set('NVIDIA A40', 0);
  await assert.rejects(rp.start(POOL, 'team-a.chat-n1'), CapacityUnavailableError);
  await assert.rejects(
    activities.startNode(ref),
    (err: Error) => err.name === 'ApplicationFailure' || /no longer any instances/.test(err.message),
  );
  // The pool then terminates it: nothing left billing its disk.
  await activities.terminateNode(ref);
  assert.deepEqual(await rp.list(POOL), []);
  assert.deepEqual(fake.violations, [], 'every request and response matched RunPod’s published schema');
});
