/**
 * The docker provider's default network (a real engine): a service container lives on zeropool's own internal
 * bridge network. The worker reaches it there and a job completes; from inside it, the host's loopback
 * services (the embedded PostgreSQL, the Temporal dev server, the API) cannot be opened. The same probe from
 * a host-network container opens them: the attack that the isolated network stops.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
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
  await docker
    .getNetwork(NETWORK)
    .remove()
    .catch(() => undefined);
});

/** Tries a TCP connection to 127.0.0.1:port from inside a container: 'open' or 'closed'. */
const PROBE = `const s = require('net').connect(Number(process.argv[1]), '127.0.0.1');
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
  assert.equal(info.HostConfig.NetworkMode, NETWORK);
  assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
  assert.equal((await docker.getNetwork(NETWORK).inspect()).Internal, true, 'an internal network');
  const pool = (await stack.request('GET', `/v1/services/${name}`)).body;
  assert.match(JSON.stringify(pool), new RegExp(`http://${info.NetworkSettings.Networks[NETWORK].IPAddress.replaceAll('.', '\\.')}:8000`));

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
