/** Ledger event types written in this version, by who writes them. */

/** Written by a pool (its nodes, teardowns and preemptions). */
export type PoolLedgerEventType =
  | 'node_provisioning'
  | 'node_ready'
  | 'node_lost'
  | 'node_terminated'
  | 'teardown_started'
  | 'teardown_cancelled'
  | 'job_preempted';

/** Written by a job when it ends. */
export type JobLedgerEventType = 'job_completed' | 'job_failed' | 'job_expired' | 'job_cancelled';

export type LedgerEventType = PoolLedgerEventType | JobLedgerEventType;
