/** Pool definitions and job records in PostgreSQL, each owned by a workspace. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import type { CallbackState } from './callbacks';
import type { JobView, PoolConfig } from '../domain/types';
import { splitPoolKey } from '../ids';

type Db = Pick<Pool, 'query'>;

/** A stored pool definition. */
export interface StoredPool {
  workspaceId: string;
  id: string;
  config: PoolConfig;
  createdAt: Date;
  /** Draining pools take no new jobs. */
  draining: boolean;
}

const POOL_COLUMNS = 'workspace_id, id, config, created_at, draining';
/** A `pools` row as PostgreSQL returns it. */
interface PoolRow {
  workspace_id: string;
  id: string;
  config: PoolConfig;
  created_at: Date;
  draining: boolean;
}
const toPool = (row: PoolRow): StoredPool => ({
  workspaceId: row.workspace_id,
  id: row.id,
  config: row.config,
  createdAt: row.created_at,
  draining: row.draining,
});

/** Marks a pool as draining (no new jobs) or accepting again. */
export async function setPoolDraining(db: Db, workspaceId: string, id: string, draining: boolean): Promise<void> {
  await db.query('UPDATE pools SET draining = $3, updated_at = now() WHERE workspace_id = $1 AND id = $2', [workspaceId, id, draining]);
}

/** One pool of a workspace, or undefined. */
export async function getPool(db: Db, workspaceId: string, id: string): Promise<StoredPool | undefined> {
  const result = await db.query<PoolRow>(`SELECT ${POOL_COLUMNS} FROM pools WHERE workspace_id = $1 AND id = $2`, [workspaceId, id]);
  return result.rows[0] ? toPool(result.rows[0]) : undefined;
}

/** A workspace's pools (or every pool when no workspace is given), oldest first. */
export async function listPools(db: Db, workspaceId?: string): Promise<StoredPool[]> {
  const result = workspaceId
    ? await db.query<PoolRow>(`SELECT ${POOL_COLUMNS} FROM pools WHERE workspace_id = $1 ORDER BY created_at, id`, [workspaceId])
    : await db.query<PoolRow>(`SELECT ${POOL_COLUMNS} FROM pools ORDER BY created_at, id`);
  return result.rows.map(toPool);
}

/** Result of recording a newly accepted job. */
export type InsertJobResult = { inserted: true } | { inserted: false; reason: 'limit'; limit: number };

/**
 * Records a job the API accepted (status queued) and takes one of its workspace's in-flight places, in one
 * statement: two submissions racing for the last place cannot both win.
 */
export async function insertJob(db: Db, view: JobView, progressToken?: string): Promise<InsertJobResult> {
  const { workspaceId, poolName } = splitPoolKey(view.pool);
  const tokenHash = progressToken ? createHash('sha256').update(progressToken).digest() : null;
  const result = await db.query(
    `WITH place AS (
       UPDATE workspaces SET jobs_in_flight = jobs_in_flight + 1
        WHERE id = $1 AND jobs_in_flight < max_jobs_in_flight RETURNING id)
     INSERT INTO jobs (id, workspace_id, pool_id, status, submitted_at, view, progress_token_hash)
     SELECT $2, place.id, $3, $4, to_timestamp($5 / 1000.0), $6, $7 FROM place`,
    [workspaceId, view.id, poolName, view.status, view.submittedAt, JSON.stringify(view), tokenHash],
  );
  if ((result.rowCount ?? 0) > 0) return { inserted: true };
  const limit = await db.query('SELECT max_jobs_in_flight FROM workspaces WHERE id = $1', [workspaceId]);
  return { inserted: false, reason: 'limit', limit: limit.rows[0]?.max_jobs_in_flight ?? 0 };
}

/**
 * Stores a job's terminal view and gives back its in-flight place. A terminal row is never overwritten,
 * so a retried write gives nothing back twice.
 */
export async function saveJobOutcome(db: Db, view: JobView): Promise<void> {
  const { workspaceId, poolName } = splitPoolKey(view.pool);
  const finishedAt = view.finishedAt ?? Date.now();
  const closed = await db.query(
    `WITH closed AS (
       UPDATE jobs SET status = $2, finished_at = to_timestamp($3 / 1000.0), view = $4
        WHERE id = $1 AND finished_at IS NULL RETURNING workspace_id)
     UPDATE workspaces SET jobs_in_flight = jobs_in_flight - 1 FROM closed WHERE workspaces.id = closed.workspace_id`,
    [view.id, view.status, finishedAt, JSON.stringify(view)],
  );
  if ((closed.rowCount ?? 0) > 0) return;
  // No open record: either it is terminal already (keep it) or it was never written (write it now).
  await db.query(
    `INSERT INTO jobs (id, workspace_id, pool_id, status, submitted_at, finished_at, view)
     VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0), to_timestamp($6 / 1000.0), $7) ON CONFLICT (id) DO NOTHING`,
    [view.id, workspaceId, poolName, view.status, view.submittedAt, finishedAt, JSON.stringify(view)],
  );
}

