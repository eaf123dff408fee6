/**
 * The docker provider's default network (a real engine): a service container lives on its workspace's own
 * internal bridge network. The worker reaches it there and a job completes; from inside it, the host's loopback
 * services (the embedded PostgreSQL, the Temporal dev server, the API) cannot be opened, nor another
 * workspace's model server (issue 30: every workspace once shared one network). The same probe from a
 * host-network container opens them: the attack that the isolated network stops. A container is given its
 * node's secret, and the model server refuses a call without it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { workspaceNetworkName } from '../../src/activities/providers/docker';
import { ApiStack } from '../helpers/api-stack';
import { docker, mockNodeImage, recordedNvidiaSmi, removeTestContainers, missingDockerEngine } from '../helpers/docker';

const PREFIX = 'iso-';
const NETWORK = 'zeropool-test-services';
let stack: ApiStack | undefined;
let image = '';
let noEngine = '';

before(async () => {
  noEngine = (await missingDockerEngine()) ?? '';
  if (noEngine) return;
  await removeTestContainers(PREFIX);
  image = await mockNodeImage();
  stack = await new ApiStack({
    docker: {
      nvidiaSmiPath: recordedNvidiaSmi('query-gpu_1xRTX4080SUPER_allfields_csv.txt'),
      network: 'isolated',
      isolatedNetwork: NETWORK,
    },
  }).start();
});
after(async () => {
  await stack?.stop();
  if (noEngine) return;
  await removeTestContainers(PREFIX);
  for (const n of await docker.listNetworks({ filters: { name: [NETWORK] } }))
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => undefined);
});

/** Tries a TCP connection to port (argv 1) at host (argv 2, default 127.0.0.1) from inside a container: 'open' or 'closed'. */
const PROBE = `const s = require('net').connect(Number(process.argv[1]), process.argv[2] || '127.0.0.1');
s.setTimeout(1500);
s.on('connect', () => { console.log('open'); process.exit(0); });
s.on('error', () => { console.log('closed'); process.exit(0); });
s.on('timeout', () => { console.log('closed'); process.exit(0); });`;

