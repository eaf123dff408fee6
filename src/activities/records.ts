/** Activities that write the ledger and job records. Idempotent: retries never add a second row. */
import type { Pool } from 'pg';
import { ApplicationFailure } from '@temporalio/activity';
import { appendLedgerEvent, type LedgerEvent, LedgerKeyConflictError } from '../db/ledger';
import type { LedgerMarks } from '../db/ledger-marks';
import { saveJobOutcome } from '../db/store';
import { isDataException, OUTCOME_NOT_STORABLE } from '../domain/job-policy';
import type { JobView } from '../domain/types';
import { observeLedgerEvent } from '../metrics';

/** A key conflict does not go away by retrying: it fails the write at once, loudly. */
function refuseConflicts(err: unknown): never {
  if (err instanceof LedgerKeyConflictError) throw ApplicationFailure.nonRetryable(err.message, err.name);
  throw err;
}

/** Builds the record-keeping activities over a PostgreSQL pool. */
export function createRecordActivities(db: Pool, marks: LedgerMarks, afterLedgerWrite?: (event: LedgerEvent) => void) {
  return {
    /** Appends one ledger event (the same event again is a no-op; another event under its key is refused). */
    async recordLedgerEvent(event: LedgerEvent): Promise<void> {
      const written = await appendLedgerEvent(db, event, marks).catch(refuseConflicts);
      afterLedgerWrite?.(event);
      if (written) observeLedgerEvent(event);
    },

    /**
     * Stores a job's terminal view and its ledger row in one transaction. If the row's key already holds another
     * event, the job's record is still made terminal (every accepted job ends in one state), then the conflict
     * is refused loudly; the ledger keeps its first row.
     */
    async recordJobOutcome(input: { view: JobView; event: LedgerEvent }): Promise<void> {
      const client = await db.connect();
      try {
        await client.query('BEGIN');
        await saveJobOutcome(client, input.view);
        const written = await appendLedgerEvent(client, input.event, marks);
        await client.query('COMMIT');
        afterLedgerWrite?.(input.event);
        if (written) observeLedgerEvent(input.event);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (err instanceof LedgerKeyConflictError) await saveJobOutcome(db, input.view);
        // Retrying the same bytes cannot succeed: fail once, and the job workflow ends the job failed instead.
        if (isDataException(err))
          throw ApplicationFailure.nonRetryable(
            `${(err as Error).message} (SQLSTATE ${(err as { code: string }).code})`,
            OUTCOME_NOT_STORABLE,
          );
        refuseConflicts(err);
      } finally {
        client.release();
      }
    },
  };
}
