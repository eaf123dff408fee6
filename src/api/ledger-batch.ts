/**
 * Batched ledger writes for the front door's fast path: rows gather for a moment and go in one statement.
 * Rows are keyed by request id, so a batch retried after a failed write never doubles a row. No request's
 * scope can cancel a write: the batch belongs to the process, and `close` flushes what is left. With a spool
 * (src/api/ledger-spool.ts) each row is on local disk before it joins the batch, so a killed process loses
 * none: the next one writes what it left.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { appendLedgerEvents, type LedgerEvent } from '../db/ledger';
import type { LedgerMarks } from '../db/ledger-marks';
import type { LedgerSpool } from './ledger-spool';

export interface LedgerBatchOptions {
  /** A batch goes when it has this many rows… */
  maxRows: number;
  /** …or this long after its first row. */
  maxDelayMs: number;
  /** Rows kept in memory while PostgreSQL is unreachable; beyond it the oldest wait in the spool only, loudly. */
  maxPending: number;
  /** Where rows wait on disk until written (absent: in memory only). */
  spool?: LedgerSpool;
  /** How often dead owners' spooled rows are looked for (besides at start). */
  orphanScanMs: number;
}

const DEFAULTS: LedgerBatchOptions = { maxRows: 500, maxDelayMs: 200, maxPending: 200_000, orphanScanMs: 30_000 };
const RETRY_MS = 1000;

export class LedgerBatch {
  private pending: LedgerEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private readonly options: LedgerBatchOptions;
  /** Sealed spool segments whose rows are all pending: removed once a flush has written everything. */
  private spooled: string[] = [];
  /** Rows dropped from memory (PostgreSQL away too long): they are only in the spool now, which must stay. */
  private dropped = 0;
  private readonly orphanTimer: NodeJS.Timeout | undefined;
  /** Rows written so far (for tests and metrics). */
  written = 0;
  /** Rows a dead API process left in the spool and this one took over. */
  recovered = 0;

  constructor(
    private readonly db: Pick<Pool, 'query'>,
    /** Marks each row as zeropool's (src/db/ledger-marks.ts). */
    private readonly marks: LedgerMarks,
    private readonly log: Logger,
    options: Partial<LedgerBatchOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    if (this.options.spool) {
      this.takeOrphans();
      this.orphanTimer = setInterval(() => this.takeOrphans(), this.options.orphanScanMs);
      this.orphanTimer.unref();
    }
  }

  add(event: LedgerEvent): void {
    try {
      this.options.spool?.append(event);
    } catch (err) {
      // A full or broken disk must not lose the row from memory too: it still goes in the next batch.
      this.log.error({ err: String(err), eventKey: event.eventKey }, 'ledger row not spooled to disk');
    }
    this.keep([event]);
  }

  private keep(events: LedgerEvent[]): void {
    this.pending.push(...events);
    const over = this.pending.length - this.options.maxPending;
    if (over > 0) {
      this.pending.splice(0, over);
      this.dropped += over;
      this.log.error(
        { dropped: over, spooled: this.options.spool !== undefined },
        this.options.spool
          ? 'ledger rows held on disk only: PostgreSQL has been unreachable for too long (the next API start writes them)'
          : 'ledger rows dropped: PostgreSQL has been unreachable for too long',
      );
    }
    if (this.pending.length >= this.options.maxRows) void this.flush();
    else this.schedule(this.options.maxDelayMs);
  }

  /** Takes over the rows of API processes that died with rows in the spool. */
  private takeOrphans(): void {
    const spool = this.options.spool;
    if (!spool) return;
    try {
      for (const orphan of spool.claimOrphans()) {
        // An empty segment of a cleanly stopped process is no news; rows or a torn line are.
        const level = orphan.rows.length > 0 || orphan.torn > 0 ? 'warn' : 'debug';
        this.log[level](
          { file: orphan.file, rows: orphan.rows.length, torn: orphan.torn },
          'ledger rows left by a stopped API process: writing them',
        );
        this.recovered += orphan.rows.length;
        // Its rows are pending now, like the rows of a segment this process sealed.
        this.spooled.push(orphan.file);
        this.keep(orphan.rows);
      }
    } catch (err) {
      this.log.error({ err: String(err), dir: spool.dir }, 'the ledger spool could not be read');
    }
  }

  /** Writes everything pending now (one batch after another); resolves when done or when a write failed. */
  async flush(): Promise<void> {
    if (this.writing) return this.writing;
    clearTimeout(this.timer);
    this.timer = undefined;
    // Every row appended so far is pending (or written): once they are written, the sealed segments can go.
    if (this.options.spool && this.pending.length > 0) {
      try {
        this.spooled.push(this.options.spool.seal());
      } catch (err) {
        // The segment stays open and keeps its rows (a later seal takes it): only the file is not rotated.
        this.log.error({ err: String(err) }, 'ledger spool segment not sealed');
      }
    }
    this.writing = (async () => {
      while (this.pending.length > 0) {
        const batch = this.pending.slice(0, this.options.maxRows);
        try {
          await appendLedgerEvents(this.db, batch, this.marks);
          this.written += batch.length;
          this.pending.splice(0, batch.length);
        } catch (err) {
          this.log.warn({ rows: this.pending.length, err: String(err) }, 'ledger batch not written; retrying');
          this.schedule(RETRY_MS);
          return;
        }
      }
      if (this.dropped === 0) {
        const written = this.spooled;
        this.spooled = [];
        await this.options.spool?.release(written);
      }
    })().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  /** Flushes what is left (at shutdown). */
  async close(): Promise<void> {
    clearInterval(this.orphanTimer);
    await this.flush();
    clearTimeout(this.timer);
    const unwritten = this.pending.length > 0 || this.dropped > 0;
    if (unwritten) this.log.error({ rows: this.pending.length + this.dropped }, 'ledger rows not written at shutdown');
    this.options.spool?.close(unwritten);
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
