/** Drives real pool and job workflows on a test environment with a real worker, mock nodes and PostgreSQL. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type pg from 'pg';
import type { NtfySettings } from '../../src/activities/notify';
import { MockProvider, type MockProviderOptions } from '../../src/activities/providers/mock';
import {
  CapacityUnavailableError,
  type Provider,
  type ProvisionedNode,
  type ProvisionRequest,
} from '../../src/activities/providers/provider';
import { ledgerRowsForPool, type LedgerEvent } from '../../src/db/ledger';
import { insertJob } from '../../src/db/store';
import type { JobInput, JobView, Lane, PoolConfig, PoolView } from '../../src/domain/types';
import { poolConfigSchema } from '../../src/domain/pool-config';
import { asPoolKey, jobWorkflowId, POOL_WORKFLOW_TYPE, poolWorkflowId } from '../../src/ids';
import type { jobWorkflow } from '../../src/workflows/job';
import { jobStateQuery, poolStateQuery } from '../../src/workflows/messages';
import type { poolEntityWorkflow } from '../../src/workflows/pool';
import { createWorker } from '../../src/worker';
import type { NodeEvent } from '../../src/mock-node/events';
import { waitUntil } from './wait';
import { TEST_NODE_SECRETS } from './ledger-marks';

/** A mock provider in a fresh temp folder. */
export function testMockProvider(options: Partial<MockProviderOptions> = {}): MockProvider {
  return new MockProvider({
    stateDir: mkdtempSync(path.join(os.tmpdir(), 'zeropool-nodes-')),
    coldStartSeconds: 0.2,
    tokensPerSecond: 200,
    spotShortageProbability: 0,
    spotInterruptionsPerHour: 0,
    seed: 7,
    ...options,
  });
}

/** The real mock provider, with spot capacity switched off and on by the test, counting requests per lane. */
export class SwitchableSpotProvider extends MockProvider {
  spotAvailable = false;
  readonly requests: number[] = [];
  override async provision(request: ProvisionRequest): Promise<ProvisionedNode> {
    this.requests.push(request.laneIndex);
    if (request.lane.market === 'spot' && !this.spotAvailable) throw new CapacityUnavailableError('no spot capacity (test)');
    return super.provision(request);
  }
}

/** A switchable provider in a fresh temp folder (spot short until the test says otherwise). */
export function switchableSpotProvider(options: Partial<MockProviderOptions> = {}): SwitchableSpotProvider {
  const base = testMockProvider(options);
  return new SwitchableSpotProvider((base as unknown as { options: MockProviderOptions }).options);
}

/** A pool config with test-friendly defaults (realistic durations: time skips). */
export function poolConfig(overrides: Partial<PoolConfig> = {}): PoolConfig {
  return poolConfigSchema.parse({
    model: 'test-model',
    maxNodes: 5,
    slotsPerNode: 4,
    idleTimeoutSeconds: 600,
    teardownGraceSeconds: 30,
    lanes: [
      { provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.5 },
      { provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.2 },
    ],
    ...overrides,
  });
}

/** A rung test's pool under the time-skipping server: one one-slot node on `lane`, idle after 60 s, no grace. */
export function oneNodeRungPool(lane: Lane): PoolConfig {
  return poolConfig({
    maxNodes: 1,
    slotsPerNode: 1,
    idleTimeoutSeconds: 60,
    teardownGraceSeconds: 0,
    healthCheckIntervalSeconds: 120,
    lanes: [lane],
  });
}

/** Test handle over one environment. */
export class PoolHarness {
  readonly taskQueue = `q-${randomUUID().slice(0, 8)}`;
  /**
   * A plain client: unlike env.client it never unlocks time skipping while waiting, so on the
   * time-skipping server time only jumps inside env.sleep() and a test decides exactly how far.
   */
  readonly client: Client;