test('isolated network: the worker reaches the service and its job completes; the container cannot open the host loopback services a host-network container can', async (t) => {
  if (!stack) return t.skip(`no Docker engine: ${noEngine}`);
  const name = `${PREFIX}svc`;
  const created = await stack.request('POST', '/v1/services', {
    name,
    image,
    command: ['/bin/node', '/app/server.js'],
    // A server in its own network namespace listens on every interface of it (as vLLM does by default).
    env: {
      MOCK_PORT: '{port}',
      MOCK_HOST: '0.0.0.0',
      MOCK_COLD_START_MS: '300',
      MOCK_TOKENS_PER_SECOND: '100',
      MOCK_NODE_ID: name,
      MOCK_MODEL: name,
    },
    port: 8000,
    vramGb: 0,
    slotsPerNode: 2,
    idleTimeoutSeconds: 600,
    stopTimeoutSeconds: 2,
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const job = await stack.request('POST', '/v1/jobs', {
    pool: name,
    payload: { messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 },
  });
  assert.equal(job.status, 202);
  const done = await stack.until(
    'job terminal',
    async () => {
      const res = await stack!.request('GET', `/v1/jobs/${job.body.id}`);
      return ['completed', 'failed', 'expired', 'cancelled'].includes(res.body.status) ? res.body : undefined;
    },
    90_000,
  );
  assert.equal(done.status, 'completed', JSON.stringify(done));

  const [container] = await docker.listContainers({ filters: { label: [`zeropool.service=${name}`] } });
  assert.ok(container, 'the service container runs');
  const info = await docker.getContainer(container.Id).inspect();
  const network = workspaceNetworkName(NETWORK, 'default');
  assert.equal(info.HostConfig.NetworkMode, network, 'the workspace’s own network');
  assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
  assert.equal((await docker.getNetwork(network).inspect()).Internal, true, 'an internal network');
  const pool = (await stack.request('GET', `/v1/services/${name}`)).body;
  assert.match(JSON.stringify(pool), new RegExp(`http://${info.NetworkSettings.Networks[network].IPAddress.replaceAll('.', '\\.')}:8000`));

  const ports = {
    postgres: Number(new URL(stack.database.url).port),
    temporal: Number(stack.env.address.split(':').pop()),
    api: Number(new URL(stack.baseUrl).port),
  };
  const probeFrom = (args: string[], port: number) =>
    execFileSync('docker', [...args, '/bin/node', '-e', PROBE, String(port)], { encoding: 'utf8' }).trim();
  for (const [service, port] of Object.entries(ports))
    assert.equal(probeFrom(['exec', container.Id], port), 'closed', `the isolated container cannot open the host's ${service} (${port})`);
  // The same probe on the host network: what a service could reach before (and still can when an admin chooses host).
  const onHost = ['run', '--rm', '--network', 'host', '--name', `${PREFIX}probe`, image];
  assert.equal(probeFrom(onHost, ports.postgres), 'open', 'a host-network container opens the embedded PostgreSQL');
});

/** A mock model server as a tenant's service, listening on every interface of its network namespace. */
function tenantService(name: string) {
  return {
    name,
    image,
    command: ['/bin/node', '/app/server.js'],
    env: { MOCK_PORT: '{port}', MOCK_HOST: '0.0.0.0', MOCK_COLD_START_MS: '200', MOCK_NODE_ID: name, MOCK_MODEL: name },
    port: 8000,
    vramGb: 0,
    slotsPerNode: 2,
    idleTimeoutSeconds: 600,
    stopTimeoutSeconds: 1,
  };
}

test('two tenants’ services: each on its workspace’s own network, neither can open the other’s model server; a call without the node’s secret is refused; the network goes with the last container', async (t) => {
  if (!stack) return t.skip(`no Docker engine: ${noEngine}`);
  const api: ApiStack = stack;
  const tenants = ['iso-ta', 'iso-tb'];
  const keys = await Promise.all(tenants.map((w) => api.workspaceKey(w)));
  const running: Array<{ name: string; workspace: string; key: string; id: string; nodeId: string; address: string }> = [];
  for (const [i, workspace] of tenants.entries()) {
    const name = `${PREFIX}${workspace.slice(-2)}`;
    const created = await api.request('POST', '/v1/services', tenantService(name), keys[i]);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await api.request('POST', `/v1/services/${name}/start`, {}, keys[i])).status, 200);
    const container = await api.until(`${name} running`, async () => {
      const [c] = await docker.listContainers({ filters: { label: [`zeropool.workspace=${workspace}`, 'zeropool.managed=true'] } });
      return c;
    });
    const info = await docker.getContainer(container.Id).inspect();
    const network = workspaceNetworkName(NETWORK, workspace);
    assert.equal(info.HostConfig.NetworkMode, network);
    assert.equal((await docker.getNetwork(network).inspect()).Internal, true);
    running.push({
      name,
      workspace,
      key: keys[i],
      id: container.Id,
      nodeId: info.Config.Labels['zeropool.node'],
      address: info.NetworkSettings.Networks[network].IPAddress,
    });
  }
  const [a, b] = running;
  // Each tenant's own job completes: zeropool calls its node with the node's secret.
  const job = await api.request('POST', '/v1/jobs', { pool: a.name, payload: { prompt: 'hi', max_tokens: 4 } }, a.key);
  assert.equal(job.status, 202);
  const done = await api.until(
    'job terminal',
    async () => {
      const view = (await api.request('GET', `/v1/jobs/${job.body.id}`, undefined, a.key)).body;
      return ['completed', 'failed', 'expired'].includes(view.status) ? view : undefined;
    },
    60_000,
  );
  assert.equal(done.status, 'completed', JSON.stringify(done));

  // The attack: from inside A's container, B's model server (and back).
  const probe = (from: string, address: string) =>
    execFileSync('docker', ['exec', from, '/bin/node', '-e', PROBE, '8000', address], { encoding: 'utf8' }).trim();
  assert.equal(probe(a.id, a.address), 'open', 'the probe works: a container opens its own server');
  assert.equal(
    probe(a.id, b.address),
    'closed',
    'A cannot open B’s model server (an engine run with --iptables=false routes between networks: see SECURITY.md)',
  );
  assert.equal(probe(b.id, a.address), 'closed', 'B cannot open A’s model server');

  // The container got its node's secret, and the model server refuses whoever does not present it.
  const env = (await docker.getContainer(b.id).inspect()).Config.Env;
  assert.ok(env.includes(`ZEROPOOL_NODE_TOKEN=${api.nodeSecrets.of(b.nodeId)}`), 'the node’s secret is in its environment');
  const models = (headers: Record<string, string>) => fetch(`http://${b.address}:8000/v1/models`, { headers }).then((r) => r.status);
  assert.equal(await models({}), 401, 'no secret: refused');
  assert.equal(await models({ authorization: `Bearer ${api.nodeSecrets.of(a.nodeId)}` }), 401, 'another node’s secret: refused');
  assert.equal(await models({ authorization: `Bearer ${api.nodeSecrets.of(b.nodeId)}` }), 200);

  // A's last container stops: its network goes with it; B's stays.
  assert.equal((await api.request('POST', `/v1/services/${a.name}/stop`, { drainTimeoutSeconds: 0 }, a.key)).status, 202);
  await api.until(
    'A’s network removed',
    async () => {
      const left = await docker.listNetworks({ filters: { name: [workspaceNetworkName(NETWORK, a.workspace)] } });
      return left.length === 0 ? true : undefined;
    },
    60_000,
  );
  assert.equal((await docker.listNetworks({ filters: { name: [workspaceNetworkName(NETWORK, b.workspace)] } })).length, 1);
});
