/** Ledger events: their types, by who writes them, and the row a writer asks for. */
import type { PoolKey } from '../ids';
import type { Lane } from './types';

/** Written by a pool (its nodes, teardowns and preemptions). */
export type PoolLedgerEventType =
  | 'node_provisioning'
  | 'node_ready'
  | 'node_lost'
  | 'node_terminated'
  /** The warm-state ladder: a node stopped (GPU billing ends, its disk bills at the stopped price) and started again. */
  | 'node_stopped'
  | 'node_started'
  /** The sleeping rung: the model server slept (the node bills at the sleeping price) and woke again. */
  | 'node_slept'
  | 'node_woke'
  | 'teardown_started'
  | 'teardown_cancelled'
  | 'job_preempted';

/** Written by a job when it ends. */
export type JobLedgerEventType = 'job_completed' | 'job_failed' | 'job_expired' | 'job_cancelled';

export type LedgerEventType = PoolLedgerEventType | JobLedgerEventType;

/** One ledger row to write. `eventKey` makes the write idempotent. */
export interface LedgerEvent {
  eventKey: string;
  eventType: LedgerEventType;
  /** Epoch ms. */
  occurredAt: number;
  /** Pool key (see poolKey): the row's workspace and pool name are taken from it. */
  poolId?: PoolKey;
  /** Workspace of an event that names no pool. */
  workspaceId?: string;
  nodeId?: string;
  jobId?: string;
  lane?: Lane;
  details?: Record<string, unknown>;
}
