/**
 * Analytics: SQL over the ledger, nothing else. Every money figure is billed seconds × a price recorded on
 * the ledger row that started the billing; no constant stands in for a cost.
 */
import type { Pool } from 'pg';

type Db = Pick<Pool, 'query'>;

/** What to analyse. */
export interface AnalyticsQuery {
  workspaceId: string;
  /** Window start; default: the workspace's first ledger row. */
  from?: Date;
  /** Window end (exclusive); default: now. */
  to?: Date;
  /** One pool (by name), or all of them. */
  poolId?: string;
}

/** Figures for one pool, or the workspace. */
export interface PoolFigures {
  jobs: { completed: number; failed: number; expired: number; cancelled: number };
  tokens: { input: number; output: number };
  gpuSecondsBilled: number;
  costUsd: number;
  idleSeconds: number;
  idleTaxUsd: number;
  peakNodes: number;
  /** Seconds of the window during which the pool existed (the counterfactual fleet runs this long). */
  activeWindowSeconds: number;
  referencePricePerHour: number | null;
  alwaysOnCostUsd: number;
  savingsUsd: number;
  coldStarts: { count: number; p50Seconds: number | null; p95Seconds: number | null };
  queueOverheadMs: { average: number | null; p95: number | null };
}

/** The analytics answer. */
export interface Analytics {
  workspaceId: string;
  from: Date;
  to: Date;
  totals: Omit<PoolFigures, 'peakNodes' | 'activeWindowSeconds' | 'referencePricePerHour'> & { peakNodes: number };
  pools: Array<PoolFigures & { pool: string }>;
  formula: Record<string, string>;
}

/** How each figure is computed; the API returns it next to the figures. */
export const FORMULA = {
  gpu_seconds_billed:
    'sum over nodes of seconds from node_provisioning to node_terminated (or the window end), clipped to the window, less the seconds it was stopped (node_stopped to its next node_started or node_terminated) or asleep (node_slept to its next node_woke or node_terminated)',
  cost_usd:
    'sum over nodes of billed seconds × price_per_hour of its node_provisioning row / 3600, plus its stopped seconds × the stoppedPricePerHour of each node_stopped row / 3600, plus its seconds asleep × the sleepingPricePerHour of each node_slept row / 3600',
  idle_tax_usd:
    'sum over nodes of (billed seconds during which no job ran on the node) × its price_per_hour / 3600; job run intervals come from the runs of job_* rows',
  always_on_cost_usd:
    "per pool: peak concurrent nodes in the window × the pool's on-demand reference price (referencePricePerHour of its node_provisioning rows; the dearest price it paid when absent) × hours of the window during which the pool existed",
  savings_usd: 'always_on_cost_usd − cost_usd, per pool, summed',
  cold_start_seconds: 'node_ready time − node_provisioning time of the same node, for nodes that became ready in the window',
  queue_overhead_ms: 'queueMs (submission → placement) of jobs that ended in the window and were placed',
  aggregated_idle_tax_saved_usd: 'the same figure as savings_usd (the earlier gateway named it so)',
};

const JOB_EVENTS = ['job_completed', 'job_failed', 'job_expired', 'job_cancelled'];
const round = (value: number, digits = 6) => Math.round(value * 10 ** digits) / 10 ** digits;

interface NodeRow {
  pool_id: string;
  node_id: string;
  price: number;
  ref_price: number | null;
  start_at: Date;
  end_at: Date;
  /** At the GPU's price: the node's billed span less its time stopped or asleep. */
  billed_seconds: number;
  stopped_seconds: number;
  /** The stopped and asleep time at their rungs' prices. */
  storage_usd: number;
  busy_seconds: number;
}

