/** The whole service for integration tests: dev server, embedded PostgreSQL, real worker(s), HTTP API. */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createApp } from '../../src/api/app';
import { parseAllowList } from '../../src/domain/callback-target';
import type { NtfySettings } from '../../src/activities/notify';
import { MockProvider } from '../../src/activities/providers/mock';
import type { Provider } from '../../src/activities/providers/provider';
import { readinessCheck } from '../../src/runtime';
import { createWorker } from '../../src/worker';
import Docker from 'dockerode';
import { Client } from '@temporalio/client';
import { DockerProvider } from '../../src/activities/providers/docker';
import { payloadDataConverter } from '../../src/temporal-codec';
import type { LocalGpus } from '../../src/local-gpus/report';
import { GpuProbe } from '../../src/local-gpus/probe';
import { temporalPoolControl } from '../../src/stack/local-gpus';
import { logger } from '../../src/logger';
import { waitUntil } from './wait';
import { freePort } from '../../src/stack/free-port';
import { startTestDatabase, type TestDatabase } from './postgres';
import { devServerEnv } from './temporal';
import { loadNodeSecretKey, type NodeSecrets, nodeSecrets } from '../../src/secrets/node-secrets';
import { type LedgerRow, ledgerRowsForPool } from '../../src/db/ledger';
import { clientTracingInterceptors, type Tracing } from '../../src/tracing';
import { workspaceTopic } from '../../src/domain/notify-topic';

/** Options of a test stack. */
export interface ApiStackOptions {
  dynamicConfig?: Record<string, unknown>;
  coldStartSeconds?: number;
  tokensPerSecond?: number;
  /** Run the worker as a child process (so a test can kill it) instead of in-process. */
  workerProcess?: boolean;
  /** More environment for that worker process (e.g. METRICS_PORT). */
  workerEnv?: Record<string, string>;
  /** In-flight job limit of workspaces created through the API. */
  maxJobsInFlight?: number;
  /** Send job notifications to this ntfy-shaped server. */
  ntfy?: NtfySettings;
  /** More providers for the in-process worker (cloud drivers pointed at local fakes), by lane name, given the nodes' secrets. */
  providers?: (secrets: NodeSecrets) => Record<string, Provider>;
  /** Turn on the docker provider (a real engine) with GPUs read by this nvidia-smi. */
  docker?: { nvidiaSmiPath: string; reserveMiB?: number; network?: 'host' | 'isolated'; isolatedNetwork?: string };
  /** Trace the API, the clients and the in-process worker with this tracer provider. */
  tracing?: Tracing;
  /** TEMPORAL_PAYLOAD_KEYS for the API's clients and the worker (in-process or child): payloads encrypted. */
  payloadKeys?: string;
}

/** Tests receive callbacks on loopback, which production refuses unless allowed. */
export const TEST_CALLBACK_ALLOW_LIST = ['127.0.0.1', 'localhost'];

/** The bootstrap admin key of test stacks. */
export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef';

/** A running stack. */
export class ApiStack {
  baseUrl = '';
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-it-'));
  taskQueue = 'zeropool-it';
  mock!: MockProvider;
  local?: LocalGpus & { docker: DockerProvider };
  env!: TestWorkflowEnvironment;
  database!: TestDatabase;
  private server?: Server;
  private worker?: { worker: Worker; done: Promise<void> };
  workerChild?: ChildProcess;
  /** Each mock node's bearer secret (required by the nodes, sent by the worker). */
  nodeSecrets!: NodeSecrets;
  private extraProviders: Record<string, Provider> = {};

  constructor(private readonly options: ApiStackOptions = {}) {}

