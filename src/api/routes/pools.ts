/** /v1/pools: create, list, read live state, change config, drain, resume, scale to zero, delete. */
import { Router } from 'express';
import { insertPoolWithinQuota, resizeWithinQuota } from '../../db/quotas';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { z } from 'zod';
import { timelineRowsForPool } from '../../db/ledger';
import { timelineSvg } from '../../domain/charts';
import { poolTimeline } from '../../domain/pool-timeline';
import { deletePool, getPool, listPools, openJobCount, setPoolDraining } from '../../db/store';
import { getService } from '../../db/services';
import { NEW_POOL_KEEP_ALIVE, poolConfigPatchSchema, poolConfigSchema } from '../../domain/pool-config';
import { DOCKER_PROVIDER } from '../../domain/service';
import type { PoolConfig, PoolView } from '../../domain/types';
import { ENTITY_ID_PATTERN, type PoolKey, poolKey, poolWorkflowId } from '../../ids';
import {
  drainPoolUpdate,
  preemptionCheckQuery,
  preemptNowUpdate,
  resumePoolUpdate,
  scaleToZeroUpdate,
  updatePoolConfigUpdate,
} from '../../workflows/messages';
import { principalOf } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { bootProgress, ensurePoolWorkflow, poolView, queryPool } from '../pool-workflows';
import { POOL_CACHE_MS } from '../job-service';

/**
 * `GET /v1/pools/:id/timeline[.svg]?hours=|minutes=`: a window up to 168 hours back; without either, the window
 * fits the activity (from the pool's first ledger row of the last 24 hours to now).
 */
export const timelineQuerySchema = z
  .object({
    hours: z.coerce.number().min(0.01).max(168).optional(),
    minutes: z.coerce
      .number()
      .min(1)
      .max(168 * 60)
      .optional(),
  })
  .strict();
/** The fitted window: at least this long, and never longer than a day. */
const FIT_MIN_MS = 60_000;
const FIT_MAX_MS = 24 * 3_600_000;
/** Requests drawn in a timeline at most (the newest). */
const TIMELINE_REQUEST_LIMIT = 50_000;

export const createPoolSchema = z
  .object({ id: z.string().regex(ENTITY_ID_PATTERN, 'lowercase letters, digits and dashes, at most 63') })
  .passthrough();

/** Every provider zeropool has, and how an operator turns it on (docs/providers.md). */
const PROVIDER_SWITCHES: Record<string, string> = {
  mock: 'always on',
  docker: 'a Docker engine must answer (DOCKER_ENABLED, DOCKER_SOCKET_PATH)',
  aws: 'set AWS_REGION (or AWS_EC2_ENABLED=true) and AWS credentials',
  hyperstack: 'set HYPERSTACK_API_KEY',
  runpod: 'set RUNPOD_API_KEY',
};

/** Known providers: a lane naming another one is refused at creation. */
export function checkProviders(config: PoolConfig, providers: string[], isService = false): void {
  const unknown = config.lanes.filter((l) => !providers.includes(l.provider)).map((l) => l.provider);
  if (unknown.length > 0) {
    const problems = [...new Set(unknown)].map((name) =>
      PROVIDER_SWITCHES[name]
        ? `provider ${name} is off on this server: ${PROVIDER_SWITCHES[name]}`
        : `unknown provider ${name} (zeropool has ${Object.keys(PROVIDER_SWITCHES).join(', ')})`,
    );
    throw new ApiError(400, 'invalid_request', `${problems.join('; ')}; on here: ${providers.join(', ')}`, { providers });
  }
  // A docker lane runs a service's container definition: a pool without one could never start a node there
  // (its requests would wait out their deadline for nothing).
  if (!isService && config.lanes.some((l) => l.provider === DOCKER_PROVIDER)) {
    throw new ApiError(
      400,
      'invalid_request',
      'the docker lane belongs to local services: register one with POST /v1/services (its pool is made for it)',
    );
  }
}

