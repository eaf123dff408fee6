import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { InvalidRequestError } from '../../src/activities/providers/provider';
import { containerName, LABEL } from '../../src/activities/providers/docker';
import { ApiStack, poolBody, TEST_ADMIN_KEY } from '../helpers/api-stack';
import { busyboxImage, docker, mockNodeImage, recordedNvidiaSmi, removeTestContainers, missingDockerEngine } from '../helpers/docker';
import { asPoolKey } from '../../src/ids';

// GPUs are read from a real RTX 4080 SUPER's recorded nvidia-smi output: 16 376 MiB, 1 474 MiB used by others.
// With a 1 024 MiB reserve, 13 878 MiB are left for services: one 8 GiB service fits, two do not.
const HEADROOM_MIB = 16_376 - 1_024 - 1_474;
const PREFIX = 'dk-';

let stack: ApiStack | undefined;
let image = '';
let noEngine = '';

before(async () => {
  noEngine = (await missingDockerEngine()) ?? '';
  if (noEngine) return;
  await removeTestContainers(PREFIX);
  image = await mockNodeImage();
  stack = await new ApiStack({
    docker: { nvidiaSmiPath: recordedNvidiaSmi('query-gpu_1xRTX4080SUPER_allfields_csv.txt'), reserveMiB: 1_024 },
  }).start();
});
after(async () => {
  await stack?.stop();
  if (!noEngine) await removeTestContainers(PREFIX);
});

function service(name: string, vramGb: number, priority: number, extra: Record<string, unknown> = {}) {
  return {
    name,
    image,
    command: ['/bin/node', '/app/server.js'],
    env: { MOCK_PORT: '{port}', MOCK_COLD_START_MS: '300', MOCK_TOKENS_PER_SECOND: '100', MOCK_NODE_ID: name, MOCK_MODEL: name },
    vramGb,
    priority,
    slotsPerNode: 2,
    idleTimeoutSeconds: 600,
    drainTimeoutSeconds: 30,
    stopTimeoutSeconds: 2,
    ...extra,
  };
}

