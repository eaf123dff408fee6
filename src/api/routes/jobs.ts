/** /v1/jobs: submit (202 + status URL), read status, cancel. */
import { Router } from 'express';
import { z } from 'zod';
import { TERMINAL_JOB_STATUSES, type JobView } from '../../domain/types';
import { ENTITY_ID_PATTERN, jobWorkflowId, splitPoolKey } from '../../ids';
import { cancelJobSignal } from '../../workflows/messages';
import { principalOf } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import type { JobService } from '../job-service';

export const submitJobSchema = z
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
    pool: splitPoolKey(view.pool).poolId,
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
export function jobRoutes(ctx: ApiContext, jobs: JobService): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const body = submitJobSchema.parse(req.body);
    const { id } = await jobs.submit(principalOf(res).workspaceId, body, res.locals.log);
    const statusUrl = `/v1/jobs/${id}`;
    res.status(202).location(statusUrl).json({ id, status: 'queued', status_url: statusUrl });
  });

  router.get('/:id', async (req, res) => {
    res.json(presentJob(await jobs.view(principalOf(res).workspaceId, req.params.id)));
  });

  router.delete('/:id', async (req, res) => {
    const view = await jobs.view(principalOf(res).workspaceId, req.params.id);
    if (TERMINAL_JOB_STATUSES.includes(view.status)) throw new ApiError(409, 'conflict', `job is already ${view.status}`);
    await ctx.client.workflow.getHandle(jobWorkflowId(view.id)).signal(cancelJobSignal, { reason: 'cancelled by request' });
    res.status(202).json({ id: view.id, status: 'cancelling' });
  });

  return router;
}