/** Routes for pools. */
export function poolRoutes(ctx: ApiContext & { providers: string[] }): Router {
  const router = Router();

  /** The caller's pool (another workspace's pool does not exist for it), with its key. */
  async function requirePool(res: Parameters<typeof principalOf>[0], id: string) {
    const workspaceId = principalOf(res).workspaceId;
    const pool = ENTITY_ID_PATTERN.test(id) ? await getPool(ctx.db, workspaceId, id) : undefined;
    if (!pool) throw new ApiError(404, 'not_found', `pool ${id} does not exist`);
    return { ...pool, key: poolKey(workspaceId, pool.id) };
  }

  /** A pool view named as the caller knows the pool (the workflow knows it by its key). */
  const asNamed = (pool: { id: string }, view: PoolView) => ({ id: pool.id, ...view, poolId: pool.id });

  const liveView = (pool: { id: string; key: PoolKey }): Promise<PoolView> => poolView(ctx, pool.key, pool.id);

  router.post('/', async (req, res) => {
    const { id, ...rest } = createPoolSchema.parse(req.body);
    const config = poolConfigSchema.parse({ preemptPriorityGap: ctx.defaultPreemptPriorityGap, keepAlive: NEW_POOL_KEEP_ALIVE, ...rest });
    checkProviders(config, ctx.providers);
    const workspaceId = principalOf(res).workspaceId;
    const inserted = await insertPoolWithinQuota(ctx.db, workspaceId, id, config);
    if (inserted === 'exists') throw new ApiError(409, 'conflict', `pool ${id} already exists`);
    if (inserted !== 'inserted') throw new ApiError(403, 'quota_exceeded', inserted.refused);
    await ensurePoolWorkflow(ctx, poolKey(workspaceId, id), config);
    res.status(201).location(`/v1/pools/${id}`).json({ id, config });
  });

  router.get('/', async (_req, res) => {
    const pools = await listPools(ctx.db, principalOf(res).workspaceId);
    res.json({ pools: pools.map((p) => ({ id: p.id, config: p.config, createdAt: p.createdAt, draining: p.draining })) });
  });

  router.get('/:id', async (req, res) => {
    const pool = await requirePool(res, req.params.id);
    const [view, booting] = await Promise.all([liveView(pool), bootProgress(ctx, pool.key)]);
    // A booting node shows what its provider says now; `billedSeconds` is the time since the provider accepted it.
    const nodes = view.nodes.map((n) => (n.state === 'provisioning' && booting[n.id] ? { ...n, providerStatus: booting[n.id] } : n));
    res.json({ createdAt: pool.createdAt, ...asNamed(pool, { ...view, nodes }) });
  });

  router.patch('/:id', async (req, res) => {
    const pool = await requirePool(res, req.params.id);
    const patch = poolConfigPatchSchema.parse(req.body);
    // Merged onto the config as stored under the workspace's lock (a racing PATCH's change is kept), counted
    // against the quota there, and written only once the pool's workflow took it.
    const outcome = await resizeWithinQuota(
      ctx.db,
      pool.workspaceId,
      pool.id,
      (current) => {
        const merged = poolConfigSchema.safeParse({ ...current.config, ...patch });
        if (!merged.success) throw new ApiError(400, 'invalid_request', merged.error.issues.map((i) => i.message).join('; '));
        checkProviders(merged.data, ctx.providers, current.service !== undefined);
        return { ...current, config: merged.data };
      },
      async (next) => {
        try {
          return await ctx.client.workflow
            .getHandle(poolWorkflowId(pool.key))
            .executeUpdate(updatePoolConfigUpdate, { args: [next.config] });
        } catch (err) {
          if (err instanceof WorkflowUpdateFailedError) throw new ApiError(409, 'conflict', String(err.cause?.message ?? err.message));
          throw err;
        }
      },
    );
    if (outcome === 'missing') throw new ApiError(404, 'not_found', `pool ${pool.id} does not exist`);
    if ('refused' in outcome) throw new ApiError(403, 'quota_exceeded', outcome.refused);
    res.json(asNamed(pool, outcome.applied));
  });

  /**
   * Deletes a pool that has nothing left: no node, no job queued or running, no accepted job on its way to the
   * queue. Otherwise a 409 says what is left and to drain first; zeropool never throws work away on a delete. The pool's ledger rows, its jobs' records and its workflow history stay; the
   * id may be used again (the new pool's nodes carry a new incarnation, so their ledger keys never collide).
   */
  router.delete('/:id', async (req, res) => {
    const pool = await requirePool(res, req.params.id);
    if (await getService(ctx.db, pool.workspaceId, pool.id))
      throw new ApiError(
        409,
        'conflict',
        `pool ${pool.id} runs the service of the same name: delete it with DELETE /v1/services/${pool.id}`,
      );
    await refuseWhileBusy(pool);
    // Close the door first: submissions see the drain within a second (their pool cache), so one that read the
    // pool before shows up in the second check below.
    if (!pool.draining) {
      await setPoolDraining(ctx.db, pool.workspaceId, pool.id, true);
      await new Promise((resolve) => setTimeout(resolve, POOL_CACHE_MS + 100));
      try {
        await refuseWhileBusy(pool);
      } catch (err) {
        await setPoolDraining(ctx.db, pool.workspaceId, pool.id, false);
        throw err;
      }
    }
    await deletePool(ctx.db, pool.workspaceId, pool.id);
    await ctx.client.workflow
      .getHandle(poolWorkflowId(pool.key))
      .terminate('pool deleted')
      .catch((err) => {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      });
    res.status(204).end();
  });

  /** A 409 naming what a pool still has: nodes (a stopped one bills its disk), jobs queued or running, accepted jobs on their way. */
  async function refuseWhileBusy(pool: { id: string; workspaceId: string; key: PoolKey }): Promise<void> {
    const view = await liveView(pool).catch((err) => {
      // A pool whose workflow is gone has nothing running; one that cannot answer may have: keep it.
      if (err instanceof ApiError && /not running/.test(err.message)) return undefined;
      throw err;
    });
    const open = await openJobCount(ctx.db, pool.workspaceId, pool.id);
    const nodes = view?.nodes.length ?? 0;
    const jobs = Math.max(open, (view?.queued ?? 0) + (view?.running ?? 0));
    if (nodes > 0 || jobs > 0)
      throw new ApiError(
        409,
        'conflict',
        `pool ${pool.id} still has ${nodes} node(s) and ${jobs} job(s) not ended: drain it first (POST /v1/pools/${pool.id}/drain), ` +
          'then delete it once it has no nodes',
      );
  }

  const operatorAction = (path: string, update: typeof drainPoolUpdate, draining?: boolean) =>
    router.post(`/:id/${path}`, async (req, res) => {
      const pool = await requirePool(res, req.params.id);
      // The API refuses new jobs from the moment a drain is asked for; the pool finishes what it has.
      if (draining !== undefined) await setPoolDraining(ctx.db, pool.workspaceId, pool.id, draining);
      const view = await ctx.client.workflow.getHandle(poolWorkflowId(pool.key)).executeUpdate(update);
      res.json(asNamed(pool, view));
    });
  operatorAction('drain', drainPoolUpdate, true);
  operatorAction('resume', resumePoolUpdate, false);
  operatorAction('scale-to-zero', scaleToZeroUpdate);

  /** The pool's recent activity from the ledger: nodes billed, requests running, marks. */
  async function timelineOf(pool: { id: string; workspaceId: string }, query: unknown) {
    const q = timelineQuerySchema.parse(query);
    if (q.hours !== undefined && q.minutes !== undefined) throw new ApiError(400, 'invalid_request', 'give hours or minutes, not both');
    const to = Date.now();
    const asked = q.minutes !== undefined ? q.minutes * 60_000 : q.hours !== undefined ? q.hours * 3_600_000 : undefined;
    let from = to - (asked ?? FIT_MAX_MS);
    const rows = await timelineRowsForPool(ctx.db, pool.workspaceId, pool.id, new Date(from), TIMELINE_REQUEST_LIMIT);
    if (asked === undefined) {
      // Fit: from a little before the first thing that happened in the day (a node asked for, a request run).
      const first = Math.min(
        ...rows.map((r) => r.occurred_at.getTime()).filter((at) => at >= from),
        ...rows.flatMap((r) =>
          Array.isArray(r.details.runs) ? r.details.runs.map((run: { startedAt?: number }) => Number(run.startedAt)) : [],
        ),
      );
      const span = Number.isFinite(first) ? Math.max(FIT_MIN_MS, (to - first) * 1.1) : 3_600_000;
      from = to - Math.min(FIT_MAX_MS, span);
    }
    return { from, to, fitted: asked === undefined, timeline: poolTimeline(rows, from, to) };
  }

  router.get('/:id/timeline', async (req, res) => {
    const pool = await requirePool(res, req.params.id);
    const { from, to, fitted, timeline } = await timelineOf(pool, req.query);
    res.json({ from: new Date(from).toISOString(), to: new Date(to).toISOString(), fitted, ...timeline });
  });

  router.get('/:id/timeline.svg', async (req, res) => {
    const pool = await requirePool(res, req.params.id);
    const { from, to, timeline } = await timelineOf(pool, req.query);
    const title = `${pool.id} · last ${spanLabel(to - from)} · ${timeline.requests} requests · peak ${timeline.peakNodes} nodes · ${timeline.nodeHours.toFixed(2)} node-hours · $${timeline.costUsd.toFixed(2)}`;
    res.type('image/svg+xml').send(timelineSvg(title, timeline.points, (to - from) / 1000, { marks: timeline.marks, axis: 'ago' }));
  });

  router.get('/:id/preempt/check', async (_req, res) => {
    const pool = await requirePool(res, _req.params.id);
    res.json(await queryPool(ctx, pool.key, pool.id, preemptionCheckQuery));
  });

  router.post('/:id/preempt', async (req, res) => {
    const pool = await requirePool(res, req.params.id);
    res.json(await ctx.client.workflow.getHandle(poolWorkflowId(pool.key)).executeUpdate(preemptNowUpdate));
  });

  return router;
}

/** "12 min", "6 h": a window's length as a title says it. */
function spanLabel(ms: number): string {
  return ms < 3 * 3_600_000 ? `${Math.round(ms / 60_000)} min` : `${Number((ms / 3_600_000).toFixed(1))} h`;
}
