/** /v1/jobs: submit (202 + status URL), read status, cancel. */
import { Router } from 'express';
import { z } from 'zod';
import { payloadProblem, type ServiceResponse } from '../../domain/inference-request';
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
    /** A chat request for the pool's model: `messages` (or `prompt`), `max_tokens`, … */
    payload: z
      .record(z.unknown())
      .superRefine((payload, ctx) => {
        const problem = payloadProblem(payload);
        if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      })
      .optional(),
    /** Any other service: the path on the node and the JSON body to POST there; its answer is passed through. */
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, 'a path on the node, starting with /')
      .max(500)
      .optional(),
    body: z.unknown().optional(),
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
  .strict()
  .refine((job) => (job.payload === undefined) !== (job.body === undefined), {
    message: 'give either payload (a chat request) or path and body (any other service)',
    path: ['payload'],
  })
  .refine((job) => job.body === undefined || job.path !== undefined, { message: 'a body needs the path it goes to', path: ['path'] });

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

  /** A service job's answer as the node gave it (an image as an image); a chat job's text as text. */
  router.get('/:id/result', async (req, res) => {
    const view = await jobs.view(principalOf(res).workspaceId, req.params.id);
    if (view.status !== 'completed') throw new ApiError(409, 'conflict', `job is ${view.status}; a result comes once it completed`);
    const result = view.result as { response?: ServiceResponse; text?: string } | undefined;
    if (result?.response) {
      const { contentType, json, base64 } = result.response;
      res.type(contentType).send(base64 !== undefined ? Buffer.from(base64, 'base64') : JSON.stringify(json));
      return;
    }
    res.type('text/plain').send(result?.text ?? '');
  });

  router.delete('/:id', async (req, res) => {
    const view = await jobs.view(principalOf(res).workspaceId, req.params.id);
    if (TERMINAL_JOB_STATUSES.includes(view.status)) throw new ApiError(409, 'conflict', `job is already ${view.status}`);
    await ctx.client.workflow.getHandle(jobWorkflowId(view.id)).signal(cancelJobSignal, { reason: 'cancelled by request' });
    res.status(202).json({ id: view.id, status: 'cancelling' });
  });

  return router;
}
