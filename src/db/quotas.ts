/**
 * Quota checks that hold under concurrency: the workspace's row is locked while its pools are counted and a new
 * or resized pool is written, so two creates or resizes racing for the last place cannot both get it.
 */
import type { Pool } from 'pg';
import { poolQuotaRefusal, type QuotaUsage, type WorkspaceQuotas } from '../domain/quotas';
import type { ServiceDefinition } from '../domain/service';
import type { PoolConfig } from '../domain/types';

/** The workspace's quotas and what its pools hold now; with `lock`, its row stays locked until the transaction ends. */
async function quotasAndUsage(client: { query: Pool['query'] }, workspaceId: string, lock: boolean): Promise<WorkspaceQuotas & QuotaUsage> {
  const quotas = await client.query<{
    max_pools: number | null;
    max_nodes: number | null;
    min_service_priority: number;
    max_vram_gb: number | null;
    max_parked_requests: number | null;
  }>(
    `SELECT max_pools, max_nodes, min_service_priority, max_vram_gb, max_parked_requests FROM workspaces WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
    [workspaceId],
  );
  // A service's pool has the service's name; its VRAM counts at the pool's maxNodes (what it could claim).
  const usage = await client.query<{ pools: number; nodes: number; vram_gb: number }>(
    `SELECT count(*)::int AS pools, coalesce(sum((p.config->>'maxNodes')::int), 0)::int AS nodes,
            coalesce(sum(coalesce((s.definition->>'vramGb')::float8, 0) * (p.config->>'maxNodes')::int), 0)::float8 AS vram_gb
       FROM pools p LEFT JOIN services s ON s.workspace_id = p.workspace_id AND s.name = p.id
      WHERE p.workspace_id = $1`,
    [workspaceId],
  );
  const q = quotas.rows[0];
  return {
    maxPools: q?.max_pools ?? null,
    maxNodes: q?.max_nodes ?? null,
    minServicePriority: q?.min_service_priority ?? 1,
    maxVramGb: q?.max_vram_gb ?? null,
    maxParkedRequests: q?.max_parked_requests ?? null,
    pools: usage.rows[0].pools,
    nodes: usage.rows[0].nodes,
    vramGb: usage.rows[0].vram_gb,
  };
}

/**
 * Writes a new pool (and the service it runs, if any, in the same transaction: its VRAM counts from then on)
 * if the workspace's quotas allow it: 'inserted', 'exists', or the refusal.
 */
export async function insertPoolWithinQuota(
  db: Pool,
  workspaceId: string,
  id: string,
  config: PoolConfig,
  service?: ServiceDefinition,
): Promise<'inserted' | 'exists' | { refused: string }> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const state = await quotasAndUsage(client, workspaceId, true);
    const exists = await client.query(
      'SELECT 1 FROM pools WHERE workspace_id = $1 AND id = $2 UNION ALL SELECT 1 FROM services WHERE workspace_id = $1 AND name = $2',
      [workspaceId, id],
    );
    if (exists.rowCount) {
      await client.query('ROLLBACK');
      return 'exists';
    }
    const refusal = poolQuotaRefusal(state, state, {
      newPool: true,
      addedNodes: config.maxNodes,
      addedVramGb: (service?.vramGb ?? 0) * config.maxNodes,
    });
    if (refusal) {
      await client.query('ROLLBACK');
      return { refused: refusal };
    }
    await client.query('INSERT INTO pools (workspace_id, id, config) VALUES ($1, $2, $3)', [workspaceId, id, JSON.stringify(config)]);
    if (service) {
      await client.query('INSERT INTO services (workspace_id, name, definition) VALUES ($1, $2, $3)', [
        workspaceId,
        id,
        JSON.stringify(service),
      ]);
    }
    await client.query('COMMIT');
    return 'inserted';
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** A pool's stored config and, for a service's pool, the service's definition, as read under the lock. */
export interface StoredPoolAndService {
  config: PoolConfig;
  service?: ServiceDefinition;
}

/**
 * Changes an existing pool (and the service it runs, if any) under the workspace's row lock, as creates are:
 * the pool is read afresh under the lock, `plan` builds the change from what is stored (so two racing PATCHes
 * never both count from the same old size), growth in nodes and VRAM is counted against the quota with every
 * other pool as stored, `apply` (the pool workflow's update) runs while the lock is held, and the rows are
 * written in the same transaction. A refusal, or a `plan` or `apply` that throws, writes nothing. Only growth is
 * refused (a workspace the admin put over its quota may still shrink).
 */
export async function resizeWithinQuota<T>(
  db: Pool,
  workspaceId: string,
  poolId: string,
  plan: (current: StoredPoolAndService) => StoredPoolAndService,
  apply: (next: StoredPoolAndService) => Promise<T>,
): Promise<{ applied: T } | { refused: string } | 'missing'> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const state = await quotasAndUsage(client, workspaceId, true);
    const stored = await client.query<{ config: PoolConfig; definition: ServiceDefinition | null }>(
      `SELECT p.config, s.definition FROM pools p LEFT JOIN services s ON s.workspace_id = p.workspace_id AND s.name = p.id
        WHERE p.workspace_id = $1 AND p.id = $2`,
      [workspaceId, poolId],
    );
    const row = stored.rows[0];
    if (!row) {
      await client.query('ROLLBACK');
      return 'missing';
    }
    const current: StoredPoolAndService = { config: row.config, ...(row.definition ? { service: row.definition } : {}) };
    const next = plan(current);
    const vramOf = (p: StoredPoolAndService) => (p.service?.vramGb ?? 0) * p.config.maxNodes;
    const addedNodes = next.config.maxNodes - current.config.maxNodes;
    const addedVramGb = vramOf(next) - vramOf(current);
    const refusal =
      addedNodes > 0 || addedVramGb > 0 ? poolQuotaRefusal(state, state, { newPool: false, addedNodes, addedVramGb }) : undefined;
    if (refusal) {
      await client.query('ROLLBACK');
      return { refused: refusal };
    }
    await client.query('UPDATE pools SET config = $3, updated_at = now() WHERE workspace_id = $1 AND id = $2', [
      workspaceId,
      poolId,
      JSON.stringify(next.config),
    ]);
    if (next.service)
      await client.query('UPDATE services SET definition = $3, updated_at = now() WHERE workspace_id = $1 AND name = $2', [
        workspaceId,
        poolId,
        JSON.stringify(next.service),
      ]);
    const applied = await apply(next);
    await client.query('COMMIT');
    return { applied };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The workspace's parked-request quota (null: none). */
export async function parkedRequestQuota(db: Pool, workspaceId: string): Promise<number | null> {
  const result = await db.query<{ max_parked_requests: number | null }>('SELECT max_parked_requests FROM workspaces WHERE id = $1', [
    workspaceId,
  ]);
  return result.rows[0]?.max_parked_requests ?? null;
}

/** The service priority the admin granted each of these workspaces (their minServicePriority), for VRAM eviction. */
export async function grantedPriorities(db: Pick<Pool, 'query'>, workspaceIds: string[]): Promise<Map<string, number>> {
  if (workspaceIds.length === 0) return new Map();
  const result = await db.query<{ id: string; min_service_priority: number }>(
    'SELECT id, min_service_priority FROM workspaces WHERE id = ANY($1)',
    [[...new Set(workspaceIds)]],
  );
  return new Map(result.rows.map((r) => [r.id, r.min_service_priority]));
}
