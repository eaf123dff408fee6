import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ledgerRowsForPool } from '../../src/db/ledger';
import { HyperstackProvider } from '../../src/activities/providers/hyperstack';
import { RunpodProvider } from '../../src/activities/providers/runpod';
import { freePort } from '../../src/stack/free-port';
import { HyperstackFake } from '../fakes/hyperstack-fake';
import { RunpodFake } from '../fakes/runpod-fake';
import { ApiStack } from '../helpers/api-stack';

const RUNPOD_KEY = 'rp-key-0123456789abcdef';
const HYPERSTACK_KEY = 'hs-key-0123456789abcdef';
let runpod: RunpodFake;
let hyperstack: HyperstackFake;
let stack: ApiStack;

before(async () => {
  runpod = await new RunpodFake({ apiKey: RUNPOD_KEY, startingMs: 100, runningMs: 400, containers: true }).start();
  hyperstack = await new HyperstackFake({ apiKey: HYPERSTACK_KEY, buildMs: 100, activeMs: 400, modelServers: true }).start();
  stack = await new ApiStack({
    providers: (secrets) => ({
      runpod: new RunpodProvider({ apiKey: RUNPOD_KEY, baseUrl: runpod.url, proxyUrl: runpod.proxyUrl, secrets, healthTimeoutMs: 1000 }),
      hyperstack: new HyperstackProvider({ apiKey: HYPERSTACK_KEY, baseUrl: hyperstack.url, secrets, healthTimeoutMs: 1000 }),
      // A second RunPod account whose key was revoked (lanes name it as their provider).
      'runpod-revoked': new RunpodProvider({ apiKey: 'rp-revoked-key', baseUrl: runpod.url, proxyUrl: runpod.proxyUrl, secrets }),
    }),
  }).start();
});
after(async () => {
  await stack?.stop();
  await runpod?.stop();
  await hyperstack?.stop();
});

test('one pool, RunPod (fake checked against its published schema) then Hyperstack (fake checked by its official client): RunPod short → the pool falls back to Hyperstack and the job completes there; RunPod back → a RunPod node replaces the Hyperstack one make-before-break; each node billed once', async () => {
  const hyperstackPort = await freePort();
  runpod.stock.set('NVIDIA A40', 0);
  const created = await stack.request('POST', '/v1/pools', {
    id: 'cloud',
    model: 'm',
    minNodes: 1,
    maxNodes: 2,
    slotsPerNode: 2,
    idleTimeoutSeconds: 600,
    keepAlive: { mode: 'fixed' },
    laneCooldownSeconds: 2,
    healthCheckIntervalSeconds: 1,
    lanes: [
      {
        provider: 'runpod',
        market: 'on-demand',
        gpu: 'A40',
        pricePerHour: 0.5,
        runpod: { gpuTypes: ['NVIDIA A40'], cloud: 'COMMUNITY', image: 'vllm/vllm-openai:v0.11.0', env: { MOCK_MODEL: 'm' } },
      },
      {
        provider: 'hyperstack',
        market: 'on-demand',
        gpu: 'A100',
        pricePerHour: 1.35,
        hyperstack: {
          environment: 'CANADA-1',
          flavor: 'n3-A100x1',
          image: 'Ubuntu Server 22.04 LTS R535 CUDA 12.2',
          keyName: 'ops',
          userData: '#!/bin/sh\nexport ZEROPOOL_NODE_TOKEN={nodeToken}\nexport MOCK_MODEL=m\nexec mock-model-server\n',
          port: hyperstackPort,
        },
      },
    ],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));

  // RunPod has no A40: the baseline node falls back to Hyperstack, and a job runs there.
  const first = await stack.request('POST', '/v1/jobs', { pool: 'cloud', payload: { prompt: 'on hyperstack' } });
  assert.equal(first.status, 202);
  const firstDone = await stack.until('the first job completed', async () => {
    const job = await stack.request('GET', first.body.status_url);
    return job.body.status === 'completed' ? job.body : undefined;
  });
  const onHyperstack = await stack.request('GET', '/v1/pools/cloud');
  const fallbackNode = onHyperstack.body.nodes.find((n: any) => n.id === firstDone.node_id);
  assert.equal(fallbackNode?.lane.provider, 'hyperstack', 'the job ran on the Hyperstack node');
  assert.equal(runpod.created, 0);

  // RunPod has A40s again: after the lane's cool-down a RunPod node starts, and the Hyperstack node goes once it is ready.
  runpod.stock.delete('NVIDIA A40');
  const bootStatuses = new Set<string>();
  const moved = await stack.until('the pool runs on RunPod only', async () => {
    const pool = await stack.request('GET', '/v1/pools/cloud');
    const nodes = pool.body.nodes as any[];
    for (const n of nodes) if (n.providerStatus) bootStatuses.add(n.providerStatus);
    return nodes.length === 1 && nodes[0].lane.provider === 'runpod' && nodes[0].state === 'ready' ? nodes[0] : undefined;
  });
  assert.ok(
    [...bootStatuses].some((status) => /pod (PROVISIONING|STARTING)|model server not answering|health/.test(status)),
    `the booting node showed its provider's status in GET /v1/pools/:id (saw ${JSON.stringify([...bootStatuses])})`,
  );
  const second = await stack.request('POST', '/v1/jobs', { pool: 'cloud', payload: { prompt: 'on runpod' } });
  const secondDone = await stack.until('the second job completed', async () => {
    const job = await stack.request('GET', second.body.status_url);
    return job.body.status === 'completed' ? job.body : undefined;
  });
  assert.equal(secondDone.node_id, moved.id, 'new work runs on the RunPod node');

  const rows = await stack.until('the Hyperstack node closed in the ledger', async () => {
    const all = await ledgerRowsForPool(stack.database.db, 'cloud');
    return all.some((r) => r.event_type === 'node_terminated' && r.node_id === fallbackNode.id) ? all : undefined;
  });
  const provisioning = rows.filter((r) => r.event_type === 'node_provisioning');
  assert.deepEqual(
    provisioning.map((r) => [r.node_id, r.provider]),
    [
      [fallbackNode.id, 'hyperstack'],
      [moved.id, 'runpod'],
    ],
    'a refused RunPod create bills nothing; each node has one provisioning row',
  );
  const runpodRow = provisioning[1]!;
  assert.equal(runpodRow.details.replaces, fallbackNode.id);
  assert.equal(runpodRow.details.moveReason, 'preferred-lane');
  assert.equal(runpodRow.details.priceSource, 'runpod:pod-cost');
  assert.equal(Number(runpodRow.price_per_hour), 0.35, 'billed at the community A40 price RunPod states for the pod');
  const closed = rows.filter((r) => r.event_type === 'node_terminated');
  assert.equal(closed.length, 1);
  assert.match(String(closed[0]!.details.reason), /replaced by .* \(preferred-lane\)/);
  await stack.until('the Hyperstack VM deleted', async () =>
    [...hyperstack.vms.values()].every((vm) => vm.status === 'DELETING') ? true : undefined,
  );
  assert.equal(hyperstack.created, 1);
  assert.equal(runpod.created, 1);
  assert.deepEqual(runpod.violations, [], 'every RunPod request and response matched the published schema');
});

