/** PostgreSQL schema, applied idempotently at start-up. */
import type { Pool } from 'pg';

const SCHEMA = `
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

/** Creates tables, indexes and the append-only triggers if they are missing. */
export async function migrate(db: Pool): Promise<void> {
  const client = await db.connect();
  try {
    // One migrator at a time when the API and several workers start together.
    await client.query('SELECT pg_advisory_lock(734001)');
    await client.query(SCHEMA);
  } finally {
    await client.query('SELECT pg_advisory_unlock(734001)').catch(() => undefined);
    client.release();
  }
}
