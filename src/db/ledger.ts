/** The append-only ledger of billable and lifecycle events. */
import type { Pool } from 'pg';
import type { Lane } from '../domain/types';

/** Ledger event types written in this version. */
export type LedgerEventType =
  | 'node_provisioning'
  | 'node_ready'
  | 'node_lost'
  | 'node_terminated'
  | 'teardown_started'
  | 'teardown_cancelled'
  | 'job_completed'
  | 'job_failed'
  | 'job_expired'
  | 'job_cancelled';

/** One ledger row to write. `eventKey` makes the write idempotent. */
export interface LedgerEvent {
  eventKey: string;
  eventType: LedgerEventType;
  /** Epoch ms. */
  occurredAt: number;
  poolId?: string;
  nodeId?: string;
  jobId?: string;
  lane?: Lane;
  details?: Record<string, unknown>;
}

/** A row as read back. */
export interface LedgerRow {
  id: string;
  event_key: string;
  event_type: LedgerEventType;
  occurred_at: Date;
  pool_id: string | null;
  node_id: string | null;
  job_id: string | null;
  provider: string | null;
  market: string | null;
  gpu: string | null;
  price_per_hour: string | null;
  details: Record<string, unknown>;
}

/** Appends an event; a repeated event key is a no-op. Returns true if this call wrote the row. */
export async function appendLedgerEvent(db: Pick<Pool, 'query'>, event: LedgerEvent): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO ledger (event_key, event_type, occurred_at, pool_id, node_id, job_id, provider, market, gpu, price_per_hour, details)
     VALUES ($1, $2, to_timestamp($3 / 1000.0), $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (event_key) DO NOTHING`,
    [
      event.eventKey,
      event.eventType,
      event.occurredAt,
      event.poolId ?? null,
      event.nodeId ?? null,
      event.jobId ?? null,
      event.lane?.provider ?? null,
      event.lane?.market ?? null,
      event.lane?.gpu ?? null,
      event.lane?.pricePerHour ?? null,
      JSON.stringify(event.details ?? {}),
    ],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Ledger rows of a pool in the order they happened. */
export async function ledgerRowsForPool(db: Pick<Pool, 'query'>, poolId: string): Promise<LedgerRow[]> {
  const result = await db.query<LedgerRow>('SELECT * FROM ledger WHERE pool_id = $1 ORDER BY occurred_at, id', [poolId]);
  return result.rows;
}
