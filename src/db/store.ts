/** Pool definitions and job records in PostgreSQL. */
import type { Pool } from 'pg';
import type { JobView, PoolConfig } from '../domain/types';

/** A stored pool definition. */
export interface StoredPool {
  id: string;
  config: PoolConfig;
  createdAt: Date;
  /** Draining pools take no new jobs. */
  draining: boolean;
}

/** Inserts a pool; returns false if the id is taken. */
export async function insertPool(db: Pick<Pool, 'query'>, id: string, config: PoolConfig): Promise<boolean> {
  const result = await db.query('INSERT INTO pools (id, config) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, JSON.stringify(config)]);
  return (result.rowCount ?? 0) > 0;
}

/** Replaces a pool's config. */
export async function updatePoolConfig(db: Pick<Pool, 'query'>, id: string, config: PoolConfig): Promise<void> {
  await db.query('UPDATE pools SET config = $2, updated_at = now() WHERE id = $1', [id, JSON.stringify(config)]);
}

/** Marks a pool as draining (no new jobs) or accepting again. */
export async function setPoolDraining(db: Pick<Pool, 'query'>, id: string, draining: boolean): Promise<void> {
  await db.query('UPDATE pools SET draining = $2, updated_at = now() WHERE id = $1', [id, draining]);
}

/** One pool, or undefined. */
export async function getPool(db: Pick<Pool, 'query'>, id: string): Promise<StoredPool | undefined> {
  const result = await db.query('SELECT id, config, created_at, draining FROM pools WHERE id = $1', [id]);
  const row = result.rows[0];
  return row ? { id: row.id, config: row.config, createdAt: row.created_at, draining: row.draining } : undefined;
}

/** Every pool, oldest first. */
export async function listPools(db: Pick<Pool, 'query'>): Promise<StoredPool[]> {
  const result = await db.query('SELECT id, config, created_at, draining FROM pools ORDER BY created_at, id');
  return result.rows.map((row) => ({ id: row.id, config: row.config, createdAt: row.created_at, draining: row.draining }));
}

/** Records a job the API accepted (status queued). */
export async function insertJob(db: Pick<Pool, 'query'>, view: JobView): Promise<void> {
  await db.query(
    `INSERT INTO jobs (id, pool_id, status, submitted_at, view) VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), $5)
     ON CONFLICT (id) DO NOTHING`,
    [view.id, view.pool, view.status, view.submittedAt, JSON.stringify(view)],
  );
}

/** Stores a job's terminal view. A terminal row is never overwritten by a later write. */
export async function saveJobOutcome(db: Pick<Pool, 'query'>, view: JobView): Promise<void> {
  await db.query(
    `INSERT INTO jobs (id, pool_id, status, submitted_at, finished_at, view)
     VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), to_timestamp($5 / 1000.0), $6)
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, finished_at = EXCLUDED.finished_at, view = EXCLUDED.view
     WHERE jobs.finished_at IS NULL`,
    [view.id, view.pool, view.status, view.submittedAt, view.finishedAt ?? Date.now(), JSON.stringify(view)],
  );
}

/** A job's stored view, or undefined. */
export async function getJob(db: Pick<Pool, 'query'>, id: string): Promise<JobView | undefined> {
  const result = await db.query('SELECT view FROM jobs WHERE id = $1', [id]);
  return result.rows[0]?.view as JobView | undefined;
}