  async start(): Promise<this> {
    chmodSync(this.dataDir, 0o755);
    this.nodeSecrets = nodeSecrets(loadNodeSecretKey(undefined, this.dataDir));
    this.extraProviders = this.options.providers?.(this.nodeSecrets) ?? {};
    [this.env, this.database] = await Promise.all([devServerEnv(this.options.dynamicConfig), startTestDatabase()]);
    this.mock = new MockProvider({
      stateDir: path.join(this.dataDir, 'mock-nodes'),
      coldStartSeconds: this.options.coldStartSeconds ?? 0.5,
      tokensPerSecond: this.options.tokensPerSecond ?? 200,
      spotShortageProbability: 0,
      spotInterruptionsPerHour: 0,
      seed: 1,
      // As a worker process would: the node secret key kept in the data folder.
      secrets: this.nodeSecrets,
    });
    if (this.options.docker) {
      const probe = new GpuProbe({ nvidiaSmiPath: this.options.docker.nvidiaSmiPath, cacheMs: 0 });
      const reserveMiB = this.options.docker.reserveMiB ?? 1024;
      const docker = new DockerProvider({
        docker: new Docker(),
        db: this.database.db,
        gpus: probe,
        logger,
        reserveMiB,
        network: this.options.docker.network ?? 'host',
        isolatedNetwork: this.options.docker.isolatedNetwork,
        gpuDeviceRequests: false,
        secrets: this.nodeSecrets,
        pools: temporalPoolControl(this.env.client),
      });
      this.local = { probe, docker, reserveMiB };
    }
    const interceptors = clientTracingInterceptors(this.options.tracing);
    const dataConverter = payloadDataConverter(this.options.payloadKeys);
    const app = createApp(
      {
        client:
          interceptors || dataConverter
            ? new Client({ connection: this.env.connection, namespace: 'default', interceptors, dataConverter })
            : this.env.client,
        db: this.database.db,
        taskQueue: this.taskQueue,
        indexed: true,
        defaultTtlSeconds: 600,
        defaultMaxAttempts: 3,
        callbackAllowList: parseAllowList(TEST_CALLBACK_ALLOW_LIST),
        notify: this.options.ntfy !== undefined,
        notifyTopicOf: this.ntfySettings()?.topicOf,
        defaultPreemptPriorityGap: 2,
        // As in `npm start`: an in-process worker gets its job workflows' first task eagerly.
        ...(this.options.workerProcess
          ? {}
          : { eagerClient: new Client({ connection: this.env.nativeConnection, namespace: 'default', interceptors, dataConverter }) }),
      },
      {
        apiKey: TEST_ADMIN_KEY,
        bodyLimit: '64kb',
        providers: [...(this.local ? ['mock', 'docker'] : ['mock']), ...Object.keys(this.extraProviders)],
        local: this.local,
        defaultMaxJobsInFlight: this.options.maxJobsInFlight ?? 1000,
        checkReady: readinessCheck(this.database.db, this.env.connection),
        nodeSecrets: this.nodeSecrets,
        tracing: this.options.tracing !== undefined,
        ledgerSpoolDir: path.join(this.dataDir, 'ledger-spool'),
      },
    );
    await new Promise<void>((resolve) => {
      this.server = app.listen(0, '127.0.0.1', () => resolve());
    });
    const address = this.server!.address();
    this.baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    // Workers start once the API listens: nodes are told its address for progress reports.
    if (this.options.workerProcess) await this.startWorkerProcess();
    else await this.startWorkerInProcess();
    return this;
  }

  async startWorkerInProcess(): Promise<void> {
    const worker = await createWorker({
      connection: this.env.nativeConnection,
      namespace: 'default',
      taskQueue: this.taskQueue,
      db: this.database.db,
      providers: { mock: this.mock, ...(this.local ? { docker: this.local.docker } : {}), ...this.extraProviders },
      healthPollMs: 100,
      callbackAllowList: TEST_CALLBACK_ALLOW_LIST,
      ntfy: this.ntfySettings(),
      apiBaseUrl: this.baseUrl,
      nodeSecrets: this.nodeSecrets,
      tracing: this.options.tracing,
      dataConverter: payloadDataConverter(this.options.payloadKeys),
    });
    this.worker = { worker, done: worker.run() };
  }

  /** The ntfy settings as production builds them: a topic per workspace, derived from the node secret key. */
  ntfySettings(): NtfySettings | undefined {
    const ntfy = this.options.ntfy;
    if (!ntfy) return undefined;
    return { ...ntfy, topicOf: (ws) => workspaceTopic(ntfy.topic, ws, this.nodeSecrets.topicSuffix(ws)) };
  }

  /** Runs one of zeropool's entry points (`src/<main>`) as a child process on this stack's Temporal, PostgreSQL and data folder. */
  private spawnMain(main: string, env: Record<string, string>): ChildProcess {
    return spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', '..', 'src', main)], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: this.env.address,
        DATABASE_URL: this.database.url,
        TEMPORAL_TASK_QUEUE: this.taskQueue,
        ZEROPOOL_DATA_DIR: this.dataDir,
        LOG_LEVEL: 'warn',
        ...(this.options.payloadKeys ? { TEMPORAL_PAYLOAD_KEYS: this.options.payloadKeys } : {}),
        ...env,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }

  /** Starts `src/worker-main.ts` as a child process and waits for it to poll. */
  async startWorkerProcess(): Promise<ChildProcess> {
    const child = this.spawnMain('worker-main.ts', {
      MOCK_COLD_START_SECONDS: String(this.options.coldStartSeconds ?? 0.5),
      MOCK_TOKENS_PER_SECOND: String(this.options.tokensPerSecond ?? 200),
      WORKER_HEALTH_POLL_MS: '100',
      CALLBACK_ALLOWED_HOSTS: TEST_CALLBACK_ALLOW_LIST.join(','),
      ZEROPOOL_PUBLIC_URL: this.baseUrl,
      ...this.options.workerEnv,
    });
    this.workerChild = child;
    return child;
  }

