/**
 * Quota checks that hold under concurrency: the workspace's row is locked while its pools are counted and the
 * new pool is written, so two creates racing for the last place cannot both get it.
 */
import type { Pool } from 'pg';
import { poolQuotaRefusal, type QuotaUsage, type WorkspaceQuotas } from '../domain/quotas';
import type { PoolConfig } from '../domain/types';

/** The workspace's quotas and what its pools hold now; with `lock`, its row stays locked until the transaction ends. */
async function quotasAndUsage(client: { query: Pool['query'] }, workspaceId: string, lock: boolean): Promise<WorkspaceQuotas & QuotaUsage> {
  const quotas = await client.query<{ max_pools: number | null; max_nodes: number | null; min_service_priority: number }>(
    `SELECT max_pools, max_nodes, min_service_priority FROM workspaces WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
    [workspaceId],
  );
  const usage = await client.query<{ pools: number; nodes: number }>(
    `SELECT count(*)::int AS pools, coalesce(sum((config->>'maxNodes')::int), 0)::int AS nodes FROM pools WHERE workspace_id = $1`,
    [workspaceId],
  );
  const q = quotas.rows[0];
  return {
    maxPools: q?.max_pools ?? null,
    maxNodes: q?.max_nodes ?? null,
    minServicePriority: q?.min_service_priority ?? 1,
    pools: usage.rows[0].pools,
    nodes: usage.rows[0].nodes,
  };
}

/** Writes a new pool if the workspace's quotas allow it: 'inserted', 'exists', or the refusal. */
export async function insertPoolWithinQuota(
  db: Pool,
  workspaceId: string,
  id: string,
  config: PoolConfig,
): Promise<'inserted' | 'exists' | { refused: string }> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const state = await quotasAndUsage(client, workspaceId, true);
    const exists = await client.query('SELECT 1 FROM pools WHERE workspace_id = $1 AND id = $2', [workspaceId, id]);
    if (exists.rowCount) {
      await client.query('ROLLBACK');
      return 'exists';
    }
    const refusal = poolQuotaRefusal(state, state, { newPool: true, addedNodes: config.maxNodes });
    if (refusal) {
      await client.query('ROLLBACK');
      return { refused: refusal };
    }
    await client.query('INSERT INTO pools (workspace_id, id, config) VALUES ($1, $2, $3)', [workspaceId, id, JSON.stringify(config)]);
    await client.query('COMMIT');
    return 'inserted';
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Why raising an existing pool's maxNodes from `current` to `next` is refused; undefined when it fits (checked, not locked). */
export async function poolResizeRefusal(db: Pool, workspaceId: string, current: number, next: number): Promise<string | undefined> {
  if (next <= current) return undefined;
  const state = await quotasAndUsage(db, workspaceId, false);
  return poolQuotaRefusal(state, state, { newPool: false, addedNodes: next - current });
}