  constructor(
    readonly env: TestWorkflowEnvironment,
    readonly db: pg.Pool,
    readonly providers: Record<string, Provider>,
  ) {
    this.client = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
  }

  /** A worker on this harness's task queue (run it with worker.runUntil). */
  worker(
    options: {
      maxCachedWorkflows?: number;
      afterLedgerWrite?: (event: LedgerEvent) => void;
      ntfy?: NtfySettings;
      callbackAllowList?: string[];
    } = {},
  ): Promise<Worker> {
    return createWorker({
      callbackAllowList: ['127.0.0.1', 'localhost'],
      ...options,
      connection: this.env.nativeConnection,
      namespace: this.env.namespace ?? 'default',
      taskQueue: this.taskQueue,
      db: this.db,
      providers: this.providers,
      healthPollMs: 100,
      nodeSecrets: TEST_NODE_SECRETS,
    });
  }

  private readonly started: string[] = [];

  /**
   * Terminates every pool workflow this harness started. A pool left running without a worker keeps
   * scheduling health checks that nobody runs, and a pending activity stops the test server skipping time.
   */
  async close(): Promise<void> {
    for (const workflowId of this.started) {
      await this.client.workflow
        .getHandle(workflowId)
        .terminate('test over')
        .catch(() => undefined);
    }
  }

  async startPool(poolName: string, config: PoolConfig): Promise<void> {
    const poolId = asPoolKey(poolName);
    this.started.push(poolWorkflowId(poolId));
    await this.client.workflow.start<typeof poolEntityWorkflow>(POOL_WORKFLOW_TYPE, {
      workflowId: poolWorkflowId(poolId),
      taskQueue: this.taskQueue,
      args: [{ poolId, config }],
    });
  }

  pool(poolName: string): Promise<PoolView> {
    return this.client.workflow.getHandle(poolWorkflowId(asPoolKey(poolName))).query(poolStateQuery);
  }

  async submit(poolName: string, payload: Record<string, unknown> = { prompt: 'hello' }, extra: Partial<JobInput> = {}): Promise<string> {
    const poolId = asPoolKey(poolName);
    const jobId = randomUUID();
    const input: JobInput = {
      jobId,
      poolId,
      model: 'test-model',
      payload,
      ttlSeconds: 3600,
      maxAttempts: 3,
      submittedAt: Date.now(),
      indexed: false,
      machine: 2,
      ...extra,
    };
    await insertJob(this.db, { id: jobId, pool: poolId, status: 'queued', attempt: 1, submittedAt: input.submittedAt });
    await this.client.workflow.start<typeof jobWorkflow>('jobWorkflow', {
      workflowId: jobWorkflowId(jobId),
      taskQueue: this.taskQueue,
      args: [input],
    });
    return jobId;
  }

  result(jobId: string): Promise<JobView> {
    return this.client.workflow.getHandle<typeof jobWorkflow>(jobWorkflowId(jobId)).result();
  }

  job(jobId: string): Promise<JobView> {
    return this.client.workflow.getHandle(jobWorkflowId(jobId)).query(jobStateQuery);
  }

  ledger(poolId: string) {
    return ledgerRowsForPool(this.db, poolId);
  }

  /** The mock node's own record of requests (start, finish, abort per job), from its /_mock/events. */
  async nodeEvents(nodeUrl: string): Promise<NodeEvent[]> {
    const res = await fetch(`${nodeUrl}/_mock/events`);
    return ((await res.json()) as { events: NodeEvent[] }).events;
  }

  /** Polls until `check` returns a truthy value (real time; for conditions driven by activities). */
  until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
    return waitUntil(what, check, timeoutMs, 50);
  }
}

/** One entry of a mock node's request log. */
export type { NodeEvent };

/** Counts of ledger event types. */
export function countEvents(rows: Array<{ event_type: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const row of rows) counts[row.event_type] = (counts[row.event_type] ?? 0) + 1;
  return counts;
}
