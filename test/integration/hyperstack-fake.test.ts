import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import pino from 'pino';
import { nodeSecrets } from '../../src/secrets/node-secrets';
import { createNodeActivities } from '../../src/activities/nodes';
import { HYPERSTACK_LABEL, HyperstackProvider, hyperstackVmName } from '../../src/activities/providers/hyperstack';
import {
  AuthFailedError,
  CapacityUnavailableError,
  InvalidRequestError,
  type ProvisionRequest,
} from '../../src/activities/providers/provider';
import { poolKey } from '../../src/ids';
import { HyperstackFake } from '../fakes/hyperstack-fake';
import { runHyperstackClientCheck, validateHyperstackCreateBodies } from '../helpers/hyperstack-client';

const API_KEY = 'hs-test-key-0123456789';
const secrets = nodeSecrets(Buffer.alloc(32, 3));
let fake: HyperstackFake;
/** A stand-in model server on 127.0.0.1 (where the fake's floating IPs point): healthy only with the node's secret. */
let modelServer: http.Server;
let modelPort: number;

before(async () => {
  modelServer = http.createServer((req, res) => {
    const node = (req.headers['x-expect-node'] as string | undefined) ?? 'team-a.chat-n1';
    res.writeHead(req.headers.authorization === `Bearer ${secrets.of(node)}` ? 200 : 401).end();
  });
  await new Promise<void>((r) => modelServer.listen(0, '127.0.0.1', r));
  modelPort = (modelServer.address() as AddressInfo).port;
});
beforeEach(async () => {
  await fake?.stop();
  fake = await new HyperstackFake({ apiKey: API_KEY, floatingIp: '127.0.0.1', buildMs: 50, activeMs: 150 }).start();
});
after(async () => {
  await fake?.stop();
  modelServer?.closeAllConnections();
  await new Promise((r) => modelServer?.close(r));
});

const POOL = poolKey('team-a', 'chat');
const provider = (overrides: { apiKey?: string } = {}) =>
  new HyperstackProvider({ apiKey: overrides.apiKey ?? API_KEY, baseUrl: fake.url, secrets, healthTimeoutMs: 500 });
const request = (nodeId: string, hyperstack: Record<string, unknown> = {}): ProvisionRequest => ({
  poolId: POOL,
  nodeId,
  model: 'm',
  laneIndex: 0,
  lane: {
    provider: 'hyperstack',
    market: 'on-demand',
    gpu: 'A100',
    pricePerHour: 1.35,
    hyperstack: {
      environment: 'CANADA-1',
      flavor: 'n3-A100x1',
      image: 'Ubuntu Server 22.04 LTS R535 CUDA 12.2',
      keyName: 'ops',
      userData: '#cloud-config\nruncmd:\n  - vllm serve m --api-key {nodeToken}\n',
      assignFloatingIp: true,
      port: modelPort,
      healthPath: '/health',
      ...hyperstack,
    },
  },
});
const until = async <T>(what: string, probe: () => Promise<T | undefined>, ms = 5000): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test('Hyperstack fake checked against the official Python client (PyPI hyperstack): create, get, list, hibernate, restore and delete parse in its published models', async () => {
  const result = await runHyperstackClientCheck(fake.url, API_KEY);
  assert.equal(result.created, true);
  assert.equal(result.name, 'client-check');
  assert.equal(result.status, 'CREATING');
  assert.deepEqual(result.listed, [result.id]);
  assert.deepEqual(result.hibernation, ['ACTIVE', true, 'HIBERNATED', true, 'ACTIVE'], 'hibernate_vm and restore_vm_from_hibernation');
  assert.equal(result.deleted, true);
  assert.equal(result.missing, 404, 'an unknown VM is a 404 the client raises');
  assert.deepEqual(result.flavor_gpu, ['A100-80G-PCIe', 1], 'the VM’s flavor names its GPU model and count');
  assert.deepEqual(
    result.pricebook,
    { 'A100-80G-PCIe': 1.35, 'H100-80G-PCIe': 1.9 },
    'the pricebook parses as the client’s PricebookModel list',
  );
  assert.equal(fake.created, 1);
});

