/** Activities that write the ledger and job records. Idempotent: retries never add a second row. */
import type { Pool } from 'pg';
import { appendLedgerEvent, type LedgerEvent } from '../db/ledger';
import { saveJobOutcome } from '../db/store';
import type { JobView } from '../domain/types';
import { observeLedgerEvent } from '../metrics';

/** Builds the record-keeping activities over a PostgreSQL pool. */
export function createRecordActivities(db: Pool, afterLedgerWrite?: (event: LedgerEvent) => void) {
  return {
    /** Appends one ledger event (ON CONFLICT (event_key) DO NOTHING). */
    async recordLedgerEvent(event: LedgerEvent): Promise<void> {
      const written = await appendLedgerEvent(db, event);
      afterLedgerWrite?.(event);
      if (written) observeLedgerEvent(event);
    },

    /** Stores a job's terminal view and its ledger row in one transaction. */
    async recordJobOutcome(input: { view: JobView; event: LedgerEvent }): Promise<void> {
      const client = await db.connect();
      try {
        await client.query('BEGIN');
        await saveJobOutcome(client, input.view);
        const written = await appendLedgerEvent(client, input.event);
        await client.query('COMMIT');
        afterLedgerWrite?.(input.event);
        if (written) observeLedgerEvent(input.event);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}
