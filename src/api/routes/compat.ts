/**
 * The earlier gateway's routes, for its clients: `POST /v1/compute { model, prompt }` and
 * `GET /v1/status/:id`. Unlike that gateway they need a key, and failed or expired jobs say so.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { JobStatus, JobView } from '../../domain/types';
import { principalOf } from '../auth';
import type { JobService } from '../job-service';

export const computeSchema = z
  .object({
    model: z.string().min(1).max(200),
    prompt: z.string().min(1),
    max_tokens: z.number().int().min(1).max(32_768).optional(),
    ttl_seconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional(),
    priority: z.number().int().min(1).max(5).optional(),
    callback_url: z.string().url().max(2000).optional(),
  })
  .strict();

/** The earlier gateway's status words: "processing" for a job on a node; terminal states as they are. */
const LEGACY_STATUS: Record<JobStatus, string> = {
  queued: 'queued',
  provisioning: 'queued',
  running: 'processing',
  completed: 'completed',
  failed: 'failed',
  expired: 'expired',
  cancelled: 'cancelled',
};

export function presentLegacyStatus(view: JobView) {
  const result = view.result as { text?: string } | undefined;
  return {
    job_id: view.id,
    status: LEGACY_STATUS[view.status],
    result: result?.text ?? null,
    error: view.error ?? null,
    queue_time_ms: view.queueMs ?? null,
    cold_start_ms: view.coldStartMs ?? null,
    processing_time_ms: view.runMs ?? null,
    tokens_generated: view.usage?.completionTokens ?? null,
    created_at: new Date(view.submittedAt).toISOString(),
    completed_at: view.finishedAt ? new Date(view.finishedAt).toISOString() : null,
  };
}

/** Routes of the earlier gateway. */
export function compatRoutes(jobs: JobService): Router {
  const router = Router();

  router.post('/compute', async (req, res) => {
    const body = computeSchema.parse(req.body);
    const workspaceId = principalOf(res).workspaceId;
    const pool = await jobs.poolForModel(workspaceId, body.model);
    const payload = { prompt: body.prompt, ...(body.max_tokens ? { max_tokens: body.max_tokens } : {}) };
    const { id } = await jobs.submit(
      workspaceId,
      { pool, payload, ttlSeconds: body.ttl_seconds, priority: body.priority, callbackUrl: body.callback_url },
      res.locals.log,
    );
    const statusUrl = `/v1/status/${id}`;
    res.status(202).location(statusUrl).json({ job_id: id, status: 'queued', pool, status_url: statusUrl });
  });

  router.get('/status/:id', async (req, res) => {
    res.json(presentLegacyStatus(await jobs.view(principalOf(res).workspaceId, req.params.id)));
  });

  return router;
}
