/** /v1/ledger (rows and chain verification) and /v1/analytics, for the caller's workspace. */
import { Router } from 'express';
import { z } from 'zod';
import { computeAnalytics, type PoolFigures } from '../../db/analytics';
import { verifyLedgerChain } from '../../db/ledger';
import type { LedgerMarks } from '../../db/ledger-marks';
import { ENTITY_ID_PATTERN } from '../../ids';
import { principalOf } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';

export const analyticsQuerySchema = z
  .object({
    from: z.string().datetime({ offset: true }).optional(),
    to: z.string().datetime({ offset: true }).optional(),
    pool: z.string().regex(ENTITY_ID_PATTERN).optional(),
  })
  .strict();

export const ledgerQuerySchema = z
  .object({
    pool: z.string().regex(ENTITY_ID_PATTERN).optional(),
    // Sequence numbers are PostgreSQL bigints; past what JSON numbers carry exactly is refused here, not by PostgreSQL.
    after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();

/** An anchor kept outside the database: a row number and its hash from an earlier verify (both or neither). */
export const ledgerVerifyQuerySchema = z
  .object({
    anchor_seq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    anchor_hash: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'a SHA-256 hash in hex (head_hash of an earlier verify)')
      .optional(),
  })
  .strict();

/** Snake-case figures, as dashboards of the earlier gateway read them. */
function presentFigures(f: Omit<PoolFigures, 'activeWindowSeconds' | 'referencePricePerHour'> & Partial<PoolFigures>) {
  return {
    jobs: f.jobs,
    jobs_processed: f.jobs.completed,
    tokens: f.tokens,
    gpu_seconds_billed: f.gpuSecondsBilled,
    cost_usd: f.costUsd,
    idle_seconds: f.idleSeconds,
    idle_tax_usd: f.idleTaxUsd,
    peak_nodes: f.peakNodes,
    always_on_cost_usd: f.alwaysOnCostUsd,
    savings_usd: f.savingsUsd,
    ...(f.referencePricePerHour !== undefined
      ? { reference_price_per_hour: f.referencePricePerHour, active_window_seconds: f.activeWindowSeconds }
      : {}),
    cold_starts: { count: f.coldStarts.count, p50_seconds: f.coldStarts.p50Seconds, p95_seconds: f.coldStarts.p95Seconds },
    queue_overhead_ms: f.queueOverheadMs,
  };
}

/** Routes for the ledger and analytics. */
export function ledgerRoutes(ctx: ApiContext, marks: LedgerMarks): Router {
  const router = Router();

  router.get('/analytics', async (req, res) => {
    const q = analyticsQuerySchema.parse(req.query);
    const from = q.from ? new Date(q.from) : undefined;
    const to = q.to ? new Date(q.to) : undefined;
    if (from && to && from >= to) throw new ApiError(400, 'invalid_request', '`from` must be before `to`');
    const a = await computeAnalytics(ctx.db, { workspaceId: principalOf(res).workspaceId, from, to, poolId: q.pool });
    res.json({
      workspace: a.workspaceId,
      window: { from: a.from.toISOString(), to: a.to.toISOString() },
      ...presentFigures(a.totals),
      pools: a.pools.map((p) => ({ pool: p.pool, ...presentFigures(p) })),
      formula: a.formula,
      // Field names of the earlier gateway, so its dashboards keep working.
      total_inferences_processed: a.totals.jobs.completed,
      total_tokens_generated: a.totals.tokens.output,
      aggregated_idle_tax_saved_usd: a.totals.savingsUsd,
      average_queue_overhead_ms: a.totals.queueOverheadMs.average,
    });
  });

  router.get('/ledger', async (req, res) => {
    const q = ledgerQuerySchema.parse(req.query);
    const limit = q.limit ?? 100;
    const rows = await ctx.db.query(
      `SELECT seq, event_key, event_type, occurred_at, pool_id, node_id, job_id, provider, market, gpu, price_per_hour, details, prev_hash, row_hash
         FROM ledger WHERE workspace_id = $1 AND seq > $2 AND ($3::text IS NULL OR pool_id = $3) ORDER BY seq LIMIT $4`,
      [principalOf(res).workspaceId, q.after ?? 0, q.pool ?? null, limit],
    );
    const events = rows.rows.map((r) => ({
      ...r,
      seq: Number(r.seq),
      occurred_at: r.occurred_at.toISOString(),
      price_per_hour: r.price_per_hour === null ? null : Number(r.price_per_hour),
    }));
    res.json({ events, next_after: events.length === limit ? events[events.length - 1].seq : null });
  });

  router.get('/ledger/verify', async (req, res) => {
    const q = ledgerVerifyQuerySchema.parse(req.query);
    if ((q.anchor_seq === undefined) !== (q.anchor_hash === undefined))
      throw new ApiError(400, 'invalid_request', 'anchor_seq and anchor_hash go together');
    const anchor = q.anchor_seq !== undefined && q.anchor_hash ? { seq: BigInt(q.anchor_seq), hash: q.anchor_hash } : undefined;
    const result = await verifyLedgerChain(ctx.db, principalOf(res).workspaceId, marks, anchor);
    res.json({
      workspace: result.workspaceId,
      ok: result.ok,
      rows_checked: result.rows,
      head_hash: result.headHash,
      first_broken: result.firstBroken
        ? { seq: Number(result.firstBroken.seq), event_key: result.firstBroken.eventKey, reason: result.firstBroken.reason }
        : null,
    });
  });

  return router;
}
