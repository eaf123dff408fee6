/**
 * Warm-pool benchmark: submit→running latency (p50/p99 over 500 jobs) and sustained jobs per second.
 * Starts its own stack (Temporal dev server, embedded PostgreSQL, worker, API) in a temp folder, warms a
 * pool, then measures over HTTP like a client would. `npm run bench` (BENCH_JOBS, BENCH_RATE, BENCH_CONCURRENCY;
 * BENCH_EAGER=0 starts job workflows without eager start, BENCH_TRACE=1 prints one job's history with times).
 *
 * submit→running = the node receiving the request (worker clock, same machine) minus the moment the
 * client began its POST /v1/jobs.
 */
import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createApp } from '../src/api/app';

const BENCH_ADMIN_KEY = 'bench-admin-key-0123456789abcdef';
import { loadConfig } from '../src/config';
import { apiContext, connectTemporal, openDatabase } from '../src/runtime';
import { freePort, startEmbeddedPostgres } from '../src/stack/postgres';
import { ensureTemporalBinary } from '../src/stack/temporal-binaries';
import { startDevServer } from '../src/stack/temporal-dev';
import { createProviders, createWorker, nodeSecretsFor } from '../src/worker';

const JOBS = Number(process.env.BENCH_JOBS ?? 500);
const RATE = Number(process.env.BENCH_RATE ?? 20);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-bench-'));
  chmodSync(dataDir, 0o755);
  const config = loadConfig({ ...process.env, ZEROPOOL_DATA_DIR: dataDir, MOCK_COLD_START_SECONDS: '1', MOCK_TOKENS_PER_SECOND: '1000' });
  const pg = await startEmbeddedPostgres(dataDir, await freePort());
  const db = await openDatabase(pg.url);
  const cli = ensureTemporalBinary('cli');
  if (!cli) throw new Error('no temporal CLI');
  const temporalPort = await freePort();
  const dev = await startDevServer({
    cliPath: cli,
    dataDir,
    port: temporalPort,
    uiPort: await freePort(),
    inMemory: process.env.BENCH_IN_MEMORY === '1',
  });
  const temporal = await connectTemporal(dev.address, 'default');
  const providers = createProviders(config);
  const worker = await createWorker({
    connection: temporal.nativeConnection,
    namespace: 'default',
    taskQueue: 'bench',
    db,
    providers,
    nodeSecrets: nodeSecretsFor(config),
  });
  const workerDone = worker.run();
  const app = createApp(
    {
      ...apiContext(config, db, temporal),
      taskQueue: 'bench',
      defaultTtlSeconds: 600,
      ...(process.env.BENCH_EAGER === '0'
        ? {}
        : { eagerClient: new Client({ connection: temporal.nativeConnection, namespace: 'default' }) }),
    },
    { apiKey: BENCH_ADMIN_KEY, bodyLimit: '1mb', providers: ['mock'] },
  );
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  // Load runs with a workspace key, as a tenant's client would (key lookup and in-flight accounting included).
  const call = (key: string, method: string, url: string, body?: unknown) =>
    fetch(`${base}${url}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then((r) => r.json() as Promise<any>);
  await call(BENCH_ADMIN_KEY, 'POST', '/v1/workspaces', { id: 'bench', maxJobsInFlight: 100_000 });
  const workspaceKey: string = (await call(BENCH_ADMIN_KEY, 'POST', '/v1/workspaces/bench/keys', { label: 'bench' })).key;
  const post = (url: string, body: unknown) => call(workspaceKey, 'POST', url, body);
  const get = (url: string) => call(workspaceKey, 'GET', url);

  await post('/v1/pools', {
    id: 'bench',
    model: 'bench-model',
    minNodes: 2,
    maxNodes: 2,
    slotsPerNode: 64,
    idleTimeoutSeconds: 3600,
    lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1 }],
  });
  for (;;) {
    const pool = await get('/v1/pools/bench');
    if (pool.nodes?.length === 2 && pool.nodes.every((n: { state: string }) => n.state === 'ready')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const payload = { prompt: 'bench', max_tokens: 1 };

  // Outcomes are read from PostgreSQL in batches rather than by polling the API, so that measuring
  // does not load the two cores the system under test runs on.
  async function waitAll(ids: Array<{ id: string; sentAt: number }>) {
    const sentAt = new Map(ids.map((i) => [i.id, i.sentAt]));
    const out: Array<{ latency: number; finishedAt: number }> = [];
    let pending = ids.map((i) => i.id);
    while (pending.length > 0) {
      const { rows } = await db.query('SELECT id, view FROM jobs WHERE id = ANY($1) AND finished_at IS NOT NULL', [pending]);
      for (const row of rows) {
        if (row.view.status !== 'completed') throw new Error(`job ${row.id} ${row.view.status}: ${row.view.error}`);
        out.push({ latency: row.view.startedAt - sentAt.get(row.id)!, finishedAt: row.view.finishedAt });
      }
      const done = new Set(rows.map((r) => r.id as string));
      pending = pending.filter((id) => !done.has(id));
      if (pending.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    return out;
  }

  // Warm-up: JIT, connection pools, workflow cache.
  await waitAll(
    await Promise.all(
      Array.from({ length: 20 }, async () => ({ sentAt: Date.now(), id: (await post('/v1/jobs', { pool: 'bench', payload })).id })),
    ),
  );

  // 1. Latency: open loop at RATE jobs/s.
  const sent: Array<Promise<{ id: string; sentAt: number }>> = [];
  const started = Date.now();
  for (let i = 0; i < JOBS; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sentAt = Date.now();
    sent.push(post('/v1/jobs', { pool: 'bench', payload }).then((r) => ({ id: r.id, sentAt })));
  }
  const sentJobs = await Promise.all(sent);
  const latencies = (await waitAll(sentJobs)).map((r) => r.latency);
  if (process.env.BENCH_TRACE === '1') {
    // Where one job's time goes: its history's event times relative to the POST.
    const { id, sentAt } = sentJobs[Math.floor(sentJobs.length / 2)];
    const history = await temporal.client.workflow.getHandle(`job:${id}`).fetchHistory();
    for (const event of history.events ?? []) {
      const t = Number(event.eventTime!.seconds) * 1000 + Math.round((event.eventTime!.nanos ?? 0) / 1e6);
      process.stdout.write(`job +${t - sentAt} ms  ${event.eventType}\n`);
    }
  }

  // 2. Throughput: CONCURRENCY clients in a closed loop, each submitting and waiting for its job to start.
  let next = 0;
  const thrStart = Date.now();
  const results: Array<{ latency: number; finishedAt: number }> = [];
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < JOBS) {
        next += 1;
        const sentAt = Date.now();
        const { id } = await post('/v1/jobs', { pool: 'bench', payload });
        results.push(...(await waitAll([{ id, sentAt }])));
      }
    }),
  );
  const lastFinish = Math.max(...results.map((r) => r.finishedAt));
  const jobsPerSecond = results.length / ((lastFinish - thrStart) / 1000);

  const report = {
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model}`,
    jobs: JOBS,
    openLoopRatePerSecond: RATE,
    submitToRunningMs: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: Math.max(...latencies),
    },
    closedLoop: {
      clients: CONCURRENCY,
      jobs: results.length,
      jobsPerSecond: Number(jobsPerSecond.toFixed(1)),
      submitToRunningP50Ms: percentile(
        results.map((r) => r.latency),
        50,
      ),
    },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);

  server.close();
  worker.shutdown();
  await workerDone;
  await providers.mock.terminateAll();
  await temporal.connection.close();
  await dev.stop();
  await db.end();
  await pg.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
