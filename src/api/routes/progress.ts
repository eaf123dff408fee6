/** POST /v1/jobs/:id/progress: a node reports how far a job got, with the job's own token. */
import { Router } from 'express';
import { z } from 'zod';
import { progressTokenMatches } from '../../db/store';
import { MAX_TOKENS_LIMIT } from '../../domain/inference-request';
import { jobWorkflowId } from '../../ids';
import { jobProgressSignal } from '../../workflows/messages';
import type { ApiContext } from '../context';
import { jsonBody, rejectUnstorableText } from '../body';
import { ApiError } from '../errors';

/**
 * Bounds on what nodes report: every accepted report is a signal in the job's Temporal history, which must stay
 * far below Temporal's limits (50 MB, 51,200 events) whatever a node sends: at most this much text per report…
 */
export const PROGRESS_TEXT_LIMIT = 16 * 1024;
/** …and at most this many reports per job (per API process). */
export const PROGRESS_REPORTS_PER_JOB = 600;
/** Jobs whose report counts are remembered (oldest forgotten first). */
const COUNTED_JOBS = 100_000;

/** What a node reports to POST /v1/jobs/:id/progress. */
export const progressReportSchema = z
  .object({
    completion_tokens: z.number().int().min(0).max(MAX_TOKENS_LIMIT),
    /** The completion so far: lets a preempted attempt resume from it. */
    text: z
      .string()
      .max(PROGRESS_TEXT_LIMIT, `at most ${PROGRESS_TEXT_LIMIT} characters (longer completions resume from the heartbeat)`)
      .optional(),
    /** The attempt the node works on (from the X-Zeropool-Attempt request header); stale reports are ignored. */
    attempt: z.number().int().min(1).optional(),
  })
  .strict();

/**
 * POST /v1/jobs/:id/progress, for the node doing the work: authenticated by the job's own progress token
 * (`Authorization: Bearer <token>` or `X-Zeropool-Progress-Token`), not by an API key.
 */
export function jobProgressRoute(ctx: ApiContext, bodyLimit: string): Router {
  const router = Router();
  const reports = new Map<string, number>();
  router.post('/v1/jobs/:id/progress', jsonBody(bodyLimit), rejectUnstorableText, async (req, res) => {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(req.header('authorization') ?? '')?.[1] ?? req.header('x-zeropool-progress-token')?.trim();
    if (!token) throw new ApiError(401, 'unauthorized', 'missing progress token: send Authorization: Bearer <progress_token>');
    const id = String(req.params.id);
    if (!/^[0-9a-f-]{36}$/.test(id) || !(await progressTokenMatches(ctx.db, id, token))) {
      throw new ApiError(401, 'unauthorized', 'invalid progress token for this job');
    }
    const report = progressReportSchema.parse(req.body);
    const count = (reports.get(id) ?? 0) + 1;
    if (count > PROGRESS_REPORTS_PER_JOB) {
      throw new ApiError(429, 'progress_limit', `job ${id} has reported progress ${PROGRESS_REPORTS_PER_JOB} times, its limit`);
    }
    reports.delete(id);
    reports.set(id, count);
    if (reports.size > COUNTED_JOBS) reports.delete(reports.keys().next().value!);
    try {
      await ctx.client.workflow.getHandle(jobWorkflowId(id)).signal(jobProgressSignal, {
        completionTokens: report.completion_tokens,
        text: report.text,
        attempt: report.attempt,
        at: Date.now(),
      });
    } catch {
      throw new ApiError(409, 'conflict', `job ${id} is finished: progress is no longer taken`);
    }
    res.status(202).json({ id, accepted: true });
  });
  return router;
}