/** A job's stored view and callback state if it belongs to the workspace (another workspace's job does not exist). */
export async function getJob(db: Db, workspaceId: string, id: string): Promise<(JobView & { callback?: CallbackState }) | undefined> {
  const result = await db.query('SELECT view, callback FROM jobs WHERE id = $1 AND workspace_id = $2', [id, workspaceId]);
  const row = result.rows[0];
  return row ? { ...(row.view as JobView), ...(row.callback ? { callback: row.callback as CallbackState } : {}) } : undefined;
}

/** Whether `token` is the job's progress token (constant-time over digests); false for unknown jobs. */
export async function progressTokenMatches(db: Db, id: string, token: string): Promise<boolean> {
  const result = await db.query('SELECT progress_token_hash FROM jobs WHERE id = $1', [id]);
  const stored: Buffer | null | undefined = result.rows[0]?.progress_token_hash;
  const presented = createHash('sha256').update(token).digest();
  return timingSafeEqual(presented, stored ?? Buffer.alloc(32)) && stored !== null && stored !== undefined;
}

/** What `GET /v1/jobs` may filter on; `open` is every status before a terminal one (stored rows say `queued`). */
export interface JobListFilter {
  pool?: string;
  status?: JobView['status'] | 'open';
  /** Submitted at or after / before (ms). */
  since?: number;
  until?: number;
  limit: number;
  /** Where the last page ended: the last row's submission time (µs since the epoch) and id. */
  after?: { submittedUs: string; id: string };
}

/** A listed job: its stored view (terminal rows hold the final one) and where the page ends when it is the last. */
export interface ListedJob {
  view: JobView & { callback?: CallbackState };
  open: boolean;
  submittedUs: string;
}

/**
 * A workspace's jobs, newest first, one page (keyset on submission time and id, so a page never repeats or skips
 * a row when new jobs arrive meanwhile). The time is compared in microseconds, as PostgreSQL keeps it.
 */
export async function listJobs(db: Db, workspaceId: string, filter: JobListFilter): Promise<ListedJob[]> {
  const where = ['workspace_id = $1'];
  const params: unknown[] = [workspaceId];
  const add = (clause: (n: string) => string, value: unknown) => {
    params.push(value);
    where.push(clause(`$${params.length}`));
  };
  if (filter.pool !== undefined) add((n) => `pool_id = ${n}`, filter.pool);
  if (filter.status === 'open') where.push('finished_at IS NULL');
  else if (filter.status !== undefined) add((n) => `status = ${n} AND finished_at IS NOT NULL`, filter.status);
  if (filter.since !== undefined) add((n) => `submitted_at >= to_timestamp(${n} / 1000.0)`, filter.since);
  if (filter.until !== undefined) add((n) => `submitted_at < to_timestamp(${n} / 1000.0)`, filter.until);
  if (filter.after) {
    params.push(filter.after.submittedUs, filter.after.id);
    const [us, id] = [`$${params.length - 1}`, `$${params.length}`];
    where.push(`(submitted_at, id) < (timestamptz 'epoch' + ${us}::bigint * interval '1 microsecond', ${id})`);
  }
  params.push(filter.limit);
  const result = await db.query<{ view: JobView; callback: CallbackState | null; open: boolean; submitted_us: string }>(
    `SELECT view, callback, finished_at IS NULL AS open,
            (extract(epoch FROM submitted_at) * 1000000)::bigint::text AS submitted_us
       FROM jobs WHERE ${where.join(' AND ')}
      ORDER BY submitted_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  return result.rows.map((row) => ({
    view: { ...row.view, ...(row.callback ? { callback: row.callback } : {}) },
    open: row.open,
    submittedUs: row.submitted_us,
  }));
}

/** Removes a pool's definition (its jobs' records and its ledger rows stay); false when there was none. */
export async function deletePool(db: Db, workspaceId: string, id: string): Promise<boolean> {
  const result = await db.query('DELETE FROM pools WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
  return (result.rowCount ?? 0) > 0;
}

/** How many of a pool's accepted jobs have not ended (some may not have reached the pool's queue yet). */
export async function openJobCount(db: Db, workspaceId: string, poolId: string): Promise<number> {
  const result = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM jobs WHERE workspace_id = $1 AND pool_id = $2 AND finished_at IS NULL',
    [workspaceId, poolId],
  );
  return Number(result.rows[0]?.n ?? 0);
}
