/**
 * The whole system in one process for benchmarks: Temporal dev server, embedded PostgreSQL, a worker and the
 * API, in a temp folder, with one workspace and its key. Mock nodes per the given cold start and speed.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Pool as Db } from 'pg';
import { createApp } from '../src/api/app';
import { loadConfig } from '../src/config';
import { apiContext, apiOptions, connectTemporal, openDatabase, type TemporalHandles } from '../src/runtime';
import { freePort } from '../src/stack/free-port';
import { startEmbeddedPostgres } from '../src/stack/postgres';
import { ensureTemporalBinary } from '../src/stack/temporal-binaries';
import { startDevServer } from '../src/stack/temporal-dev';
import { createProviders, createWorker, nodeSecretsFor } from '../src/worker';

export const BENCH_ADMIN_KEY = 'bench-admin-key-0123456789abcdef';

export interface BenchStack {
  base: string;
  workspaceKey: string;
  db: Db;
  temporal: TemporalHandles;
  /** Every request the API answered, by status (counted at the HTTP server, so nothing is missed). */
  served: { total: number; byStatus: Record<number, number> };
  /** The nodes' bearer secrets (to call a node directly). */
  nodeToken(nodeId: string): string;
  call(method: string, url: string, body?: unknown): Promise<any>;
  stop(): Promise<void>;
}

export async function startBenchStack(options: {
  coldStartSeconds: number;
  tokensPerSecond: number;
  eager?: boolean;
}): Promise<BenchStack> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-bench-'));
  chmodSync(dataDir, 0o755);
  const config = loadConfig({
    ...process.env,
    ZEROPOOL_DATA_DIR: dataDir,
    ZEROPOOL_API_KEY: BENCH_ADMIN_KEY,
    MOCK_COLD_START_SECONDS: String(options.coldStartSeconds),
    MOCK_TOKENS_PER_SECOND: String(options.tokensPerSecond),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  const pg = await startEmbeddedPostgres(dataDir, await freePort());
  const db = await openDatabase(pg.url, pg.ownerUrl);
  const cli = ensureTemporalBinary('cli');
  if (!cli) throw new Error('no temporal CLI');
  const dev = await startDevServer({
    cliPath: cli,
    dataDir,
    port: await freePort(),
    uiPort: await freePort(),
    inMemory: process.env.BENCH_IN_MEMORY === '1',
  });
  const temporal = await connectTemporal(dev.address, 'default');
  const providers = createProviders(config);
  const secrets = nodeSecretsFor(config);
  const worker = await createWorker({
    connection: temporal.nativeConnection,
    namespace: 'default',
    taskQueue: 'bench',
    db,
    providers,
    nodeSecrets: secrets,
    healthPollMs: config.WORKER_HEALTH_POLL_MS,
    readyProbeMs: config.WORKER_READY_PROBE_MS,
  });
  const workerDone = worker.run();
  const app = createApp(
    {
      ...apiContext(config, db, temporal),
      taskQueue: 'bench',
      defaultTtlSeconds: 600,
      ...(options.eager === false ? {} : { eagerClient: new Client({ connection: temporal.nativeConnection, namespace: 'default' }) }),
    },
    { ...apiOptions(config, BENCH_ADMIN_KEY, ['mock'], undefined), bodyLimit: '1mb' },
  );
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const served = { total: 0, byStatus: {} as Record<number, number> };
  server.on('request', (_req, res) => {
    res.once('close', () => {
      served.total += 1;
      served.byStatus[res.statusCode] = (served.byStatus[res.statusCode] ?? 0) + 1;
    });
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const request = (key: string, method: string, url: string, body?: unknown) =>
    fetch(`${base}${url}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then((r) => r.json() as Promise<any>);
  await request(BENCH_ADMIN_KEY, 'POST', '/v1/workspaces', { id: 'bench', maxJobsInFlight: 100_000 });
  const workspaceKey: string = (await request(BENCH_ADMIN_KEY, 'POST', '/v1/workspaces/bench/keys', { label: 'bench' })).key;
  return {
    base,
    workspaceKey,
    served,
    db,
    temporal,
    nodeToken: (nodeId) => secrets.of(nodeId),
    call: (method, url, body) => request(workspaceKey, method, url, body),
    async stop() {
      server.closeAllConnections();
      server.close();
      worker.shutdown();
      await workerDone;
      await providers.mock.terminateAll();
      await temporal.connection.close();
      await dev.stop();
      await db.end();
      await pg.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export { percentile } from './percentile';

/** Polls until `check` gives a value. */
export async function until<T>(check: () => Promise<T | undefined | false>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