test('a RunPod pod the host takes away (EXITED) under a running job: the node is lost, the job goes back to the front and completes on a new pod; the lost pod is deleted and its billing closed', async () => {
  const created = await stack.request('POST', '/v1/pools', {
    id: 'exits',
    model: 'm',
    maxNodes: 2,
    slotsPerNode: 1,
    idleTimeoutSeconds: 600,
    keepAlive: { mode: 'fixed' },
    healthCheckIntervalSeconds: 1,
    lanes: [
      {
        provider: 'runpod',
        market: 'on-demand',
        gpu: 'A40',
        pricePerHour: 0.5,
        runpod: { gpuTypes: ['NVIDIA A40'], image: 'vllm/vllm-openai:v0.11.0', env: { MOCK_MODEL: 'm' } },
      },
    ],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const job = await stack.request('POST', '/v1/jobs', { pool: 'exits', payload: { prompt: 'long', max_tokens: 2500 } });
  const running = await stack.until('the job running', async () => {
    const view = await stack.request('GET', job.body.status_url);
    return view.body.status === 'running' && view.body.node_id ? view.body : undefined;
  });
  const pod = runpod.livePods().find((p) => p.body.env?.ZEROPOOL_NODE === running.node_id)!;
  runpod.exit(pod.id);

  const done = await stack.until('the job completed elsewhere', async () => {
    const view = await stack.request('GET', job.body.status_url);
    return view.body.status === 'completed' ? view.body : undefined;
  });
  assert.notEqual(done.node_id, running.node_id);
  assert.ok(done.attempt >= 2, `a new attempt ran it (attempt ${done.attempt})`);
  const rows = await ledgerRowsForPool(stack.database.db, 'exits');
  const lost = rows.filter((r) => r.event_type === 'node_lost');
  assert.deepEqual(
    lost.map((r) => r.node_id),
    [running.node_id],
  );
  assert.match(String(lost[0]!.details.reason), /EXITED/);
  await stack.until('the exited pod deleted', async () => (runpod.pods.has(pod.id) ? undefined : true));
  const closed = await stack.until('the lost node closed in the ledger', async () => {
    const all = await ledgerRowsForPool(stack.database.db, 'exits');
    return all.find((r) => r.event_type === 'node_terminated' && r.node_id === running.node_id);
  });
  assert.match(String(closed.details.reason), /lost: .*EXITED/);
  assert.deepEqual(runpod.violations, []);
});

test('a RunPod lane whose key is refused: the pool shows RunPod’s 401 on the waiting node, nothing is created or billed, and the job can be cancelled', async () => {
  const before = runpod.created;
  const created = await stack.request('POST', '/v1/pools', {
    id: 'revoked',
    model: 'm',
    maxNodes: 1,
    lanes: [
      {
        provider: 'runpod-revoked',
        market: 'on-demand',
        gpu: 'A40',
        pricePerHour: 0.5,
        runpod: { gpuTypes: ['NVIDIA A40'], image: 'vllm/vllm-openai:v0.11.0' },
      },
    ],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const job = await stack.request('POST', '/v1/jobs', { pool: 'revoked', payload: { prompt: 'never runs' } });
  const node = await stack.until('the refusal shown on the pool', async () => {
    const pool = await stack.request('GET', '/v1/pools/revoked');
    return pool.body.nodes.find((n: any) => /401/.test(n.lastError ?? ''));
  });
  assert.match(node.lastError, /RunPod GET \/v2\/pods answered 401: Authentication failed/, 'the lookup before any create is refused');
  assert.equal(runpod.created, before, 'nothing created');
  const cancelled = await stack.request('DELETE', job.body.status_url);
  assert.equal(cancelled.status, 202, JSON.stringify(cancelled.body));
  await stack.until('the job cancelled', async () => {
    const view = await stack.request('GET', job.body.status_url);
    return view.body.status === 'cancelled' ? true : undefined;
  });
  const rows = await ledgerRowsForPool(stack.database.db, 'revoked');
  assert.equal(rows.filter((r) => r.event_type === 'node_provisioning').length, 0, 'nothing billed');
});
