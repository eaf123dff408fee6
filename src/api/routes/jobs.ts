/** /v1/jobs: submit (202 + status URL), read status, cancel. */
import { Router } from 'express';
import { z } from 'zod';
import { payloadProblem } from '../../domain/inference';
import { presentJob } from '../../domain/job-presenter';
import { basePriority } from '../../domain/placement';
import { TERMINAL_JOB_STATUSES } from '../../domain/types';
import { ENTITY_ID_PATTERN, jobWorkflowId } from '../../ids';
import { cancelJobSignal } from '../../workflows/messages';
import { principalOf } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import type { JobService } from '../job-service';

export const submitJobSchema = z
  .object({
    pool: z.string().regex(ENTITY_ID_PATTERN),
    payload: z.record(z.unknown()).superRefine((payload, ctx) => {
      const problem = payloadProblem(payload);
      if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    }),
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional(),
    maxAttempts: z.number().int().min(1).max(20).optional(),
    /** 1 (highest) to 5 (lowest). */
    priority: z.number().int().min(1).max(5).optional(),
    /** Receives the job's terminal state, signed (X-Zeropool-Signature). */
    callbackUrl: z.string().url().max(2000).optional(),
  })
  .strict();

/** Routes for jobs. */
export function jobRoutes(ctx: ApiContext, jobs: JobService): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const body = submitJobSchema.parse(req.body);
    const { id, progressToken } = await jobs.submit(principalOf(res).workspaceId, body, res.locals.log);
    const statusUrl = `/v1/jobs/${id}`;
    res
      .status(202)
      .location(statusUrl)
      .json({ id, status: 'queued', status_url: statusUrl, priority: basePriority(body), progress_token: progressToken });
  });

  router.get('/:id', async (req, res) => {
    const view = await jobs.view(principalOf(res).workspaceId, req.params.id);
    res.json(presentJob(view, view.callback));
  });

  router.delete('/:id', async (req, res) => {
    const view = await jobs.view(principalOf(res).workspaceId, req.params.id);
    if (TERMINAL_JOB_STATUSES.includes(view.status)) throw new ApiError(409, 'conflict', `job is already ${view.status}`);
    await ctx.client.workflow.getHandle(jobWorkflowId(view.id)).signal(cancelJobSignal, { reason: 'cancelled by request' });
    res.status(202).json({ id: view.id, status: 'cancelling' });
  });

  return router;
}