test('Hyperstack (local fake): one labelled VM per node, ready when ACTIVE and its server answers with the node secret, user data carries the secret', async () => {
  const hs = provider();
  const first = await hs.provision(request('team-a.chat-n1'));
  await hs.provision(request('team-a.chat-n1'));
  await provider().provision(request('team-a.chat-n1'));
  assert.equal(fake.created, 1, 'a retried or restarted provision finds the VM by name and label');
  assert.equal(first.url, '', 'no address while the VM is being created');
  assert.deepEqual(first.price, { perHour: 1.35, source: 'hyperstack:pricebook' }, 'priced by the pricebook for its GPU model');
  const vm = [...fake.vms.values()][0]!;
  assert.equal(vm.name, hyperstackVmName('team-a.chat-n1'));
  assert.ok(vm.labels.includes(HYPERSTACK_LABEL.pool(POOL)) && vm.labels.includes(HYPERSTACK_LABEL.workspace('team-a')));
  assert.equal(fake.userDataOf(vm.name), `#cloud-config\nruncmd:\n  - vllm serve m --api-key ${secrets.of('team-a.chat-n1')}\n`);

  assert.equal((await hs.describe(POOL, 'team-a.chat-n1')).healthy, false, 'still being created');
  const ready = await until('ACTIVE and healthy', async () => {
    const status = await hs.describe(POOL, 'team-a.chat-n1');
    return status.healthy ? status : undefined;
  });
  assert.equal(ready.url, `http://127.0.0.1:${modelPort}`);
  assert.deepEqual(await hs.list(POOL), ['team-a.chat-n1']);
  assert.deepEqual(await hs.list(poolKey('team-b', 'chat')), []);
  // What the driver sent is what the published request model accepts (official client, strict).
  assert.equal(await validateHyperstackCreateBodies(fake.createBodies), 1);
});

test('Hyperstack (local fake): a VM without our labels is never listed or deleted; terminate is idempotent; a VM shut off is a lost node', async () => {
  await fetch(`${fake.url}/core/virtual-machines`, {
    method: 'POST',
    headers: { api_key: API_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: hyperstackVmName('team-a.chat-n9'),
      environment_name: 'CANADA-1',
      flavor_name: 'x',
      key_name: 'k',
      count: 1,
    }),
  });
  const hs = provider();
  assert.deepEqual(await hs.list(POOL), []);
  await hs.terminate(POOL, 'team-a.chat-n9');
  assert.equal([...fake.vms.values()][0]!.status === 'DELETING', false, 'a VM named alike but not labelled is not ours');

  await hs.provision(request('team-a.chat-n1'));
  const id = [...fake.vms.values()].find((vm) => vm.labels.length > 0)!.id;
  fake.shutOff(id);
  const lost = await hs.describe(POOL, 'team-a.chat-n1');
  assert.equal(lost.exists, false);
  assert.match(lost.reason ?? '', /SHUTOFF/);
  await hs.terminate(POOL, 'team-a.chat-n1');
  await hs.terminate(POOL, 'team-a.chat-n1');
  assert.equal(fake.calls.filter((c) => c.method === 'DELETE').length, 1, 'the second terminate finds it already deleting');
  await until('deleted', async () => ((await hs.list(POOL)).length === 0 ? true : undefined));
  assert.equal((await hs.describe(POOL, 'team-a.chat-n1')).exists, false);
});

test('Hyperstack (local fake): the price is the pricebook’s for the flavor’s GPU model times its GPU count; without a pricebook entry, none (the lane’s applies)', async () => {
  const two = await provider().provision(request('team-a.chat-n1', { flavor: 'n3-H100x2' }));
  assert.deepEqual(two.price, { perHour: 3.8, source: 'hyperstack:pricebook' });
  fake.pricebook.splice(0);
  const unpriced = await provider().provision(request('team-a.chat-n2'));
  assert.equal(unpriced.price, undefined);
});

test('Hyperstack (local fake): a create whose answer is lost (500 injected after the fake made the VM) is not repeated: the VM is found, none duplicated', async () => {
  fake.fault({ method: 'POST', pathPrefix: '/core/virtual-machines', status: 500, afterEffect: true });
  const node = await provider().provision(request('team-a.chat-n1'));
  assert.equal(node.nodeId, 'team-a.chat-n1');
  assert.equal(fake.created, 1);
  assert.equal(fake.calls.filter((c) => c.method === 'POST').length, 1);
});