  /**
   * Starts `src/api-main.ts` as a child process on this stack's Temporal, PostgreSQL and data folder (the same
   * node secrets), waits until it answers, and returns its address; `env` adds to or overrides its settings.
   */
  async startApiProcess(env: Record<string, string> = {}): Promise<{ child: ChildProcess; baseUrl: string }> {
    const port = await freePort();
    const child = this.spawnMain('api-main.ts', { ZEROPOOL_API_KEY: TEST_ADMIN_KEY, PORT: String(port), HOST: '127.0.0.1', ...env });
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitUntil(
      'the API process to answer',
      async () => {
        if (child.exitCode !== null) throw new Error(`the API process exited (${child.exitCode})`);
        return fetch(`${baseUrl}/health`).then(
          (r) => r.ok,
          () => false,
        );
      },
      60_000,
      100,
    );
    return { child, baseUrl };
  }

  /** Kills the worker process at once (SIGKILL: no shutdown, activities in flight are lost). */
  killWorkerProcess(): Promise<void> {
    const child = this.workerChild;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** An API call with the admin key, another key, or none (null). */
  async request<T = any>(
    method: string,
    url: string,
    body?: unknown,
    key: string | null = TEST_ADMIN_KEY,
  ): Promise<{ status: number; body: T; headers: Headers }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (key !== null) headers.authorization = `Bearer ${key}`;
    const res = await fetch(`${this.baseUrl}${url}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** Creates a workspace and returns a key of it. */
  async workspaceKey(id: string, maxJobsInFlight?: number): Promise<string> {
    const created = await this.request('POST', '/v1/workspaces', { id, ...(maxJobsInFlight ? { maxJobsInFlight } : {}) });
    if (created.status !== 201) throw new Error(`workspace ${id}: ${created.status} ${JSON.stringify(created.body)}`);
    const key = await this.request('POST', `/v1/workspaces/${id}/keys`, { label: 'test' });
    if (key.status !== 201) throw new Error(`key for ${id}: ${key.status} ${JSON.stringify(key.body)}`);
    return key.body.key;
  }

  /**
   * A pool's ledger rows once every node billed has its node_terminated row. A node leaves the pool's view when
   * its terminate succeeds; the row is written by the activity that follows (durably, retried), so on a loaded
   * machine the last rows can land a moment after the pool shows zero nodes.
   */
  closedLedger(poolName: string): Promise<LedgerRow[]> {
    return this.until(`every node of ${poolName} closed in the ledger`, async () => {
      const rows = await ledgerRowsForPool(this.database.db, poolName);
      const opened = rows.filter((r) => r.event_type === 'node_provisioning').length;
      return rows.filter((r) => r.event_type === 'node_terminated').length >= opened ? rows : undefined;
    });
  }

  /** Polls until `check` returns a truthy value. */
  until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
    return waitUntil(what, check, timeoutMs, 100);
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => (this.server ? this.server.close(() => resolve(undefined)) : resolve(undefined)));
    if (this.worker) {
      this.worker.worker.shutdown();
      await this.worker.done.catch(() => undefined);
    }
    let workerExit: number | null = 0;
    if (this.workerChild && this.workerChild.exitCode === null) {
      const child = this.workerChild;
      workerExit = await new Promise<number | null>((resolve) => {
        // A worker that does not end within 30 s is killed, and reported below (null), rather than holding the file.
        const stuck = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.once('exit', (code) => {
          clearTimeout(stuck);
          resolve(code);
        });
        child.kill('SIGTERM');
      });
    }
    await this.mock?.terminateAll();
    await this.env?.teardown();
    await this.database?.close();
    // A SIGTERM ends the worker process by its own shutdown: drained, then exit 0.
    if (workerExit !== 0) throw new Error(`the worker process ended with ${workerExit} on SIGTERM, not 0`);
  }
}

/** A pool body for POST /v1/pools. */
export function poolBody(id: string, overrides: Record<string, unknown> = {}) {
  return {
    id,
    model: 'llama-3-8b',
    maxNodes: 5,
    slotsPerNode: 4,
    idleTimeoutSeconds: 3,
    teardownGraceSeconds: 0.5,
    // These tests count nodes and timeouts exactly: the fixed timeout, not the default adaptive one.
    keepAlive: { mode: 'fixed' },
    healthCheckIntervalSeconds: 2,
    lanes: [
      { provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.45 },
      { provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.1 },
    ],
    ...overrides,
  };
}