/** Computes the analytics of a workspace (or one of its pools) over a window. */
export async function computeAnalytics(db: Db, query: AnalyticsQuery): Promise<Analytics> {
  const to = query.to ?? new Date();
  const firstRow = await db.query<{ first: Date | null }>('SELECT min(occurred_at) AS first FROM ledger WHERE workspace_id = $1', [
    query.workspaceId,
  ]);
  const from = query.from ?? firstRow.rows[0]?.first ?? to;
  const params = [query.workspaceId, from, to, query.poolId ?? null];
  const poolFilter = '($4::text IS NULL OR pool_id = $4)';

  // Billing intervals clipped to the window, and the part of each during which some job ran on the node.
  const nodes = await db.query<NodeRow>(
    `WITH prov AS (
       SELECT pool_id, node_id, min(occurred_at) AS start_at, max(price_per_hour)::float8 AS price,
              max((details->>'referencePricePerHour')::numeric)::float8 AS ref_price
         FROM ledger WHERE workspace_id = $1 AND event_type = 'node_provisioning' AND ${poolFilter}
        GROUP BY pool_id, node_id),
     ended AS (
       SELECT node_id, min(occurred_at) AS end_at FROM ledger
        WHERE workspace_id = $1 AND event_type = 'node_terminated' AND ${poolFilter} GROUP BY node_id),
     billed AS (
       SELECT p.pool_id, p.node_id, p.price, p.ref_price,
              greatest(p.start_at, $2::timestamptz) AS start_at, least(coalesce(e.end_at, $3::timestamptz), $3::timestamptz) AS end_at
         FROM prov p LEFT JOIN ended e USING (node_id)),
     stops AS (
       -- The rungs below running: from each node_stopped row to the node's next start or end, billed at its
       -- stopped price; from each node_slept row to its next wake or end, billed at its sleeping price.
       SELECT s.node_id, coalesce((s.details->>'stoppedPricePerHour')::float8, (s.details->>'sleepingPricePerHour')::float8, 0) AS stop_price,
              tstzrange(s.occurred_at, coalesce((SELECT min(x.occurred_at) FROM ledger x
                 WHERE x.workspace_id = $1 AND x.node_id = s.node_id
                   AND x.event_type IN (CASE s.event_type WHEN 'node_stopped' THEN 'node_started' ELSE 'node_woke' END, 'node_terminated')
                   AND x.occurred_at >= s.occurred_at), 'infinity')) AS span
         FROM ledger s WHERE s.workspace_id = $1 AND s.event_type IN ('node_stopped', 'node_slept') AND ${poolFilter}),
     runs AS (
       SELECT r->>'nodeId' AS node_id,
              range_agg(tstzrange(to_timestamp((r->>'startedAt')::float8 / 1000), to_timestamp((r->>'endedAt')::float8 / 1000))) AS busy
         FROM ledger l CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(l.details->'runs') = 'array' THEN l.details->'runs' ELSE '[]'::jsonb END) r
        WHERE l.workspace_id = $1 AND l.event_type = ANY($5) AND l.occurred_at >= $2 AND ($4::text IS NULL OR l.pool_id = $4)
          AND (r->>'endedAt')::float8 >= (r->>'startedAt')::float8
        GROUP BY 1)
     SELECT b.pool_id, b.node_id, b.price, b.ref_price, b.start_at, b.end_at,
            extract(epoch FROM b.end_at - b.start_at)::float8 - coalesce(st.stopped_seconds, 0) AS billed_seconds,
            coalesce(st.stopped_seconds, 0) AS stopped_seconds, coalesce(st.storage_usd, 0) AS storage_usd,
            coalesce((SELECT sum(extract(epoch FROM upper(x) - lower(x)))
                        FROM unnest(tstzmultirange(tstzrange(b.start_at, b.end_at)) * r.busy) x), 0)::float8 AS busy_seconds
       FROM billed b LEFT JOIN runs r USING (node_id)
       LEFT JOIN LATERAL (
         SELECT sum(extract(epoch FROM upper(w) - lower(w)))::float8 AS stopped_seconds,
                sum(extract(epoch FROM upper(w) - lower(w)) * x.stop_price / 3600)::float8 AS storage_usd
           FROM stops x CROSS JOIN LATERAL (SELECT x.span * tstzrange(b.start_at, b.end_at) AS w) clipped
          WHERE x.node_id = b.node_id AND NOT isempty(w)) st ON true
      WHERE b.end_at > b.start_at
      ORDER BY b.pool_id, b.start_at`,
    [...params, JOB_EVENTS],
  );

  const jobs = await db.query<{
    pool_id: string;
    completed: string;
    failed: string;
    expired: string;
    cancelled: string;
    tokens_in: string;
    tokens_out: string;
    queue_avg: number | null;
    queue_p95: number | null;
  }>(
    `SELECT pool_id,
            count(*) FILTER (WHERE event_type = 'job_completed') AS completed,
            count(*) FILTER (WHERE event_type = 'job_failed') AS failed,
            count(*) FILTER (WHERE event_type = 'job_expired') AS expired,
            count(*) FILTER (WHERE event_type = 'job_cancelled') AS cancelled,
            coalesce(sum((details->'usage'->>'promptTokens')::bigint), 0) AS tokens_in,
            coalesce(sum((details->'usage'->>'completionTokens')::bigint), 0) AS tokens_out,
            avg((details->>'queueMs')::float8) AS queue_avg,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY (details->>'queueMs')::float8) AS queue_p95
       FROM ledger
      WHERE workspace_id = $1 AND event_type = ANY($5) AND occurred_at >= $2 AND occurred_at < $3 AND ${poolFilter}
      GROUP BY GROUPING SETS ((pool_id), ())`,
    [...params, JOB_EVENTS],
  );

  const coldStarts = await db.query<{ pool_id: string | null; count: string; p50: number | null; p95: number | null }>(
    `SELECT r.pool_id, count(*) AS count,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.occurred_at - p.occurred_at)::float8) AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.occurred_at - p.occurred_at)::float8) AS p95
       FROM ledger r
       JOIN ledger p ON p.workspace_id = r.workspace_id AND p.node_id = r.node_id AND p.event_type = 'node_provisioning'
      WHERE r.workspace_id = $1 AND r.event_type = 'node_ready' AND r.occurred_at >= $2 AND r.occurred_at < $3
        AND ($4::text IS NULL OR r.pool_id = $4)
      GROUP BY GROUPING SETS ((r.pool_id), ())`,
    params,
  );

  const poolStarts = await db.query<{ pool_id: string; first: Date }>(
    `SELECT pool_id, min(occurred_at) AS first FROM ledger
      WHERE workspace_id = $1 AND pool_id IS NOT NULL AND occurred_at < $2 AND ($3::text IS NULL OR pool_id = $3) GROUP BY pool_id`,
    [query.workspaceId, to, query.poolId ?? null],
  );

  const poolIds = new Set<string>([...poolStarts.rows.map((r) => r.pool_id)]);
  const pools = [...poolIds].sort().map((pool) => {
    const poolNodes = nodes.rows.filter((n) => n.pool_id === pool);
    const jobRow = jobs.rows.find((r) => r.pool_id === pool);
    const coldRow = coldStarts.rows.find((r) => r.pool_id === pool);
    const firstSeen = poolStarts.rows.find((r) => r.pool_id === pool)!.first;
    const windowStart = Math.max(from.getTime(), firstSeen.getTime());
    const activeWindowSeconds = Math.max(0, (to.getTime() - windowStart) / 1000);
    const costUsd = poolNodes.reduce((sum, n) => sum + (n.billed_seconds * n.price) / 3600 + n.storage_usd, 0);
    const idleTaxUsd = poolNodes.reduce((sum, n) => sum + ((n.billed_seconds - n.busy_seconds) * n.price) / 3600, 0);
    const refPrices = poolNodes.map((n) => n.ref_price).filter((p): p is number => p !== null);
    const referencePricePerHour =
      refPrices.length > 0 ? Math.max(...refPrices) : poolNodes.length > 0 ? Math.max(...poolNodes.map((n) => n.price)) : null;
    const peakNodes = peakConcurrency(poolNodes.map((n) => [n.start_at.getTime(), n.end_at.getTime()]));
    const alwaysOnCostUsd = referencePricePerHour === null ? 0 : (peakNodes * referencePricePerHour * activeWindowSeconds) / 3600;
    const figures: PoolFigures & { pool: string } = {
      pool,
      jobs: jobCounts(jobRow),
      tokens: { input: Number(jobRow?.tokens_in ?? 0), output: Number(jobRow?.tokens_out ?? 0) },
      gpuSecondsBilled: round(
        poolNodes.reduce((sum, n) => sum + n.billed_seconds, 0),
        3,
      ),
      costUsd: round(costUsd),
      idleSeconds: round(
        poolNodes.reduce((sum, n) => sum + n.billed_seconds - n.busy_seconds, 0),
        3,
      ),
      idleTaxUsd: round(idleTaxUsd),
      peakNodes,
      activeWindowSeconds: round(activeWindowSeconds, 3),
      referencePricePerHour,
      alwaysOnCostUsd: round(alwaysOnCostUsd),
      savingsUsd: round(alwaysOnCostUsd - costUsd),
      coldStarts: coldStartFigures(coldRow),
      queueOverheadMs: queueFigures(jobRow),
    };
    return figures;
  });

  const sum = (pick: (p: PoolFigures) => number) => pools.reduce((total, p) => total + pick(p), 0);
  const totalJobs = jobs.rows.find((r) => r.pool_id === null);
  return {
    workspaceId: query.workspaceId,
    from,
    to,
    pools,
    formula: FORMULA,
    totals: {
      jobs: jobCounts(totalJobs),
      tokens: { input: Number(totalJobs?.tokens_in ?? 0), output: Number(totalJobs?.tokens_out ?? 0) },
      gpuSecondsBilled: round(
        sum((p) => p.gpuSecondsBilled),
        3,
      ),
      costUsd: round(sum((p) => p.costUsd)),
      idleSeconds: round(
        sum((p) => p.idleSeconds),
        3,
      ),
      idleTaxUsd: round(sum((p) => p.idleTaxUsd)),
      peakNodes: peakConcurrency(nodes.rows.map((n) => [n.start_at.getTime(), n.end_at.getTime()])),
      alwaysOnCostUsd: round(sum((p) => p.alwaysOnCostUsd)),
      savingsUsd: round(sum((p) => p.savingsUsd)),
      coldStarts: coldStartFigures(coldStarts.rows.find((r) => r.pool_id === null)),
      queueOverheadMs: queueFigures(totalJobs),
    },
  };
}

