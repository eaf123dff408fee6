/**
 * Scale-out: jobs per second with 1, 2 and 4 worker processes (`src/worker-main.ts`, as deployed) sharing one
 * task queue on the same Temporal server, for jobs spread over BENCH_POOLS pools and for one pool alone.
 * Each configuration gets a fresh stack (dev server on SQLite, embedded PostgreSQL, the API in this process).
 * `npm run bench:scale-out` (BENCH_JOBS per run, BENCH_CONCURRENCY clients in a closed loop, BENCH_WORKERS
 * e.g. "1,2,4", BENCH_POOLS). Each client submits a job and waits for it to finish.
 *
 * What bounds one pool: its workflow runs one workflow task at a time, whatever the number of workers. The
 * workers' Temporal SDK metrics give the pool workflow's task count and execution time per job, hence the
 * most jobs per second one pool workflow can take on this machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createApp } from '../src/api/app';
import { loadConfig } from '../src/config';
import { apiContext, apiOptions, connectTemporal, openDatabase } from '../src/runtime';
import { freePort } from '../src/stack/free-port';
import { startEmbeddedPostgres } from '../src/stack/postgres';
import { ensureTemporalBinary } from '../src/stack/temporal-binaries';
import { startDevServer } from '../src/stack/temporal-dev';

const JOBS = Number(process.env.BENCH_JOBS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const WORKERS = (process.env.BENCH_WORKERS ?? '1,2,4').split(',').map(Number);
const POOLS = Number(process.env.BENCH_POOLS ?? 4);
const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';
const NODE_SECRET_KEY = 'bench-node-secret-key-0123456789abcdef';

interface RunResult {
  workers: number;
  pools: number;
  jobs: number;
  jobsPerSecond: number;
  /** The pool workflows' workflow tasks per job and mean execution time of one, from the SDK's metrics. */
  poolTasksPerJob: number;
  poolTaskMs: number;
}

/** Sums a histogram's _sum and _count for one workflow type over several Prometheus texts. */
function histogramTotals(texts: string[], metric: string, workflowType: string): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line.includes(`workflow_type="${workflowType}"`)) continue;
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.startsWith(`${metric}_sum{`)) sum += value;
      else if (line.startsWith(`${metric}_count{`)) count += value;
    }
  }
  return { sum, count };
}

async function run(workerCount: number, poolCount: number): Promise<RunResult> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-scale-'));
  chmodSync(dataDir, 0o755);
  const env = {
    ...process.env,
    ZEROPOOL_DATA_DIR: dataDir,
    ZEROPOOL_API_KEY: ADMIN_KEY,
    ZEROPOOL_NODE_SECRET_KEY: NODE_SECRET_KEY,
    MOCK_COLD_START_SECONDS: '1',
    MOCK_TOKENS_PER_SECOND: '1000',
    TEMPORAL_TASK_QUEUE: 'bench',
    LOG_LEVEL: 'error',
  };
  const config = loadConfig(env);
  const pg = await startEmbeddedPostgres(dataDir, await freePort());
  const db = await openDatabase(pg.url, pg.ownerUrl);
  const cli = ensureTemporalBinary('cli');
  if (!cli) throw new Error('no temporal CLI');
  const dev = await startDevServer({ cliPath: cli, dataDir, port: await freePort(), uiPort: await freePort() });
  const temporal = await connectTemporal(dev.address, 'default');
  const metricsPorts = await Promise.all(Array.from({ length: workerCount }, () => freePort()));
  const workers: ChildProcess[] = metricsPorts.map((port) =>
    spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'src', 'worker-main.ts')], {
      env: { ...env, TEMPORAL_ADDRESS: dev.address, DATABASE_URL: pg.url, METRICS_PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  const app = createApp(
    { ...apiContext(config, db, temporal), taskQueue: 'bench' },
    { ...apiOptions(config, ADMIN_KEY, ['mock'], undefined) },
  );
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = (method: string, url: string, body?: unknown) =>
    fetch(`${base}${url}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then((r) => r.json() as Promise<any>);
  const scrape = () => Promise.all(metricsPorts.map((p) => fetch(`http://127.0.0.1:${p}/metrics`).then((r) => r.text())));
  try {
    await call('PATCH', '/v1/workspaces/default', { maxJobsInFlight: 100_000 });
    const pools = Array.from({ length: poolCount }, (_, i) => `scale-${i}`);
    for (const id of pools)
      await call('POST', '/v1/pools', {
        id,
        model: `model-${id}`,
        minNodes: 1,
        maxNodes: 1,
        slotsPerNode: 64,
        idleTimeoutSeconds: 3600,
        lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1 }],
      });
    for (const id of pools) {
      for (;;) {
        const pool = await call('GET', `/v1/pools/${id}`);
        if (pool.nodes?.length === 1 && pool.nodes[0].state === 'ready') break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const payload = { prompt: 'bench', max_tokens: 1 };
    const finished = async (id: string) => {
      for (;;) {
        const { rows } = await db.query('SELECT view FROM jobs WHERE id = $1 AND finished_at IS NOT NULL', [id]);
        if (rows[0]) {
          if (rows[0].view.status !== 'completed') throw new Error(`job ${id} ${rows[0].view.status}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    const closedLoop = async (jobs: number) => {
      let next = 0;
      const started = Date.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < jobs) {
            const pool = pools[next % pools.length];
            next += 1;
            const { id } = await call('POST', '/v1/jobs', { pool, payload });
            await finished(id);
          }
        }),
      );
      return (Date.now() - started) / 1000;
    };
    await closedLoop(40); // warm-up: JIT, connections, workflow caches
    const before = histogramTotals(await scrape(), 'temporal_workflow_task_execution_latency', 'poolWorkflowV2');
    const seconds = await closedLoop(JOBS);
    const after = histogramTotals(await scrape(), 'temporal_workflow_task_execution_latency', 'poolWorkflowV2');
    const tasks = after.count - before.count;
    return {
      workers: workerCount,
      pools: poolCount,
      jobs: JOBS,
      jobsPerSecond: Number((JOBS / seconds).toFixed(1)),
      poolTasksPerJob: Number((tasks / JOBS).toFixed(2)),
      poolTaskMs: Number((((after.sum - before.sum) / Math.max(1, tasks)) * 1000).toFixed(2)),
    };
  } finally {
    server.closeAllConnections();
    server.close();
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.exitCode !== null) return resolve();
            w.once('exit', () => resolve());
            w.kill('SIGTERM');
          }),
      ),
    );
    await temporal.connection.close();
    await dev.stop();
    await db.end();
    await pg.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const results: RunResult[] = [];
  for (const workers of WORKERS) {
    for (const pools of [...new Set([POOLS, 1])]) {
      const result = await run(workers, pools);
      process.stderr.write(`${JSON.stringify(result)}\n`);
      results.push(result);
    }
  }
  const onePool = results.filter((r) => r.pools === 1);
  const ceiling = onePool.map((r) => 1000 / (r.poolTasksPerJob * r.poolTaskMs));
  process.stdout.write(
    `${JSON.stringify(
      {
        machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model}`,
        clients: CONCURRENCY,
        results,
        onePoolWorkflowCeilingJobsPerSecond: ceiling.map((c) => Number(c.toFixed(0))),
      },
      null,
      2,
    )}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