/** Our containers now, by pool key. */
async function containers() {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`] } });
  return list.filter((c) => (c.Labels[LABEL.pool] ?? '').startsWith(PREFIX));
}

/** Samples the VRAM promised to running containers every 100 ms: the largest sum seen. */
function vramSampler() {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const sum = (await containers()).reduce((total, c) => total + Number(c.Labels[LABEL.vramPerGpu] ?? 0), 0);
      peak = Math.max(peak, sum);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

const terminal = ['completed', 'failed', 'expired', 'cancelled'];
async function finished(id: string, timeoutMs = 90_000) {
  return stack!.until(
    `job ${id} terminal`,
    async () => {
      const res = await stack!.request('GET', `/v1/jobs/${id}`);
      return terminal.includes(res.body.status) ? res.body : undefined;
    },
    timeoutMs,
  );
}
async function submit(pool: string, maxTokens: number, priority = 3): Promise<string> {
  const res = await stack!.request('POST', '/v1/jobs', {
    pool,
    priority,
    payload: { messages: [{ role: 'user', content: 'hi' }], max_tokens: maxTokens },
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id;
}
const running = (id: string) =>
  stack!.until(
    `job ${id} running`,
    async () => ((await stack!.request('GET', `/v1/jobs/${id}`)).body.status === 'running' ? true : undefined),
    60_000,
  );

test('docker provider: a service runs its jobs in a labelled container on the admitted GPU; stop drains running jobs, or preempts them after the drain timeout', async (t) => {
  if (!stack) return t.skip(`no Docker engine: ${noEngine}`);
  const created = await stack.request('POST', '/v1/services', service(`${PREFIX}solo`, 8, 3));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal((await stack.request('POST', '/v1/services', service(`${PREFIX}solo`, 8, 3))).status, 409);
  assert.equal((await stack.request('POST', '/v1/services', { ...service(`${PREFIX}bad`, 8, 3), vramGb: -1 })).status, 400);

  const first = await finished(await submit(`${PREFIX}solo`, 20));
  assert.equal(first.status, 'completed', JSON.stringify(first));
  const [container] = await containers();
  assert.ok(container, 'the container exists');
  assert.equal(container.Names[0], `/${containerName(first.node_id)}`);
  assert.match(first.node_id, new RegExp(`^${PREFIX}solo-[0-9a-f]{8}-n1$`), 'the node id carries the pool’s incarnation');
  assert.deepEqual(
    [
      container.Labels[LABEL.pool],
      container.Labels[LABEL.service],
      container.Labels[LABEL.workspace],
      container.Labels[LABEL.gpus],
      container.Labels[LABEL.vramPerGpu],
    ],
    [`${PREFIX}solo`, `${PREFIX}solo`, 'default', '0', '8192'],
  );
  const inspected = await docker.getContainer(container.Id).inspect();
  assert.ok(inspected.Config.Env.includes('NVIDIA_VISIBLE_DEVICES=0'));
  // Least privilege, as the engine applied it: no capabilities, no privilege gain, bounded processes.
  assert.deepEqual(inspected.HostConfig.CapDrop, ['ALL']);
  assert.deepEqual(inspected.HostConfig.SecurityOpt, ['no-new-privileges:true']);
  assert.equal(inspected.HostConfig.PidsLimit, 4096);
  // Not root, and bounded memory and CPU (the definition's defaults: 32 GiB, 8 CPUs or all the host has).
  assert.equal(inspected.Config.User, '65534:65534');
  assert.ok(inspected.Config.Env.includes('HOME=/tmp'));
  assert.equal(inspected.HostConfig.Memory, 32 * 2 ** 30);
  assert.equal(inspected.HostConfig.NanoCpus, Math.min(8, (await docker.info()).NCPU) * 1e9, 'at most the host’s CPUs');
  // The attack as a test: the container's user cannot use a capability (chown needs CAP_CHOWN), and would not
  // as root either (no capabilities at all).
  const attempt = await docker.getContainer(container.Id).exec({
    Cmd: [
      '/bin/node',
      '-e',
      "try { require('fs').chownSync('/app', 65534, 65534); console.log('CHOWNED'); } catch (e) { console.log(e.code); }",
    ],
    AttachStdout: true,
    AttachStderr: true,
  });
  const output = await new Promise<string>((resolve, reject) => {
    attempt.start({ hijack: true, stdin: false }, (err, stream) => {
      if (err || !stream) return reject(err ?? new Error('no exec stream'));
      let text = '';
      stream.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
      });
      stream.on('end', () => resolve(text));
    });
  });
  assert.match(output, /EPERM/, `chown inside a service container: ${output}`);
  assert.doesNotMatch(output, /CHOWNED/);

  const vram = (await stack.request('GET', '/v1/vram')).body;
  assert.equal(vram.gpus[0].availableMiB, HEADROOM_MIB - 8_192);
  assert.deepEqual(
    vram.allocations.map((a: { service: string; declaredMiB: number; gpu: number }) => [a.service, a.declaredMiB, a.gpu]),
    [[`${PREFIX}solo`, 8_192, 0]],
  );
  const gpu = (await stack.request('GET', '/v1/gpu')).body;
  assert.deepEqual([gpu.available, gpu.gpus[0].name, gpu.gpus[0].memory.totalMiB], [true, 'NVIDIA GeForce RTX 4080 SUPER', 16_376]);
  // A workspace key sees the GPUs but not the host's processes (their pids and names are other tenants' business).
  const asTenant = (await stack.request('GET', '/v1/gpu', undefined, await stack.workspaceKey(`${PREFIX}viewer`))).body;
  assert.equal(asTenant.gpus[0].name, 'NVIDIA GeForce RTX 4080 SUPER');
  assert.deepEqual(asTenant.gpus[0].processes, []);
  assert.equal(asTenant.gpus[0].otherProcesses.count, gpu.gpus[0].processes.length);
  assert.equal((await stack.request('GET', `/v1/available/${PREFIX}solo`)).body.decision, 'use_local');
  const metrics = (await stack.request('GET', '/metrics')).body as string;
  assert.match(metrics, /zeropool_gpu_memory_mib\{gpu="0",name="NVIDIA GeForce RTX 4080 SUPER",kind="total"\} 16376/);
  assert.match(
    metrics,
    new RegExp(
      `zeropool_gpu_memory_mib\\{gpu="0",name="NVIDIA GeForce RTX 4080 SUPER",kind="available_for_services"\\} ${HEADROOM_MIB - 8_192}`,
    ),
  );
  assert.match(metrics, new RegExp(`zeropool_vram_allocated_mib\\{workspace="default",service="${PREFIX}solo",gpu="0"\\} 8192`));
  assert.match(metrics, /zeropool_gpu_utilization_percent\{gpu="0",name="NVIDIA GeForce RTX 4080 SUPER"\} 7/);

  // Stop with time to spare: the running job (2 s of tokens) finishes, then the container goes.
  const drained = await submit(`${PREFIX}solo`, 200);
  await running(drained);
  const stopAsked = Date.now();
  assert.equal((await stack.request('POST', `/v1/services/${PREFIX}solo/stop`, { drainTimeoutSeconds: 30 })).status, 202);
  await stack.until('container removed after the drain', async () => ((await containers()).length === 0 ? true : undefined), 60_000);
  const drainedJob = await finished(drained);
  assert.deepEqual([drainedJob.status, drainedJob.preemptions], ['completed', 0]);
  assert.ok(Date.parse(drainedJob.finished_at) >= stopAsked, 'the job was still running when the stop was asked');

  // Stop with a 1 s drain timeout on an 8 s job: the job is preempted (progress kept), the container goes,
  // and the job, still queued, starts the service again and completes from its snapshot.
  const forced = await submit(`${PREFIX}solo`, 800);
  await running(forced);
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal((await stack.request('POST', `/v1/services/${PREFIX}solo/stop`, { drainTimeoutSeconds: 1 })).status, 202);
  const forcedJob = await finished(forced);
  assert.deepEqual([forcedJob.status, forcedJob.preemptions], ['completed', 1], JSON.stringify(forcedJob));
  const names = (await containers()).map((c) => c.Names[0]);
  // n2 was started for the job and stopped under it; n3 served the resumed attempt.
  assert.deepEqual(names, [`/${containerName(first.node_id.replace(/-n1$/, '-n3'))}`], 'a new container served the resumed job');

  // Only registered services are driven.
  await assert.rejects(
    stack.local!.docker.provision({
      poolId: asPoolKey(`${PREFIX}unregistered`),
      nodeId: `${PREFIX}unregistered-n1`,
      model: 'x',
      lane: { provider: 'docker', market: 'on-demand', gpu: 'local', pricePerHour: 0 },
      laneIndex: 0,
    }),
    InvalidRequestError,
  );
  assert.equal((await stack.request('POST', `/v1/services/${PREFIX}solo/disable`)).status, 200);
  assert.equal(
    (await stack.request('POST', '/v1/jobs', { pool: `${PREFIX}solo`, payload: { prompt: 'hi' } })).status,
    409,
    'a disabled service refuses jobs',
  );
  await stack.until('disabled service drained', async () => ((await containers()).length === 0 ? true : undefined), 60_000);
  assert.equal((await stack.request('DELETE', `/v1/services/${PREFIX}solo`)).status, 204);
  assert.equal((await stack.request('GET', `/v1/services/${PREFIX}solo`)).status, 404);
});

test('docker stopped rung (real engine): an idle keepWhenIdle service stops its container and keeps it, VRAM freed; the next job starts the same container; a start whose GPU filled meanwhile removes it and a fresh container serves the job', async (t) => {
  if (!stack) return t.skip(`no Docker engine: ${noEngine}`);
  const kept = `${PREFIX}kept`;
  const other = `${PREFIX}other`;
  const ofPool = async (pool: string) => (await containers()).filter((c) => c.Labels[LABEL.pool] === pool);
  // A failure here must not leave a service holding the GPU for the tests after it.
  t.after(async () => {
    for (const name of [kept, other]) {
      await stack!.request('POST', `/v1/services/${name}/stop`, { drainTimeoutSeconds: 0 });
      await stack!
        .until(`${name} removed`, async () => ((await ofPool(name)).length === 0 ? true : undefined), 60_000)
        .catch(() => undefined);
      await stack!.request('DELETE', `/v1/services/${name}`);
    }
  });
  const stoppedContainer = (pool: string) =>
    stack!.until(
      `${pool}: its container stopped and kept`,
      async () => {
        const [c] = await ofPool(pool);
        const view = (await stack!.request('GET', `/v1/pools/${pool}`)).body;
        return c?.State === 'exited' && view.nodes?.[0]?.state === 'stopped' ? c : undefined;
      },
      60_000,
    );
  assert.equal(
    (await stack.request('POST', '/v1/services', service(kept, 8, 3, { keepWhenIdle: true, idleTimeoutSeconds: 1 }))).status,
    201,
  );

  const first = await finished(await submit(kept, 5));
  assert.equal(first.status, 'completed', JSON.stringify(first));
  const container = await stoppedContainer(kept);
  assert.equal(container.Names[0], `/${containerName(first.node_id)}`);
  const vram = (await stack.request('GET', '/v1/vram')).body;
  assert.equal(vram.gpus[0].availableMiB, HEADROOM_MIB, 'a stopped container holds no VRAM');

  // Woken by work: the same container, started again.
  const second = await finished(await submit(kept, 5));
  assert.deepEqual([second.status, second.node_id], ['completed', first.node_id], JSON.stringify(second));
  assert.equal((await stoppedContainer(kept)).Id, container.Id, 'the kept container was started, not created anew');

  // Another service takes the GPU while the container is stopped: its start would oversubscribe, so it is
  // refused, the stopped container is removed, and the job waits for room on a fresh one.
  assert.equal((await stack.request('POST', '/v1/services', service(other, 8, 3))).status, 201);
  assert.equal((await finished(await submit(other, 5))).status, 'completed');
  const waiting = await submit(kept, 5);
  await stack.until('the stopped container removed after its start was refused', async () =>
    (await ofPool(kept)).some((c) => c.Id === container.Id) ? undefined : true,
  );
  const waitingStatus = (await stack.request('GET', `/v1/jobs/${waiting}`)).body.status;
  assert.ok(['queued', 'provisioning'].includes(waitingStatus), `no VRAM for it yet: ${waitingStatus}`);
  const peakSampler = vramSampler();
  assert.equal((await stack.request('POST', `/v1/services/${other}/stop`, { drainTimeoutSeconds: 0 })).status, 202);
  const woken = await finished(waiting);
  assert.ok((await peakSampler.stop()) <= HEADROOM_MIB, 'never more VRAM promised than the GPU has');
  assert.equal(woken.status, 'completed', JSON.stringify(woken));
  assert.notEqual(woken.node_id, first.node_id, 'a fresh container served it');

  assert.equal((await stack.request('POST', `/v1/services/${kept}/stop`, { drainTimeoutSeconds: 0 })).status, 202);
  const rows = await stack.closedLedger(kept);
  const byType = (type: string) => rows.filter((r) => r.event_type === type && r.node_id === first.node_id);
  assert.equal(byType('node_stopped').length, 2);
  assert.equal(byType('node_started').length, 1);
  const [ended] = byType('node_terminated');
  assert.match(String(ended?.details.reason), /wake failed: .*no VRAM/);
});

test('VRAM admission: a higher-priority service stops an idle lower-priority one to make room; a lower-priority job waits; the GPU is never oversubscribed', async (t) => {
  if (!stack) return t.skip(`no Docker engine: ${noEngine}`);
  for (const body of [service(`${PREFIX}bulk`, 8, 5), service(`${PREFIX}chat`, 8, 1)]) {
    assert.equal((await stack.request('POST', '/v1/services', body)).status, 201);
  }
  const sampler = vramSampler();
  try {
    assert.equal((await stack.request('POST', `/v1/services/${PREFIX}bulk/start`)).status, 200);
    await stack.until('bulk container ready', async () => {
      const s = (await stack!.request('GET', `/v1/services/${PREFIX}bulk`)).body;
      return s.containers.some((c: { state: string }) => c.state === 'ready') ? true : undefined;
    });
    const hint = (await stack.request('GET', `/v1/available/${PREFIX}chat`)).body;
    assert.equal(hint.decision, 'use_local', JSON.stringify(hint));
    assert.ok(
      hint.reasons.some((r: string) => /local GPUs have no room/.test(r)),
      JSON.stringify(hint),
    );
    assert.ok(
      hint.reasons.some((r: string) => r.includes(`stopping idle lower-priority service(s) ${PREFIX}bulk makes room`)),
      JSON.stringify(hint),
    );

    // Priority 1 over an idle priority 5: bulk is stopped, chat starts and runs the job.
    const chatJob = await finished(await submit(`${PREFIX}chat`, 20));
    assert.equal(chatJob.status, 'completed');
    assert.deepEqual(
      (await containers()).map((c) => c.Labels[LABEL.pool]),
      [`${PREFIX}chat`],
    );

    // Priority 5 while chat (priority 1) sits idle: nothing is stopped; the job waits.
    const bulkJob = await submit(`${PREFIX}bulk`, 20);
    await new Promise((r) => setTimeout(r, 4_000));
    const waiting = (await stack.request('GET', `/v1/jobs/${bulkJob}`)).body.status;
    assert.ok(['queued', 'provisioning'].includes(waiting), `the job waits for capacity (${waiting})`);
    assert.deepEqual(
      (await containers()).map((c) => c.Labels[LABEL.pool]),
      [`${PREFIX}chat`],
    );
    assert.equal((await stack.request('GET', `/v1/available/${PREFIX}bulk`)).body.decision, 'queue');

    // Once chat stops, the waiting job gets the room.
    assert.equal((await stack.request('POST', `/v1/services/${PREFIX}chat/stop`)).status, 202);
    assert.equal((await finished(bulkJob)).status, 'completed');

    // A service with a cloud lane goes there when the local GPU is full (bulk holds it and outranks it).
    const cloudLanes = [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.1 }];
    assert.equal((await stack.request('POST', '/v1/services', service(`${PREFIX}spill`, 8, 5, { cloudLanes }))).status, 201);
    const spillHint = (await stack.request('GET', `/v1/available/${PREFIX}spill`)).body;
    assert.equal(spillHint.decision, 'use_cloud', JSON.stringify(spillHint));
    assert.equal((await finished(await submit(`${PREFIX}spill`, 20))).status, 'completed');
    const spill = (await stack.request('GET', `/v1/pools/${PREFIX}spill`)).body;
    assert.deepEqual(
      spill.nodes.map((n: { lane: { provider: string } }) => n.lane.provider),
      ['mock'],
      'the job ran on the cloud lane',
    );
    assert.ok(!(await containers()).some((c) => c.Labels[LABEL.pool] === `${PREFIX}spill`), 'no local container was made for it');
  } finally {
    const peak = await sampler.stop();
    assert.ok(peak > 0 && peak <= HEADROOM_MIB, `peak VRAM promised ${peak} MiB within ${HEADROOM_MIB}`);
  }
});

test('docker provider: start-up removes labelled containers of no service and leaves others alone; adoption by name starts and stops, never removes', async (t) => {
  if (!stack) return t.skip(`no Docker engine: ${noEngine}`);
  const busybox = await busyboxImage();
  const orphan = await docker.createContainer({
    Image: busybox,
    name: `zeropool-${PREFIX}ghost-n1`,
    Cmd: ['/bin/sleep', '600'],
    Labels: { [LABEL.managed]: 'true', [LABEL.pool]: `${PREFIX}ghost`, [LABEL.node]: `${PREFIX}ghost-n1` },
    HostConfig: { NetworkMode: 'host' },
  });
  await orphan.start();
  const port = 18_000 + Math.floor(Math.random() * 1_000);
  const bystander = await docker.createContainer({
    Image: busybox,
    name: `${PREFIX}adopt-me`,
    Cmd: ['/bin/busybox', 'httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'],
    HostConfig: { NetworkMode: 'host' },
  });
  try {
    const removed = await stack.local!.docker.removeOrphans();
    assert.deepEqual(removed, [`zeropool-${PREFIX}ghost-n1`]);
    await assert.rejects(orphan.inspect(), /no such container/i);
    assert.equal((await bystander.inspect()).State.Status, 'created', 'a container that is not ours is left alone');

    const adoptBody = {
      ...service(`${PREFIX}adopted`, 0, 3),
      image: busybox,
      adoptContainer: `${PREFIX}adopt-me`,
      port,
      command: undefined,
      env: undefined,
    };
    const tenant = await stack.workspaceKey(`${PREFIX}tenant`);
    assert.equal(
      (await stack.request('POST', '/v1/services', adoptBody, tenant)).status,
      403,
      'only the admin may hand a host container to a service',
    );
    // Nor run its image as root.
    const asRoot = await stack.request('POST', '/v1/services', service(`${PREFIX}rooted`, 0, 3, { runAsRoot: true }), tenant);
    assert.equal(asRoot.status, 403);
    assert.match(asRoot.body.error.message, /runAsRoot needs the admin key/);
    // A tenant cannot claim priority 1 (reserved by its workspace's floor): it could stop others' idle services.
    const urgent = await stack.request('POST', '/v1/services', service(`${PREFIX}urgent`, 0, 1), tenant);
    assert.equal(urgent.status, 403);
    assert.equal(urgent.body.error.code, 'quota_exceeded');
    assert.equal((await stack.request('GET', `/v1/services/${PREFIX}urgent`, undefined, tenant)).status, 404, 'nothing was created');
    const adopted = await stack.request('POST', '/v1/services', adoptBody);
    assert.equal(adopted.status, 201, JSON.stringify(adopted.body));
    assert.equal((await stack.request('POST', `/v1/services/${PREFIX}adopted/start`)).status, 200);
    await stack.until('adopted container ready', async () => {
      const s = (await stack!.request('GET', `/v1/services/${PREFIX}adopted`)).body;
      return s.containers.some((c: { state: string }) => c.state === 'ready') ? true : undefined;
    });
    assert.equal((await bystander.inspect()).State.Running, true);
    assert.equal((await stack.request('POST', `/v1/services/${PREFIX}adopted/stop`, { drainTimeoutSeconds: 0 })).status, 202);
    await stack.until('adopted container stopped', async () => ((await bystander.inspect()).State.Running ? undefined : true), 30_000);
    assert.equal((await bystander.inspect()).Name, `/${PREFIX}adopt-me`, 'stopped, not removed');
  } finally {
    await bystander.remove({ force: true }).catch(() => undefined);
  }
});

/** Runs the real `zeropool` command against the test stack. */
function cli(args: string[], key: string = TEST_ADMIN_KEY): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(__dirname, '..', '..', 'bin', 'zeropool.js'), ...args],
      { env: { ...process.env, ZEROPOOL_URL: stack!.baseUrl, ZEROPOOL_KEY: key } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('the zeropool CLI against a running stack: register, services, start, submit --wait, job, cancel, gpu, vram, pools, status, stop; errors and usage', async (t) => {
  if (!stack) return t.skip(`no Docker engine: ${noEngine}`);
  const name = `${PREFIX}cli`;
  const registered = await cli([
    'register',
    name,
    '--image',
    image,
    '--vram-gb',
    '2',
    '--priority',
    '2',
    '--cmd',
    '/bin/node',
    '--cmd',
    '/app/server.js',
    '--env',
    'MOCK_PORT={port}',
    '--env',
    'MOCK_COLD_START_MS=200',
    '--json',
  ]);
  assert.equal(registered.code, 0, registered.stderr);
  assert.deepEqual([JSON.parse(registered.stdout).name, JSON.parse(registered.stdout).definition.vramGb], [name, 2]);
  assert.match((await cli(['services'])).stdout, new RegExp(`^${name}\\s+yes\\s+\\S+\\s+0\\s+2 GB\\s+2`, 'm'));
  assert.match((await cli(['start', name])).stdout, new RegExp(`^${name}: starting`));

  const submitted = await cli(['submit', name, '--prompt', 'hello', '--max-tokens', '5', '--wait', '--json']);
  assert.equal(submitted.code, 0, submitted.stderr);
  const job = JSON.parse(submitted.stdout);
  assert.deepEqual([job.status, job.tokens.completion], ['completed', 5]);
  assert.match((await cli(['job', job.id])).stdout, new RegExp(`^${job.id}  completed  pool ${name}`));
  const cancel = await cli(['cancel', job.id]);
  assert.deepEqual([cancel.code, /409/.test(cancel.stderr)], [1, true], cancel.stderr);

  assert.match((await cli(['gpu'])).stdout, /0\s+NVIDIA GeForce RTX 4080 SUPER\s+7%\s+1\.4 GiB\s+16\.0 GiB/);
  const vram = JSON.parse((await cli(['vram', '--json'])).stdout);
  assert.deepEqual(
    vram.allocations.filter((a: { service: string }) => a.service === name).map((a: { declaredMiB: number }) => a.declaredMiB),
    [2_048],
  );
  assert.match((await cli(['vram'])).stdout, /available for a new service: /);
  assert.match((await cli(['pools'])).stdout, new RegExp(`^${name}\\s+${name}\\s+\\S+\\s+1\\s+0\\s+0`, 'm'));
  const status = JSON.parse((await cli(['status', '--json'])).stdout);
  assert.deepEqual([status.api, status.gpu.available, status.services >= 1], ['ok', true, true]);

  assert.match((await cli(['stop', name, '--drain-timeout', '0'])).stdout, new RegExp(`^${name}: stopping`));
  await stack.until(
    'cli service stopped',
    async () => ((await containers()).some((c) => c.Labels[LABEL.pool] === name) ? undefined : true),
    30_000,
  );

  const denied = await cli(['status'], 'zp_wrong_key_000000000000000000000');
  assert.deepEqual([denied.code, /401/.test(denied.stderr)], [1, true], denied.stderr);
  const usage = await cli(['submit']);
  assert.deepEqual([usage.code, /missing pool name/.test(usage.stderr)], [2, true], usage.stderr);
  const badNumber = await cli(['register', 'x', '--image', 'y', '--vram-gb', 'lots']);
  assert.deepEqual([badNumber.code, /--vram-gb must be a number/.test(badNumber.stderr)], [2, true]);
});

test('VRAM quota: a tenant’s services claim at most maxVramGb together (vramGb × maxNodes); neither the service’s nor its pool’s PATCH goes around it; an image the engine lacks, or a docker lane on a plain pool, is a 400', async (t) => {
  if (!stack) return t.skip(`no Docker engine: ${noEngine}`);
  const tenant = await stack.workspaceKey(`${PREFIX}vram`);
  // An image the engine does not have is a 400 at registration, not a pool that never starts.
  const typo = await stack.request(
    'POST',
    '/v1/services',
    { ...service(`${PREFIX}typo`, 1, 3), image: 'zeropool-test/no-such-image:1' },
    tenant,
  );
  assert.equal(typo.status, 400, JSON.stringify(typo.body));
  assert.equal(typo.body.error.code, 'image_not_found');
  assert.match(typo.body.error.message, /is not on this host: pull or build it first/);
  assert.equal((await stack.request('GET', `/v1/services/${PREFIX}typo`, undefined, tenant)).status, 404);
  // The engine would also take an image id's prefix (the fuzzer's "0" hit one) and start an image with no
  // command that exits at once: both are refused by name at registration.
  const busybox = await busyboxImage();
  const idPrefix = (await docker.getImage(busybox).inspect()).Id.replace('sha256:', '').slice(0, 12);
  const byId = await stack.request('POST', '/v1/services', { ...service(`${PREFIX}byid`, 1, 3), image: idPrefix }, tenant);
  assert.equal(byId.status, 400, JSON.stringify(byId.body));
  assert.match(byId.body.error.message, /not on this host by that name/);
  const noCommand = await stack.request(
    'POST',
    '/v1/services',
    { ...service(`${PREFIX}nocmd`, 1, 3), image: busybox, command: undefined },
    tenant,
  );
  assert.equal(noCommand.status, 400, JSON.stringify(noCommand.body));
  assert.match(noCommand.body.error.message, /has no command of its own/);
  // A plain pool cannot have a docker lane (no container definition: its requests would wait for nothing).
  const dockerPool = await stack.request(
    'POST',
    '/v1/pools',
    poolBody(`${PREFIX}plain`, { lanes: [{ provider: 'docker', market: 'on-demand', gpu: 'local', pricePerHour: 0 }] }),
    tenant,
  );
  assert.equal(dockerPool.status, 400, JSON.stringify(dockerPool.body));
  assert.match(dockerPool.body.error.message, /docker lane belongs to local services/);
  assert.equal((await stack.request('PATCH', `/v1/workspaces/${PREFIX}vram`, { maxVramGb: 8 })).body.maxVramGb, 8);
  assert.equal((await stack.request('POST', '/v1/services', service(`${PREFIX}v1`, 4, 3, { maxNodes: 1 }), tenant)).status, 201);
  const over = await stack.request('POST', '/v1/services', service(`${PREFIX}v2`, 4, 3, { maxNodes: 2 }), tenant);
  assert.equal(over.status, 403);
  assert.equal(over.body.error.code, 'quota_exceeded');
  assert.match(over.body.error.message, /may claim 8 GB of VRAM together \(vramGb × maxNodes\); they claim 4 and this adds 8/);
  assert.equal((await stack.request('GET', `/v1/services/${PREFIX}v2`, undefined, tenant)).status, 404, 'nothing was created');
  assert.equal((await stack.request('GET', `/v1/pools/${PREFIX}v2`, undefined, tenant)).status, 404, 'nor its pool');
  assert.equal((await stack.request('POST', '/v1/services', service(`${PREFIX}v2`, 4, 3, { maxNodes: 1 }), tenant)).status, 201);
  // At the quota now: more containers through the pool route, or more VRAM each, are refused; less is fine.
  const viaPool = await stack.request('PATCH', `/v1/pools/${PREFIX}v1`, { maxNodes: 2 }, tenant);
  assert.equal(viaPool.status, 403, JSON.stringify(viaPool.body));
  const bigger = await stack.request('PATCH', `/v1/services/${PREFIX}v1`, { vramGb: 5 }, tenant);
  assert.equal(bigger.status, 403, JSON.stringify(bigger.body));
  assert.equal((await stack.request('PATCH', `/v1/services/${PREFIX}v1`, { vramGb: 2 }, tenant)).status, 200);
  assert.equal((await stack.request('PATCH', `/v1/pools/${PREFIX}v1`, { maxNodes: 2 }, tenant)).status, 200, '2 × 2 GB + 4 GB fits in 8');
  // The admin lifts it (null: unlimited).
  assert.equal((await stack.request('PATCH', `/v1/workspaces/${PREFIX}vram`, { maxVramGb: null })).body.maxVramGb, null);
  assert.equal((await stack.request('PATCH', `/v1/services/${PREFIX}v1`, { vramGb: 40 }, tenant)).status, 200);
});
