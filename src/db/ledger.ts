/** The append-only ledger of billable and lifecycle events. */
import { timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import { DEFAULT_WORKSPACE, splitPoolKey } from '../ids';

import type { LedgerEvent, LedgerEventType } from '../domain/ledger-events';
import { type LedgerMarks, markOf, type MarkedFields, storedPrice } from './ledger-marks';

export type { LedgerEvent, LedgerEventType } from '../domain/ledger-events';

/** A row as read back. */
export interface LedgerRow {
  id: string;
  workspace_id: string;
  seq: string;
  prev_hash: string;
  row_hash: string;
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

/** The workspace an event belongs to and its pool's name there (from the pool key). */
export function ledgerOwner(event: Pick<LedgerEvent, 'poolId' | 'workspaceId'>): { workspaceId: string; poolName: string | null } {
  return event.poolId ? splitPoolKey(event.poolId) : { workspaceId: event.workspaceId ?? DEFAULT_WORKSPACE, poolName: null };
}

/** A row's columns as stored (whole milliseconds, the price at six decimals) and the mark over them. */
function storedRow(event: LedgerEvent, marks: LedgerMarks): MarkedFields & { writerMark: string } {
  const owner = ledgerOwner(event);
  const fields: MarkedFields = {
    workspaceId: owner.workspaceId,
    eventKey: event.eventKey,
    eventType: event.eventType,
    occurredAtMs: Math.round(event.occurredAt),
    poolId: owner.poolName,
    nodeId: event.nodeId ?? null,
    jobId: event.jobId ?? null,
    provider: event.lane?.provider ?? null,
    market: event.lane?.market ?? null,
    gpu: event.lane?.gpu ?? null,
    pricePerHour: storedPrice(event.lane?.pricePerHour),
    details: event.details ?? {},
  };
  return { ...fields, writerMark: markOf(marks, fields) };
}

/** An event key already on the ledger for a different event: never silently dropped (it would be unbilled work). */
export class LedgerKeyConflictError extends Error {
  override readonly name = 'LedgerKeyConflict';
}

/**
 * Appends an event; the same event again (a retried write) is a no-op. Returns true if this call wrote the
 * row. A key already used by a different event (another type, owner, node, job or time) throws
 * LedgerKeyConflictError.
 */
export async function appendLedgerEvent(db: Pick<Pool, 'query'>, event: LedgerEvent, marks: LedgerMarks): Promise<boolean> {
  const row = storedRow(event, marks);
  const result = await db.query(
    `INSERT INTO ledger (event_key, event_type, occurred_at, workspace_id, pool_id, node_id, job_id, provider, market, gpu, price_per_hour, details, writer_mark)
     VALUES ($1, $2, to_timestamp($3 / 1000.0), $12, $4, $5, $6, $7, $8, $9, $10, $11, $13)
     ON CONFLICT (event_key) DO NOTHING`,
    [
      row.eventKey,
      row.eventType,
      row.occurredAtMs,
      row.poolId,
      row.nodeId,
      row.jobId,
      row.provider,
      row.market,
      row.gpu,
      row.pricePerHour,
      JSON.stringify(row.details),
      row.workspaceId,
      row.writerMark,
    ],
  );
  if ((result.rowCount ?? 0) > 0) return true;
  const existing = await db.query<{
    event_type: string;
    workspace_id: string;
    pool_id: string | null;
    node_id: string | null;
    job_id: string | null;
    at: string;
  }>(
    `SELECT event_type, workspace_id, pool_id, node_id, job_id, round(extract(epoch FROM occurred_at) * 1000)::text AS at
       FROM ledger WHERE event_key = $1`,
    [event.eventKey],
  );
  const held = existing.rows[0];
  const same =
    held !== undefined &&
    held.event_type === row.eventType &&
    held.workspace_id === row.workspaceId &&
    held.pool_id === row.poolId &&
    held.node_id === row.nodeId &&
    held.job_id === row.jobId &&
    Number(held.at) === row.occurredAtMs;
  if (!same) {
    throw new LedgerKeyConflictError(
      `ledger key ${event.eventKey} already holds another event (${held?.event_type} of ${held?.node_id ?? held?.job_id ?? 'none'} at ${held?.at}); refusing to drop this one`,
    );
  }
  return false;
}

/**
 * Appends many events in one statement (the front door's fast path writes its requests' rows this way).
 * Idempotent like appendLedgerEvent: events whose key is already there are skipped. Returns how many were
 * written. Keys are request ids, so a skipped one is a retried batch, not a conflict worth a lookup per row.
 */
export async function appendLedgerEvents(db: Pick<Pool, 'query'>, events: LedgerEvent[], marks: LedgerMarks): Promise<number> {
  if (events.length === 0) return 0;
  const rows = events.map((event) => {
    const row = storedRow(event, marks);
    return {
      event_key: row.eventKey,
      event_type: row.eventType,
      occurred_at: row.occurredAtMs,
      workspace_id: row.workspaceId,
      pool_id: row.poolId,
      node_id: row.nodeId,
      job_id: row.jobId,
      provider: row.provider,
      market: row.market,
      gpu: row.gpu,
      price_per_hour: row.pricePerHour,
      details: row.details,
      writer_mark: row.writerMark,
    };
  });
  const result = await db.query(
    `INSERT INTO ledger (event_key, event_type, occurred_at, workspace_id, pool_id, node_id, job_id, provider, market, gpu, price_per_hour, details, writer_mark)
     SELECT r.event_key, r.event_type, to_timestamp(r.occurred_at / 1000.0), r.workspace_id, r.pool_id, r.node_id, r.job_id,
            r.provider, r.market, r.gpu, r.price_per_hour, r.details, r.writer_mark
       FROM jsonb_to_recordset($1::jsonb) AS r(event_key text, event_type text, occurred_at double precision,
            workspace_id text, pool_id text, node_id text, job_id text, provider text, market text, gpu text,
            price_per_hour numeric, details jsonb, writer_mark text)
     ON CONFLICT (event_key) DO NOTHING`,
    [JSON.stringify(rows)],
  );
  return result.rowCount ?? 0;
}

/** Ledger rows of a pool in the order they happened. */
export async function ledgerRowsForPool(db: Pick<Pool, 'query'>, poolName: string, workspaceId = DEFAULT_WORKSPACE): Promise<LedgerRow[]> {
  const result = await db.query<LedgerRow>('SELECT * FROM ledger WHERE workspace_id = $1 AND pool_id = $2 ORDER BY occurred_at, id', [
    workspaceId,
    poolName,
  ]);
  return result.rows;
}

/**
 * What a pool's timeline needs for [from, to]: its node rows (a node may have started before `from`) and the
 * rows of requests that ended in the window (newest `limit`).
 */
export async function timelineRowsForPool(
  db: Pick<Pool, 'query'>,
  workspaceId: string,
  poolName: string,
  from: Date,
  limit: number,
): Promise<LedgerRow[]> {
  const nodes = await db.query<LedgerRow>(
    `SELECT * FROM ledger WHERE workspace_id = $1 AND pool_id = $2
       AND event_type IN ('node_provisioning', 'node_stopped', 'node_started', 'node_slept', 'node_woke', 'node_terminated')
       AND node_id IN (SELECT node_id FROM ledger WHERE workspace_id = $1 AND pool_id = $2 AND event_type = 'node_provisioning'
                       AND node_id NOT IN (SELECT node_id FROM ledger WHERE workspace_id = $1 AND pool_id = $2
                                           AND event_type = 'node_terminated' AND occurred_at < $3 AND node_id IS NOT NULL))
     ORDER BY occurred_at, id`,
    [workspaceId, poolName, from],
  );
  const requests = await db.query<LedgerRow>(
    `SELECT * FROM ledger WHERE workspace_id = $1 AND pool_id = $2 AND occurred_at >= $3
       AND event_type IN ('job_completed', 'job_failed', 'job_expired', 'job_cancelled')
     ORDER BY occurred_at DESC, id DESC LIMIT $4`,
    [workspaceId, poolName, from, limit],
  );
  return [...nodes.rows, ...requests.rows];
}

/** Result of recomputing a workspace's hash chain. */
export interface ChainVerification {
  workspaceId: string;
  ok: boolean;
  rows: number;
  /** Hash of the last row: keep it somewhere else to detect a rewrite of the whole chain. */
  headHash: string | null;
  /** The first row that does not match, and why. */
  firstBroken?: { id: string; seq: string; eventKey: string; reason: string };
}

const VERIFY_BATCH = 5000;

/** A row as verify reads it: its chain columns and the content its mark covers. */
interface VerifiedRow {
  id: string;
  seq: string;
  event_key: string;
  prev_hash: string;
  row_hash: string;
  recomputed: string;
  writer_mark: string | null;
  event_type: string;
  occurred_ms: string;
  pool_id: string | null;
  node_id: string | null;
  job_id: string | null;
  provider: string | null;
  market: string | null;
  gpu: string | null;
  price_text: string | null;
  details: unknown;
}

function markHolds(marks: LedgerMarks, workspaceId: string, row: VerifiedRow): boolean {
  if (row.writer_mark === null) return false;
  const expected = markOf(marks, {
    workspaceId,
    eventKey: row.event_key,
    eventType: row.event_type,
    occurredAtMs: Number(row.occurred_ms),
    poolId: row.pool_id,
    nodeId: row.node_id,
    jobId: row.job_id,
    provider: row.provider,
    market: row.market,
    gpu: row.gpu,
    pricePerHour: row.price_text,
    details: row.details,
  });
  const a = Buffer.from(expected);
  const b = Buffer.from(row.writer_mark);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Recomputes every row's hash of a workspace in chain order. A changed row fails its own hash; a deleted
 * row leaves a gap in `seq`; a row inserted out of band breaks the link of the row after it.
 */
/**
 * A head the admin kept outside the database (from an earlier verify: `rows_checked` and `head_hash`). A chain
 * recomputed wholesale by someone who can write the ledger is consistent in itself; it fails the anchor.
 */
export interface LedgerAnchor {
  seq: bigint;
  hash: string;
}

export async function verifyLedgerChain(
  db: Pick<Pool, 'query'>,
  workspaceId: string,
  marks: LedgerMarks,
  anchor?: LedgerAnchor,
): Promise<ChainVerification> {
  let expectedSeq = 1n;
  let previousHash = 'genesis';
  let rows = 0;
  // Rows before marks existed carry none (see src/db/ledger-marks.ts); every later row needs a valid one.
  const unmarked = await db.query<{ through_seq: string }>('SELECT through_seq FROM ledger_unmarked WHERE workspace_id = $1', [
    workspaceId,
  ]);
  const unmarkedThrough = BigInt(unmarked.rows[0]?.through_seq ?? 0);
  for (;;) {
    const batch = await db.query<VerifiedRow>(
      `SELECT id, seq, event_key, prev_hash, row_hash, ledger_row_digest(prev_hash, l) AS recomputed, writer_mark,
              event_type, round(extract(epoch FROM occurred_at) * 1000)::text AS occurred_ms, pool_id, node_id, job_id,
              provider, market, gpu, price_per_hour::text AS price_text, details
         FROM ledger l WHERE workspace_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
      [workspaceId, expectedSeq.toString(), VERIFY_BATCH],
    );
    for (const row of batch.rows) {
      const broken = (reason: string): ChainVerification => ({
        workspaceId,
        ok: false,
        rows,
        headHash: null,
        firstBroken: { id: row.id, seq: row.seq, eventKey: row.event_key, reason },
      });
      if (BigInt(row.seq) !== expectedSeq) return broken(`row ${expectedSeq} is missing (the chain jumps to ${row.seq})`);
      if (row.prev_hash !== previousHash) return broken('prev_hash does not match the previous row: a row was removed or inserted');
      if (row.recomputed !== row.row_hash) return broken('row_hash does not match the row: its contents were changed');
      if (BigInt(row.seq) > unmarkedThrough && !markHolds(marks, workspaceId, row))
        return broken(
          row.writer_mark === null
            ? 'the row carries no writer mark: it was appended by something other than zeropool (or with another node secret key)'
            : "the row's writer mark does not match it: it was appended by something other than zeropool (or with another node secret key)",
        );
      if (anchor && BigInt(row.seq) === anchor.seq && row.row_hash !== anchor.hash)
        return broken('row_hash differs from the anchor kept outside the database: the chain was rewritten up to here');
      previousHash = row.row_hash;
      expectedSeq += 1n;
      rows += 1;
    }
    if (batch.rows.length < VERIFY_BATCH) break;
  }
  if (anchor && BigInt(rows) < anchor.seq)
    return {
      workspaceId,
      ok: false,
      rows,
      headHash: null,
      firstBroken: {
        id: '',
        seq: String(rows + 1),
        eventKey: '',
        reason: `the chain ends at row ${rows}, before the anchor's row ${anchor.seq}: rows were removed`,
      },
    };
  return { workspaceId, ok: true, rows, headHash: rows > 0 ? previousHash : null };
}
