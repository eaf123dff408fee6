/** Submitting and reading jobs, shared by /v1/jobs and the earlier gateway's /v1/compute and /v1/status. */
import { randomBytes, randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { CallbackTargetRefused, checkCallbackUrlForm } from '../domain/callback-target';
import type { InferenceProgress } from '../domain/inference-request';
import type { CallbackState } from '../db/callbacks';
import type { Logger } from 'pino';
import { getJob, getPool, insertJob, listPools, saveJobOutcome } from '../db/store';
import { basePriority } from '../domain/placement';
import { jobPriorityKey, jobStatusKey, poolKey as poolSearchKey, workspaceKey as workspaceSearchKey } from '../domain/search-attributes';
import { TERMINAL_JOB_STATUSES, type JobInput, type JobView, type PoolView } from '../domain/types';
import { jobWorkflowId, poolKey, poolWorkflowId, workspacePriority } from '../ids';
import type { jobWorkflow } from '../workflows/job';
import { jobArrivedSignal, jobStateQuery, poolStateQuery } from '../workflows/messages';
import type { ApiContext } from './context';
import { ApiError } from './errors';
import { queryWithRetry } from './query';

/** What a caller asks to run. */
export interface JobRequest {
  pool: string;
  /** A chat request (messages or prompt); or, for any other service, `path` and `body`. */
  payload?: Record<string, unknown>;
  path?: string;
  body?: unknown;
  ttlSeconds?: number;
  maxAttempts?: number;
  /** 1 (highest) to 5 (lowest); default 3. */
  priority?: number;
  callbackUrl?: string;
}

/** What the API answers about a job: its view, and the state of its callback once it has one. */
export type StoredJobView = JobView & { callback?: CallbackState };

/** Seconds a client over its in-flight limit is told to wait. */
const RETRY_AFTER_SECONDS = 2;

/** How long an API process trusts a pool definition it read (its model, whether it drains). */
export const POOL_CACHE_MS = 1000;

/** Submits jobs for one API process. Pool definitions are cached for a second (they are on the hot path). */
export class JobService {
  private readonly poolCache = new Map<string, { model: string; draining: boolean; at: number }>();

  constructor(private readonly ctx: ApiContext) {}

  /** The pool's model, or 404 / 409 (draining). */
  private async poolModel(workspaceId: string, poolId: string): Promise<string> {
    const key = poolKey(workspaceId, poolId);
    let cached = this.poolCache.get(key);
    if (!cached || Date.now() - cached.at >= POOL_CACHE_MS) {
      const pool = await getPool(this.ctx.db, workspaceId, poolId);
      if (!pool) throw new ApiError(404, 'not_found', `pool ${poolId} does not exist`);
      cached = { model: pool.config.model, draining: pool.draining, at: Date.now() };
      this.poolCache.set(key, cached);
    }
    // A drain is seen here within a second; the pool still runs anything that slipped in meanwhile.
    if (cached.draining)
      throw new ApiError(409, 'pool_draining', `pool ${poolId} is draining: it takes no new jobs (POST /v1/pools/${poolId}/resume)`);
    return cached.model;
  }

  /** The first accepting pool of the workspace that serves `model` (for the earlier gateway's /v1/compute). */
  async poolForModel(workspaceId: string, model: string): Promise<string> {
    const pools = (await listPools(this.ctx.db, workspaceId)).filter((p) => p.config.model === model);
    const accepting = pools.find((p) => !p.draining);
    if (!accepting) {
      if (pools.length > 0) throw new ApiError(409, 'pool_draining', `every pool serving ${model} is draining`);
      throw new ApiError(404, 'not_found', `no pool serves model ${model}`);
    }
    return accepting.id;
  }

  /** Accepts a job: its record (holding an in-flight place), its workflow, then a word to its pool. */
  async submit(workspaceId: string, request: JobRequest, log: Logger): Promise<{ id: string; progressToken: string }> {
    if (request.callbackUrl) {
      try {
        checkCallbackUrlForm(request.callbackUrl, this.ctx.callbackAllowList);
      } catch (err) {
        if (err instanceof CallbackTargetRefused) throw new ApiError(400, 'invalid_request', err.message, { field: 'callbackUrl' });
        throw err;
      }
    }
    const model = await this.poolModel(workspaceId, request.pool);
    const key = poolKey(workspaceId, request.pool);
    const jobId = randomUUID();
    const priority = basePriority(request);
    // The node doing the work presents this to POST /v1/jobs/:id/progress; only its hash is stored. Derived
    // from the shared node secret key, so the worker derives it too and it stays out of the workflow history.
    const derived = this.ctx.nodeSecrets?.progressToken(jobId);
    const progressToken = derived ?? `zpj_${randomBytes(24).toString('base64url')}`;
    const input: JobInput = {
      jobId,
      poolId: key,
      model,
      payload: request.payload ?? {},
      ...(request.body !== undefined ? { service: { path: request.path ?? '/', body: request.body } } : {}),
      ttlSeconds: request.ttlSeconds ?? this.ctx.defaultTtlSeconds,
      maxAttempts: request.maxAttempts ?? this.ctx.defaultMaxAttempts,
      submittedAt: Date.now(),
      indexed: this.ctx.indexed,
      arrivalSignalled: true,
      machine: 2,
      priority,
      ...(derived ? {} : { progressToken }),
      ...(request.callbackUrl ? { callbackUrl: request.callbackUrl } : {}),
      ...(this.ctx.notify ? { notify: true } : {}),
    };
    const view: JobView = { id: jobId, pool: key, status: 'queued', attempt: 1, submittedAt: input.submittedAt, priority };
    // The record first: it takes the workspace's in-flight place, and a refused job must start nothing.
    const recorded = await insertJob(this.ctx.db, view, progressToken);
    if (!recorded.inserted) {
      throw new ApiError(
        429,
        'too_many_jobs',
        `workspace has ${recorded.limit} jobs in flight, its limit; retry when some finish`,
        {
          limit: recorded.limit,
          retryAfterSeconds: RETRY_AFTER_SECONDS,
        },
        { 'Retry-After': String(RETRY_AFTER_SECONDS) },
      );
    }
    try {
      await (this.ctx.eagerClient ?? this.ctx.client).workflow.start<typeof jobWorkflow>('jobWorkflow', {
        workflowId: jobWorkflowId(jobId),
        requestEagerStart: this.ctx.eagerClient !== undefined,
        taskQueue: this.ctx.taskQueue,
        args: [input],
        priority: workspacePriority(workspaceId),
        typedSearchAttributes: this.ctx.indexed
          ? [
              { key: poolSearchKey, value: key },
              { key: jobStatusKey, value: 'queued' },
              { key: workspaceSearchKey, value: workspaceId },
              { key: jobPriorityKey, value: priority },
            ]
          : undefined,
      });
    } catch (err) {
      // Never leave a record that reads "queued" (and holds a place) for a job that does not exist.
      await saveJobOutcome(this.ctx.db, { ...view, status: 'failed', finishedAt: Date.now(), error: 'not started' }).catch(() => undefined);
      throw err;
    }
    // Straight to the pool: saves the job two workflow tasks. If this signal is lost, the job re-sends it.
    await this.ctx.client.workflow
      .getHandle(poolWorkflowId(key))
      .signal(jobArrivedSignal, { jobId, attempt: 1, front: false, priority })
      .catch((err) => log.warn({ jobId, poolId: key, err: String(err) }, 'arrival signal failed; the job will announce itself'));
    return { id: jobId, progressToken };
  }

  /**
   * The running attempt's latest heartbeat, when it is further on than what the job holds: heartbeats
   * live on the server's pending activity, not in the workflow, until the attempt ends.
   */
  private async heartbeatProgress(id: string, live: JobView): Promise<JobView['progress']> {
    try {
      const described = await this.ctx.client.workflow.getHandle(jobWorkflowId(id)).describe();
      const pending = described.raw.pendingActivities?.find((a) => a.activityType?.name === 'runInference');
      const payload = pending?.heartbeatDetails?.payloads?.[0];
      if (!payload) return undefined;
      const beat = defaultPayloadConverter.fromPayload<InferenceProgress>(
        payload as Parameters<typeof defaultPayloadConverter.fromPayload>[0],
      );
      const current = live.progress;
      if (current && current.attempt === live.attempt && current.completionTokens >= beat.completionTokens) return current;
      return { attempt: live.attempt, completionTokens: beat.completionTokens, text: '', at: beat.at, source: 'heartbeat' };
    } catch {
      return undefined;
    }
  }

  /** A job of the workspace: its stored record, or its live state while it runs. 404 for anything else. */
  async view(workspaceId: string, id: string): Promise<StoredJobView> {
    const stored = /^[0-9a-f-]{36}$/.test(id) ? await getJob(this.ctx.db, workspaceId, id) : undefined;
    if (!stored) throw new ApiError(404, 'not_found', `job ${id} does not exist`);
    if (TERMINAL_JOB_STATUSES.includes(stored.status)) return stored;
    try {
      // A query needs a worker; with none up, answer the stored record after 2 s rather than hang.
      const live = await queryWithRetry(this.ctx.client.workflow.getHandle(jobWorkflowId(id)), jobStateQuery, 1);
      if (!live) return stored;
      if (live.status === 'queued') {
        // "provisioning" tells a waiting client that capacity is on its way rather than merely queued.
        const pool: PoolView | undefined = await queryWithRetry(
          this.ctx.client.workflow.getHandle(poolWorkflowId(live.pool)),
          poolStateQuery,
          1,
        ).catch(() => undefined);
        if (pool?.nodes.some((n) => n.state === 'provisioning')) return { ...live, status: 'provisioning' };
      }
      if (live.status === 'running') return { ...live, progress: (await this.heartbeatProgress(id, live)) ?? live.progress };
      return live;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return stored;
      throw err;
    }
  }
}
