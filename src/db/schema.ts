/** PostgreSQL schema: numbered migrations, applied once each, in order, under an advisory lock. */
import type { Pool } from 'pg';

/** The first schema (issue 2). Idempotent, so databases made before migrations were numbered take it too. */
const BASE = `
CREATE TABLE IF NOT EXISTS pools (
  id          TEXT PRIMARY KEY,
  config      JSONB NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE pools ADD COLUMN IF NOT EXISTS draining BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE IF NOT EXISTS jobs (
  id           TEXT PRIMARY KEY,
  pool_id      TEXT NOT NULL,
  status       TEXT NOT NULL,
  submitted_at TIMESTAMPTZ NOT NULL,
  finished_at  TIMESTAMPTZ,
  view         JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_pool_idx ON jobs (pool_id, submitted_at);

CREATE TABLE IF NOT EXISTS ledger (
  id             BIGSERIAL PRIMARY KEY,
  event_key      TEXT NOT NULL UNIQUE,
  event_type     TEXT NOT NULL,
  occurred_at    TIMESTAMPTZ NOT NULL,
  recorded_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  pool_id        TEXT,
  node_id        TEXT,
  job_id         TEXT,
  provider       TEXT,
  market         TEXT,
  gpu            TEXT,
  price_per_hour NUMERIC(14, 6),
  details        JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS ledger_pool_time_idx ON ledger (pool_id, occurred_at);

CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS ledger_append_only ON ledger;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP TRIGGER IF EXISTS ledger_no_truncate ON ledger;
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
`;

/**
 * Workspaces (tenants) and their keys; pools, jobs and ledger rows belong to one. Rows made before this
 * belong to the bootstrap workspace "default". The ledger gains a hash chain per workspace.
 */
const WORKSPACES = `
CREATE TABLE workspaces (
  id                 TEXT PRIMARY KEY,
  name               TEXT NOT NULL,
  max_jobs_in_flight INTEGER NOT NULL,
  jobs_in_flight     INTEGER NOT NULL DEFAULT 0 CHECK (jobs_in_flight >= 0),
  created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  key_hash     BYTEA NOT NULL,
  label        TEXT NOT NULL DEFAULT '',
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_workspace_idx ON api_keys (workspace_id);

-- The bootstrap workspace: the admin key acts in it, and everything made before workspaces belongs to it.
INSERT INTO workspaces (id, name, max_jobs_in_flight) VALUES ('default', 'Default workspace', 1000);

ALTER TABLE pools ADD COLUMN workspace_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE pools DROP CONSTRAINT pools_pkey;
ALTER TABLE pools ADD PRIMARY KEY (workspace_id, id);

ALTER TABLE jobs ADD COLUMN workspace_id TEXT NOT NULL DEFAULT 'default';
CREATE INDEX jobs_workspace_open_idx ON jobs (workspace_id) WHERE finished_at IS NULL;

ALTER TABLE ledger ADD COLUMN workspace_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE ledger ADD COLUMN seq BIGINT;
ALTER TABLE ledger ADD COLUMN prev_hash TEXT;
ALTER TABLE ledger ADD COLUMN row_hash TEXT;
CREATE UNIQUE INDEX ledger_chain_idx ON ledger (workspace_id, seq);
CREATE INDEX ledger_workspace_time_idx ON ledger (workspace_id, occurred_at);

-- The text a row's hash covers: every column but the surrogate id, as a JSON array (unambiguous, and
-- jsonb prints deterministically), prefixed by the previous row's hash.
CREATE FUNCTION ledger_row_digest(prev TEXT, r ledger) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    prev, r.workspace_id, r.seq, r.event_key, r.event_type,
    (extract(epoch FROM r.occurred_at) * 1000000)::bigint, (extract(epoch FROM r.recorded_at) * 1000000)::bigint,
    r.pool_id, r.node_id, r.job_id, r.provider, r.market, r.gpu, r.price_per_hour::text, r.details
  )::text, 'UTF8')), 'hex')
$$;

-- Chains each new row to the last row of its workspace. The advisory lock orders concurrent writers of one
-- workspace; a row refused by ON CONFLICT DO NOTHING leaves no gap because nothing was written.
CREATE FUNCTION ledger_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last_seq BIGINT;
  last_hash TEXT;
BEGIN
  PERFORM pg_advisory_xact_lock(734002, hashtext(NEW.workspace_id));
  SELECT seq, row_hash INTO last_seq, last_hash FROM ledger
   WHERE workspace_id = NEW.workspace_id ORDER BY seq DESC LIMIT 1;
  NEW.seq := coalesce(last_seq, 0) + 1;
  NEW.prev_hash := coalesce(last_hash, 'genesis');
  NEW.row_hash := ledger_row_digest(NEW.prev_hash, NEW);
  RETURN NEW;
END $$;

-- Rows written before the chain existed are chained once, in id order.
ALTER TABLE ledger DISABLE TRIGGER ledger_append_only;
DO $$
DECLARE
  r ledger;
  last_seq BIGINT;
  last_hash TEXT;
BEGIN
  FOR r IN SELECT * FROM ledger ORDER BY id LOOP
    SELECT seq, row_hash INTO last_seq, last_hash FROM ledger
     WHERE workspace_id = r.workspace_id AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
    r.seq := coalesce(last_seq, 0) + 1;
    r.prev_hash := coalesce(last_hash, 'genesis');
    UPDATE ledger SET seq = r.seq, prev_hash = r.prev_hash, row_hash = ledger_row_digest(r.prev_hash, r) WHERE id = r.id;
  END LOOP;
END $$;
ALTER TABLE ledger ENABLE TRIGGER ledger_append_only;
ALTER TABLE ledger ALTER COLUMN seq SET NOT NULL;
ALTER TABLE ledger ALTER COLUMN prev_hash SET NOT NULL;
ALTER TABLE ledger ALTER COLUMN row_hash SET NOT NULL;

CREATE TRIGGER ledger_chain BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_chain();
`;

