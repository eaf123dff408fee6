/** Registered local GPU services in PostgreSQL, each owned by a workspace. */
import type { Pool, PoolClient } from 'pg';
import type { ServiceDefinition, ServiceRecord } from '../domain/service';
import { type PoolKey, splitPoolKey } from '../ids';

type Db = Pick<Pool | PoolClient, 'query'>;

const COLUMNS = 'workspace_id, name, definition, enabled, created_at, updated_at';
/** A `services` row as PostgreSQL returns it. */
interface ServiceRow {
  workspace_id: string;
  name: string;
  definition: ServiceDefinition;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}
const toService = (row: ServiceRow): ServiceRecord => ({
  workspaceId: row.workspace_id,
  name: row.name,
  definition: row.definition,
  enabled: row.enabled,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export async function getService(db: Db, workspaceId: string, name: string): Promise<ServiceRecord | undefined> {
  const result = await db.query<ServiceRow>(`SELECT ${COLUMNS} FROM services WHERE workspace_id = $1 AND name = $2`, [workspaceId, name]);
  return result.rows[0] ? toService(result.rows[0]) : undefined;
}

/** The service a pool key stands for (the Docker provider only drives registered services). */
export async function getServiceByPoolKey(db: Db, key: PoolKey): Promise<ServiceRecord | undefined> {
  const { workspaceId, poolName } = splitPoolKey(key);
  return getService(db, workspaceId, poolName);
}

/** A workspace's services (every service when no workspace is given), oldest first. */
export async function listServices(db: Db, workspaceId?: string): Promise<ServiceRecord[]> {
  const result = workspaceId
    ? await db.query<ServiceRow>(`SELECT ${COLUMNS} FROM services WHERE workspace_id = $1 ORDER BY created_at, name`, [workspaceId])
    : await db.query<ServiceRow>(`SELECT ${COLUMNS} FROM services ORDER BY created_at, name`);
  return result.rows.map(toService);
}

export async function setServiceEnabled(db: Db, workspaceId: string, name: string, enabled: boolean): Promise<void> {
  await db.query('UPDATE services SET enabled = $3, updated_at = now() WHERE workspace_id = $1 AND name = $2', [
    workspaceId,
    name,
    enabled,
  ]);
}

/** Removes a service and the pool it ran as. */
export async function deleteServiceAndPool(db: Pool, workspaceId: string, name: string): Promise<void> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    await client.query('DELETE FROM services WHERE workspace_id = $1 AND name = $2', [workspaceId, name]);
    await client.query('DELETE FROM pools WHERE workspace_id = $1 AND id = $2', [workspaceId, name]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}