test('Hyperstack (local fake): 429 with Retry-After and 503 on a lookup are waited out and retried', async () => {
  fake.fault({ method: 'GET', pathPrefix: '/core/virtual-machines', status: 429, retryAfterSeconds: 1 });
  fake.fault({ method: 'GET', pathPrefix: '/core/virtual-machines', status: 503 });
  const started = Date.now();
  await provider().provision(request('team-a.chat-n1'));
  assert.ok(Date.now() - started >= 1000, 'Retry-After was honoured');
  assert.equal(fake.created, 1);
  assert.deepEqual(
    fake.calls
      .filter((c) => c.method === 'GET')
      .slice(0, 3)
      .map((c) => c.status),
    [429, 503, 200],
  );
});

test('Hyperstack (local fake): a stock-out is a capacity shortage, a bad key a clear auth error, an unknown environment a bad request; nothing is created', async () => {
  fake.stock.set('n3-A100x1', 0);
  await assert.rejects(provider().provision(request('team-a.chat-n1')), CapacityUnavailableError);
  await assert.rejects(provider({ apiKey: 'wrong' }).provision(request('team-a.chat-n2')), (err: Error) => {
    assert.ok(err instanceof AuthFailedError);
    assert.match(err.message, /401.*Invalid API key/);
    return true;
  });
  await assert.rejects(
    provider().provision(request('team-a.chat-n3', { environment: 'MARS-1', flavor: 'n3-H100x1' })),
    InvalidRequestError,
  );
  assert.equal(fake.created, 0);
});

test('Hyperstack (local fake): reconciliation deletes a VM no pool knows (its worker died before recording it) and keeps the known one', async () => {
  const hs = provider();
  await hs.provision(request('team-a.chat-n1'));
  await hs.provision(request('team-a.chat-n2'));
  const activities = createNodeActivities({ providers: { hyperstack: hs }, logger: pino({ level: 'silent' }) });
  assert.deepEqual(await activities.reconcileNodes({ poolId: POOL, providers: ['hyperstack'], knownNodeIds: ['team-a.chat-n1'] }), [
    'team-a.chat-n2',
  ]);
  assert.deepEqual(await hs.list(POOL), ['team-a.chat-n1']);
});

test('Hyperstack (local fake, checked by the official client): hibernate and restore; a hibernated VM stays listed (the orphan sweep finds it); a restore with no stock is CapacityUnavailable; hibernate is idempotent', async () => {
  const hs = provider();
  const activities = createNodeActivities({ providers: { hyperstack: hs }, logger: pino({ level: 'silent' }) });
  const ref = { poolId: POOL, nodeId: 'team-a.chat-n1', lane: request('team-a.chat-n1').lane };
  const status = () => [...fake.vms.values()][0]!.status;
  const healthy = () =>
    until('the VM serving', async () => {
      const s = await hs.describe(POOL, 'team-a.chat-n1');
      return s.healthy ? s : undefined;
    });
  await hs.provision(request('team-a.chat-n1'));
  await healthy();

  await activities.stopNode(ref);
  await hs.stop(POOL, 'team-a.chat-n1');
  assert.equal(fake.calls.filter((c) => c.path.endsWith('/hibernate')).length, 1, 'hibernating a hibernating VM asks nothing');
  await until('hibernated', async () => ((await hs.describe(POOL, 'team-a.chat-n1')).reason?.includes('HIBERNATED') ? true : undefined));
  assert.deepEqual(await hs.list(POOL), ['team-a.chat-n1'], 'a hibernated VM is still ours');

  await activities.startNode(ref);
  await healthy();
  assert.equal(status(), 'ACTIVE');
  assert.equal(fake.created, 1, 'restored, not created');

  await activities.stopNode(ref);
  await until('hibernated again', async () =>
    (await hs.describe(POOL, 'team-a.chat-n1')).reason?.includes('HIBERNATED') ? true : undefined,
  );
  fake.stock.set('n3-A100x1', 0);
  await assert.rejects(hs.start(POOL, 'team-a.chat-n1'), CapacityUnavailableError);
  await activities.terminateNode(ref);
  await until('deleted', async () => ((await hs.list(POOL)).length === 0 ? true : undefined));
});
