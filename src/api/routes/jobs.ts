/** /v1/jobs: submit (202 + status URL), list, read status, cancel. */
import { Router } from 'express';
import { z } from 'zod';
import { payloadProblem, type ServiceResponse } from '../../domain/inference-request';
import { presentJob } from '../../domain/job-presenter';
import { basePriority } from '../../domain/placement';
import { type JobStatus, TERMINAL_JOB_STATUSES } from '../../domain/types';
import { listJobs } from '../../db/store';
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

/** `GET /v1/jobs`: filters and a page; `status=open` is every job that has not ended. */
export const listJobsQuerySchema = z
  .object({
    pool: z.string().regex(ENTITY_ID_PATTERN).optional(),
    status: z.enum(['open', ...TERMINAL_JOB_STATUSES] as [string, ...string[]]).optional(),
    since: z.string().datetime({ offset: true }).optional(),
    until: z.string().datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z
      .string()
      .regex(/^[0-9]{1,20}\.[0-9a-f-]{36}$/, 'the next_cursor of an earlier page')
      .optional(),
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

  /**
   * The workspace's jobs, newest first. Ended jobs come from their stored record; open ones are asked live (as
   * GET /v1/jobs/:id does), so a running job says running. Results stay on GET /v1/jobs/:id
   * (an image's bytes would swell a page).
   */
  router.get('/', async (req, res) => {
    const q = listJobsQuerySchema.parse(req.query);
    const workspaceId = principalOf(res).workspaceId;
    const [submittedUs, id] = q.cursor ? (q.cursor.split(/\.(.*)/s) as [string, string]) : [];
    const rows = await listJobs(ctx.db, workspaceId, {
      pool: q.pool,
      status: q.status as JobStatus | 'open' | undefined,
      since: q.since ? Date.parse(q.since) : undefined,
      until: q.until ? Date.parse(q.until) : undefined,
      limit: q.limit,
      after: submittedUs && id ? { submittedUs, id } : undefined,
    });
    const views = await Promise.all(rows.map((row) => (row.open ? jobs.view(workspaceId, row.view.id).catch(() => row.view) : row.view)));
    const last = rows.length === q.limit ? rows[rows.length - 1] : undefined;
    res.json({
      jobs: views.map((view) => {
        const { result: _result, ...summary } = presentJob(view, view.callback);
        return summary;
      }),
      next_cursor: last ? `${last.submittedUs}.${last.view.id}` : null,
    });
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
