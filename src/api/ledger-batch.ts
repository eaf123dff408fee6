/**
 * Batched ledger writes for the front door's fast path: rows gather for a moment and go in one statement.
 * Rows are keyed by request id, so a batch retried after a failed write never doubles a row. No request's
 * scope can cancel a write: the batch belongs to the process, and `close` flushes what is left.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { appendLedgerEvents, type LedgerEvent } from '../db/ledger';

export interface LedgerBatchOptions {
  /** A batch goes when it has this many rows… */
  maxRows: number;
  /** …or this long after its first row. */
  maxDelayMs: number;
  /** Rows kept while PostgreSQL is unreachable; beyond it the oldest are dropped, loudly. */
  maxPending: number;
}

const DEFAULTS: LedgerBatchOptions = { maxRows: 500, maxDelayMs: 200, maxPending: 200_000 };
const RETRY_MS = 1000;

export class LedgerBatch {
  private pending: LedgerEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private readonly options: LedgerBatchOptions;
  /** Rows written so far (for tests and metrics). */
  written = 0;

  constructor(
    private readonly db: Pick<Pool, 'query'>,
    private readonly log: Logger,
    options: Partial<LedgerBatchOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  add(event: LedgerEvent): void {
    this.pending.push(event);
    const over = this.pending.length - this.options.maxPending;
    if (over > 0) {
      this.pending.splice(0, over);
      this.log.error({ dropped: over }, 'ledger rows dropped: PostgreSQL has been unreachable for too long');
    }
    if (this.pending.length >= this.options.maxRows) void this.flush();
    else this.schedule(this.options.maxDelayMs);
  }

  /** Writes everything pending now (one batch after another); resolves when done or when a write failed. */
  async flush(): Promise<void> {
    if (this.writing) return this.writing;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = (async () => {
      while (this.pending.length > 0) {
        const batch = this.pending.slice(0, this.options.maxRows);
        try {
          await appendLedgerEvents(this.db, batch);
          this.written += batch.length;
          this.pending.splice(0, batch.length);
        } catch (err) {
          this.log.warn({ rows: this.pending.length, err: String(err) }, 'ledger batch not written; retrying');
          this.schedule(RETRY_MS);
          return;
        }
      }
    })().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  /** Flushes what is left (at shutdown). */
  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.timer);
    if (this.pending.length > 0) this.log.error({ rows: this.pending.length }, 'ledger rows not written at shutdown');
  }

  private schedule(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
    this.timer.unref();
  }
}
