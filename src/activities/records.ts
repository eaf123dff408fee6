/** Activities that write the ledger and job records. Idempotent: retries never add a second row. */
import type { Pool } from 'pg';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { appendLedgerEvent, type LedgerEvent, LedgerKeyConflictError } from '../db/ledger';
import type { LedgerMarks } from '../db/ledger-marks';
import { saveJobOutcome } from '../db/store';
import { isDataException, OUTCOME_NOT_STORABLE } from '../domain/job-policy';
import type { JobView } from '../domain/types';
import { poolWorkflowId } from '../ids';
import { jobFinishedSignal } from '../workflows/messages';
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
    async recordJobOutcome(input: { view: JobView; event: LedgerEvent; release?: FreedSlot }): Promise<OutcomeWritten> {
      // The pool hears first: a database that is down must not hold the slot (a retry tells it again, which it ignores).
      const poolTold = input.release ? await tellPoolSlotFree(input.view, input.release) : false;
      await writeJobOutcome(input);
      return { poolTold };
    },
  };

  async function writeJobOutcome(input: { view: JobView; event: LedgerEvent }): Promise<void> {
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
  }
}

/** The pool's slot that a job's outcome write gives back (see JobInput.machine = 2). */
export interface FreedSlot {
  attempt: number;
}

/** What recordJobOutcome did besides the write: whether the pool was told the slot is free. */
export interface OutcomeWritten {
  poolTold: boolean;
}

/**
 * Signals the job's pool that its attempt ended, through the worker's client. False when it could not: the job
 * workflow then signals the pool itself, so a slot is never lost to a failed signal here.
 */
async function tellPoolSlotFree(view: JobView, release: FreedSlot): Promise<boolean> {
  try {
    await Context.current()
      .client.workflow.getHandle(poolWorkflowId(view.pool))
      .signal(jobFinishedSignal, { jobId: view.id, attempt: release.attempt });
    return true;
  } catch (err) {
    log.warn('the pool could not be told a slot is free; the job tells it', { jobId: view.id, poolId: view.pool, error: String(err) });
    return false;
  }
}
