/** A job's one terminal ledger row, built from its final view. Pure. */
import type { TerminalJobStatus } from './job-protocol';
import type { JobLedgerEventType, LedgerEvent } from './ledger-events';
import type { JobView } from './types';

/** The ledger row each way a job ends writes. */
export const JOB_OUTCOME_EVENT: Record<TerminalJobStatus, JobLedgerEventType> = {
  completed: 'job_completed',
  failed: 'job_failed',
  expired: 'job_expired',
  cancelled: 'job_cancelled',
};

/** Keyed by job and status, so a retried write never doubles it; `runs` lets analytics count node busy time. */
export function jobOutcomeRow(view: JobView, status: TerminalJobStatus, error: string | undefined): LedgerEvent {
  return {
    eventKey: `${view.id}:${status}`,
    eventType: JOB_OUTCOME_EVENT[status],
    occurredAt: view.finishedAt!,
    poolId: view.pool,
    jobId: view.id,
    nodeId: view.nodeId,
    details: {
      attempt: view.attempt,
      usage: view.usage,
      queueMs: view.queueMs,
      runMs: view.runMs,
      error,
      runs: view.runs ?? [],
    },
  };
}