function jobCounts(row: { completed: string; failed: string; expired: string; cancelled: string } | undefined) {
  return {
    completed: Number(row?.completed ?? 0),
    failed: Number(row?.failed ?? 0),
    expired: Number(row?.expired ?? 0),
    cancelled: Number(row?.cancelled ?? 0),
  };
}

function coldStartFigures(row: { count: string; p50: number | null; p95: number | null } | undefined) {
  return {
    count: Number(row?.count ?? 0),
    p50Seconds: row?.p50 == null ? null : round(row.p50, 3),
    p95Seconds: row?.p95 == null ? null : round(row.p95, 3),
  };
}

function queueFigures(row: { queue_avg: number | null; queue_p95: number | null } | undefined) {
  return { average: row?.queue_avg == null ? null : round(row.queue_avg, 1), p95: row?.queue_p95 == null ? null : round(row.queue_p95, 1) };
}

/** Most intervals open at one instant (an interval ending when another starts does not overlap it). */
export function peakConcurrency(intervals: Array<[number, number]>): number {
  const edges = intervals.flatMap(([start, end]) => [
    [start, 1],
    [end, -1],
  ]);
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let peak = 0;
  for (const [, change] of edges) {
    open += change;
    peak = Math.max(peak, open);
  }
  return peak;
}
