/** Workspaces (tenants) and their API keys. Keys are stored as SHA-256 digests, never in clear. */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { NEW_WORKSPACE_QUOTAS, type WorkspaceQuotas } from '../domain/quotas';

type Db = Pick<Pool, 'query'>;

/** A workspace as stored. */
export interface Workspace extends WorkspaceQuotas {
  id: string;
  name: string;
  maxJobsInFlight: number;
  jobsInFlight: number;
  createdAt: Date;
}

/** A key's stored record (the digest stays in the database layer and the auth check). */
export interface ApiKeyRecord {
  id: string;
  workspaceId: string;
  keyHash: Buffer;
  label: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** A `workspaces` row as PostgreSQL returns it. */
interface WorkspaceRow {
  id: string;
  name: string;
  max_jobs_in_flight: number;
  jobs_in_flight: number;
  created_at: Date;
  max_pools: number | null;
  max_nodes: number | null;
  min_service_priority: number;
  max_vram_gb: number | null;
  max_parked_requests: number | null;
}
const toWorkspace = (row: WorkspaceRow): Workspace => ({
  id: row.id,
  name: row.name,
  maxJobsInFlight: row.max_jobs_in_flight,
  jobsInFlight: row.jobs_in_flight,
  createdAt: row.created_at,
  maxPools: row.max_pools,
  maxNodes: row.max_nodes,
  minServicePriority: row.min_service_priority,
  maxVramGb: row.max_vram_gb,
  maxParkedRequests: row.max_parked_requests,
});

/** An `api_keys` row as PostgreSQL returns it. */
interface ApiKeyRow {
  id: string;
  workspace_id: string;
  key_hash: Buffer;
  label: string;
  created_at: Date;
  revoked_at: Date | null;
}
const API_KEY_COLUMNS = 'id, workspace_id, label, created_at, revoked_at';
const toApiKey = (row: Omit<ApiKeyRow, 'key_hash'>): Omit<ApiKeyRecord, 'keyHash'> => ({
  id: row.id,
  workspaceId: row.workspace_id,
  label: row.label,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
});

/** SHA-256 of a presented or issued key. Keys carry 192 random bits, so a fast digest is enough. */
export function keyDigest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** `zp_<12 hex id>_<secret>`: the id finds the record, the whole key is checked against its digest. */
export function parseKeyId(key: string): string | undefined {
  return /^zp_([0-9a-f]{12})_[A-Za-z0-9_-]{32}$/.exec(key)?.[1];
}

/** Creates a workspace; false if the id is taken. */
export async function createWorkspace(
  db: Db,
  id: string,
  name: string,
  maxJobsInFlight: number,
  quotas: WorkspaceQuotas = NEW_WORKSPACE_QUOTAS,
): Promise<Workspace | undefined> {
  const result = await db.query<WorkspaceRow>(
    `INSERT INTO workspaces (id, name, max_jobs_in_flight, max_pools, max_nodes, min_service_priority, max_vram_gb, max_parked_requests)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING *`,
    [id, name, maxJobsInFlight, quotas.maxPools, quotas.maxNodes, quotas.minServicePriority, quotas.maxVramGb, quotas.maxParkedRequests],
  );
  return result.rows[0] ? toWorkspace(result.rows[0]) : undefined;
}

export async function getWorkspace(db: Db, id: string): Promise<Workspace | undefined> {
  const result = await db.query<WorkspaceRow>('SELECT * FROM workspaces WHERE id = $1', [id]);
  return result.rows[0] ? toWorkspace(result.rows[0]) : undefined;
}

export async function listWorkspaces(db: Db): Promise<Workspace[]> {
  const result = await db.query<WorkspaceRow>('SELECT * FROM workspaces ORDER BY created_at, id');
  return result.rows.map(toWorkspace);
}

/** Changes a workspace's name, in-flight limit or quotas (a quota given as null becomes unlimited). */
export async function updateWorkspace(
  db: Db,
  id: string,
  patch: { name?: string; maxJobsInFlight?: number } & Partial<WorkspaceQuotas>,
): Promise<Workspace | undefined> {
  const result = await db.query<WorkspaceRow>(
    `UPDATE workspaces SET name = coalesce($2, name), max_jobs_in_flight = coalesce($3, max_jobs_in_flight),
       max_pools = CASE WHEN $4 THEN $5::int ELSE max_pools END,
       max_nodes = CASE WHEN $6 THEN $7::int ELSE max_nodes END,
       min_service_priority = coalesce($8, min_service_priority),
       max_vram_gb = CASE WHEN $9 THEN $10::float8 ELSE max_vram_gb END,
       max_parked_requests = CASE WHEN $11 THEN $12::int ELSE max_parked_requests END
     WHERE id = $1 RETURNING *`,
    [
      id,
      patch.name ?? null,
      patch.maxJobsInFlight ?? null,
      patch.maxPools !== undefined,
      patch.maxPools ?? null,
      patch.maxNodes !== undefined,
      patch.maxNodes ?? null,
      patch.minServicePriority ?? null,
      patch.maxVramGb !== undefined,
      patch.maxVramGb ?? null,
      patch.maxParkedRequests !== undefined,
      patch.maxParkedRequests ?? null,
    ],
  );
  return result.rows[0] ? toWorkspace(result.rows[0]) : undefined;
}

/** Issues a new key for a workspace. The clear key is returned once and never stored. */
export async function issueApiKey(db: Db, workspaceId: string, label: string): Promise<{ id: string; key: string; createdAt: Date }> {
  const id = randomBytes(6).toString('hex');
  const key = `zp_${id}_${randomBytes(24).toString('base64url')}`;
  const result = await db.query<{ created_at: Date }>(
    'INSERT INTO api_keys (id, workspace_id, key_hash, label) VALUES ($1, $2, $3, $4) RETURNING created_at',
    [id, workspaceId, keyDigest(key), label],
  );
  return { id, key, createdAt: result.rows[0].created_at };
}

export async function findApiKey(db: Db, id: string): Promise<ApiKeyRecord | undefined> {
  const result = await db.query<ApiKeyRow>(`SELECT ${API_KEY_COLUMNS}, key_hash FROM api_keys WHERE id = $1`, [id]);
  const row = result.rows[0];
  return row ? { ...toApiKey(row), keyHash: row.key_hash } : undefined;
}

export async function listApiKeys(db: Db, workspaceId: string): Promise<Array<Omit<ApiKeyRecord, 'keyHash'>>> {
  const result = await db.query<Omit<ApiKeyRow, 'key_hash'>>(
    `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY created_at`,
    [workspaceId],
  );
  return result.rows.map(toApiKey);
}

/** Revokes a key; false if the workspace has no such live key. */
export async function revokeApiKey(db: Db, workspaceId: string, id: string): Promise<boolean> {
  const result = await db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND workspace_id = $2 AND revoked_at IS NULL', [
    id,
    workspaceId,
  ]);
  return (result.rowCount ?? 0) > 0;
}
