/** /v1/jobs: submit (202 + status URL), read status, cancel. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { getJob, getPool, insertJob, saveJobOutcome } from '../../db/store';
import { jobStatusKey, poolKey } from '../../domain/search-attributes';
import { TERMINAL_JOB_STATUSES, type JobInput, type JobView, type PoolView } from '../../domain/types';
import { ENTITY_ID_PATTERN, jobWorkflowId, poolWorkflowId } from '../../ids';
import type { jobWorkflow } from '../../workflows/job';
import { cancelJobSignal, jobArrivedSignal, jobStateQuery, poolStateQuery } from '../../workflows/messages';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { queryWithRetry } from '../query';

const submitJobSchema = z
  .object({
    pool: z.string().regex(ENTITY_ID_PATTERN),
    payload: z.record(z.unknown()),
    ttlSeconds: z.number().int().min(1).max(7 * 24 * 3600).optional(),
    maxAttempts: z.number().int().min(1).max(20).optional(),
  })
  .strict();

/** The public shape of a job (snake_case timings, as clients of the earlier gateway expect). */
export function presentJob(view: JobView) {
  return {
    id: view.id,
    pool: view.pool,
    status: view.status,
    attempt: view.attempt,
    node_id: view.nodeId ?? null,
    submitted_at: new Date(view.submittedAt).toISOString(),
    started_at: view.startedAt ? new Date(view.startedAt).toISOString() : null,
    finished_at: view.finishedAt ? new Date(view.finishedAt).toISOString() : null,
    queue_ms: view.queueMs ?? null,
    cold_start_ms: view.coldStartMs ?? null,
    run_ms: view.runMs ?? null,
    tokens: view.usage ? { prompt: view.usage.promptTokens, completion: view.usage.completionTokens } : null,
    result: view.result ?? null,
    error: view.error ?? null,
  };
}

/** Routes for jobs. */
export function jobRoutes(ctx: ApiContext): Router {
  const router = Router();
  // Pool lookups are on the submit hot path; definitions change rarely, so cache them briefly.
  // A drain is seen here within a second; the pool still runs anything that slipped in meanwhile.
  const poolCache = new Map<string, { model: string; draining: boolean; at: number }>();

  async function poolModel(id: string): Promise<string> {
    let cached = poolCache.get(id);
    if (!cached || Date.now() - cached.at >= 1000) {
      const pool = await getPool(ctx.db, id);
      if (!pool) throw new ApiError(404, 'not_found', `pool ${id} does not exist`);
      cached = { model: pool.config.model, draining: pool.draining, at: Date.now() };
      poolCache.set(id, cached);
    }
    if (cached.draining) throw new ApiError(409, 'pool_draining', `pool ${id} is draining: it takes no new jobs (POST /v1/pools/${id}/resume)`);
    return cached.model;
  }

  router.post('/', async (req, res) => {
    const body = submitJobSchema.parse(req.body);
    const model = await poolModel(body.pool);
    const jobId = randomUUID();
    const input: JobInput = {
      jobId,
      poolId: body.pool,
      model,
      payload: body.payload,
      ttlSeconds: body.ttlSeconds ?? ctx.defaultTtlSeconds,
      maxAttempts: body.maxAttempts ?? ctx.defaultMaxAttempts,
      submittedAt: Date.now(),
      indexed: ctx.indexed,
      arrivalSignalled: true,
    };
    // The record and the workflow are independent writes: do them together (both land before the 202).
    const record = insertJob(ctx.db, { id: jobId, pool: body.pool, status: 'queued', attempt: 1, submittedAt: input.submittedAt });
    const started = ctx.client.workflow.start<typeof jobWorkflow>('jobWorkflow', {
      workflowId: jobWorkflowId(jobId),
      taskQueue: ctx.taskQueue,
      args: [input],
      typedSearchAttributes: ctx.indexed
        ? [
            { key: poolKey, value: body.pool },
            { key: jobStatusKey, value: 'queued' },
          ]
        : undefined,
    });
    const [recorded, start] = await Promise.allSettled([record, started]);
    if (start.status === 'rejected') {
      // Never leave a record that reads "queued" for a job that does not exist.
      if (recorded.status === 'fulfilled') {
        await saveJobOutcome(ctx.db, { id: jobId, pool: body.pool, status: 'failed', attempt: 1, submittedAt: input.submittedAt, finishedAt: Date.now(), error: 'not started' });
      }
      throw start.reason;
    }
    if (recorded.status === 'rejected') throw recorded.reason;
    // Straight to the pool: saves the job two workflow tasks. If this signal is lost, the job re-sends it.
    await ctx.client.workflow
      .getHandle(poolWorkflowId(body.pool))
      .signal(jobArrivedSignal, { jobId, attempt: 1, front: false })
      .catch((err) => res.locals.log.warn({ jobId, poolId: body.pool, err: String(err) }, 'arrival signal failed; the job will announce itself'));
    const statusUrl = `/v1/jobs/${jobId}`;
    res.status(202).location(statusUrl).json({ id: jobId, status: 'queued', status_url: statusUrl });
  });

  async function jobView(id: string): Promise<JobView> {
    const stored = await getJob(ctx.db, id);
    if (!stored) throw new ApiError(404, 'not_found', `job ${id} does not exist`);
    if (TERMINAL_JOB_STATUSES.includes(stored.status)) return stored;
    try {
      // A query needs a worker; with none up, answer the stored record after 2 s rather than hang.
      const live = await queryWithRetry(ctx.client.workflow.getHandle(jobWorkflowId(id)), jobStateQuery, 1);
      if (!live) return stored;
      if (live.status === 'queued') {
        // "provisioning" tells a waiting client that capacity is on its way rather than merely queued.
        const pool: PoolView | undefined = await queryWithRetry(ctx.client.workflow.getHandle(poolWorkflowId(live.pool)), poolStateQuery, 1).catch(
          () => undefined,
        );
        if (pool?.nodes.some((n) => n.state === 'provisioning')) return { ...live, status: 'provisioning' };
      }
      return live;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return stored;
      throw err;
    }
  }

  router.get('/:id', async (req, res) => {
    if (!/^[0-9a-f-]{36}$/.test(req.params.id)) throw new ApiError(404, 'not_found', `job ${req.params.id} does not exist`);
    res.json(presentJob(await jobView(req.params.id)));
  });

  router.delete('/:id', async (req, res) => {
    const view = await jobView(req.params.id);
    if (TERMINAL_JOB_STATUSES.includes(view.status)) throw new ApiError(409, 'conflict', `job is already ${view.status}`);
    await ctx.client.workflow.getHandle(jobWorkflowId(req.params.id)).signal(cancelJobSignal, { reason: 'cancelled by request' });
    res.status(202).json({ id: view.id, status: 'cancelling' });
  });

  return router;
}
