/**
 * Writer marks on ledger rows: who may append to a workspace's chain.
 *
 * Contract: every row zeropool writes carries `writer_mark`, an HMAC of the row's content under a key derived
 * for its workspace from the node secret key (ZEROPOOL_NODE_SECRET_KEY or the data folder's key), which is
 * never in the database. `/v1/ledger/verify` recomputes each mark.
 *
 * Failure model: the application role may INSERT into the ledger (that is its job), so database credentials
 * alone could append a row to any workspace's chain, and the chain would still link. Such a row has no valid
 * mark: verify names it. A copied mark does not fit another row (the event key is covered and unique). Rows
 * written before marks existed are listed per workspace in `ledger_unmarked` (owner-written at migration; the
 * application role can only read it) and need none. What it does not defend: a process that holds the key.
 */

/** Computes marks; NodeSecrets (src/activities/node-secrets.ts) is one. */
export interface LedgerMarks {
  ledgerMark(workspaceId: string, content: string): string;
}

/** The columns a mark covers, in the forms PostgreSQL stores and gives back. */
export interface MarkedFields {
  workspaceId: string;
  eventKey: string;
  eventType: string;
  /** Whole epoch milliseconds. */
  occurredAtMs: number;
  poolId: string | null;
  nodeId: string | null;
  jobId: string | null;
  provider: string | null;
  market: string | null;
  gpu: string | null;
  /** NUMERIC(14, 6) as text: `2.490000`. */
  pricePerHour: string | null;
  details: unknown;
}

/** A price as the ledger column stores it (six decimals), so the mark covers exactly what is stored. */
export function storedPrice(price: number | undefined | null): string | null {
  return price === undefined || price === null ? null : price.toFixed(6);
}

/** JSON with object keys sorted at every depth: jsonb gives keys back in its own order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The text a mark signs. Details pass through JSON first, as they do on their way into jsonb. */
export function markedContent(fields: MarkedFields): string {
  return canonicalJson([
    fields.workspaceId,
    fields.eventKey,
    fields.eventType,
    fields.occurredAtMs,
    fields.poolId,
    fields.nodeId,
    fields.jobId,
    fields.provider,
    fields.market,
    fields.gpu,
    fields.pricePerHour,
    JSON.parse(JSON.stringify(fields.details ?? {})),
  ]);
}

/** The mark of one row. */
export function markOf(marks: LedgerMarks, fields: MarkedFields): string {
  return marks.ledgerMark(fields.workspaceId, markedContent(fields));
}