/**
 * Job queue features: each workspace gets a callback signing secret (random per row: gen_random_uuid is
 * drawn from a strong source); jobs keep the hash of their progress token and their callback's delivery state.
 */
const JOB_QUEUE = `
ALTER TABLE workspaces ADD COLUMN callback_secret TEXT NOT NULL
  DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
ALTER TABLE jobs ADD COLUMN progress_token_hash BYTEA;
ALTER TABLE jobs ADD COLUMN callback JSONB;
`;

/** Local GPU services: a container definition per service, run as the pool of the same name. */
const SERVICES = `
CREATE TABLE services (
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  name         TEXT NOT NULL,
  definition   JSONB NOT NULL,
  enabled      BOOLEAN NOT NULL DEFAULT true,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, name)
);
`;

/** Quotas per workspace (null: unlimited, as every workspace was before); new workspaces get the API's defaults. */
const QUOTAS = `
ALTER TABLE workspaces ADD COLUMN max_pools INTEGER CHECK (max_pools >= 0);
ALTER TABLE workspaces ADD COLUMN max_nodes INTEGER CHECK (max_nodes >= 0);
ALTER TABLE workspaces ADD COLUMN min_service_priority SMALLINT NOT NULL DEFAULT 1 CHECK (min_service_priority BETWEEN 1 AND 5);
`;

/** VRAM and parked-request quotas (null: unlimited, as before). */
const MORE_QUOTAS = `
ALTER TABLE workspaces ADD COLUMN max_vram_gb DOUBLE PRECISION CHECK (max_vram_gb >= 0);
ALTER TABLE workspaces ADD COLUMN max_parked_requests INTEGER CHECK (max_parked_requests >= 0);
`;

/**
 * Writer marks (src/db/ledger-marks.ts): a column for each row's mark, and per workspace the last row written
 * before marks existed. The application role may read ledger_unmarked, never write it (src/db/roles.ts).
 */
const LEDGER_MARKS = `
ALTER TABLE ledger ADD COLUMN writer_mark TEXT;
CREATE TABLE ledger_unmarked (
  workspace_id TEXT PRIMARY KEY,
  through_seq  BIGINT NOT NULL
);
INSERT INTO ledger_unmarked (workspace_id, through_seq) SELECT workspace_id, max(seq) FROM ledger GROUP BY workspace_id;
`;

/** `GET /v1/jobs`: a workspace's jobs newest first, a page at a time. */
const JOB_LIST = `
CREATE INDEX jobs_workspace_submitted_idx ON jobs (workspace_id, submitted_at DESC, id DESC);
`;

/** Migrations in order; never edit one that has shipped, add the next. */
const MIGRATIONS: Array<{ version: number; name: string; sql: string }> = [
  { version: 1, name: 'base', sql: BASE },
  { version: 2, name: 'workspaces and ledger hash chain', sql: WORKSPACES },
  { version: 3, name: 'callback secrets, progress tokens, callback state', sql: JOB_QUEUE },
  { version: 4, name: 'local GPU services', sql: SERVICES },
  { version: 5, name: 'workspace quotas', sql: QUOTAS },
  { version: 6, name: 'VRAM and parked-request quotas', sql: MORE_QUOTAS },
  { version: 7, name: 'ledger writer marks', sql: LEDGER_MARKS },
  { version: 8, name: 'job list index', sql: JOB_LIST },
];

/** The schema version this code needs. */
export const SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

/** The schema version a database is at (0 before the first migration). */
export async function schemaVersion(db: Pick<Pool, 'query'>): Promise<number> {
  const exists = await db.query("SELECT to_regclass('public.schema_migrations') IS NOT NULL AS present");
  if (!exists.rows[0].present) return 0;
  return Number((await db.query('SELECT coalesce(max(version), 0) AS v FROM schema_migrations')).rows[0].v);
}

/** Applies the migrations this database has not had yet (up to `upTo`, for tests of the upgrade path). */
export async function migrate(db: Pool, upTo = Number.POSITIVE_INFINITY): Promise<void> {
  const client = await db.connect();
  try {
    // One migrator at a time when the API and several workers start together.
    await client.query('SELECT pg_advisory_lock(734001)');
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version) || migration.version > upTo) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${migration.version} (${migration.name}) failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(734001)').catch(() => undefined);
    client.release();
  }
}
