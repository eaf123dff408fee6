/** Types of the OpenAI-compatible front door shared by the API process and the request workflow. Plain JSON. */
import type { PoolKey } from '../ids';
import type { JobLedgerEventType } from './ledger-events';

/** Input of a request workflow: one parked-then-run OpenAI request. */
export interface RequestInput {
  requestId: string;
  poolId: PoolKey;
  model: string;
  /** Which OpenAI route it came by (`chat.completions`, `completions`, `embeddings`). */
  route: string;
  priority: number;
  /** Epoch ms the API accepted it. */
  submittedAt: number;
  /** How long it may wait for a slot (X-Zeropool-Timeout or the pool's parkTimeoutSeconds). */
  parkTimeoutSeconds: number;
  /** Whether the search attributes are registered. */
  indexed: boolean;
}

/** How a front-door request ended, as the API process reports it. */
export interface RequestOutcome {
  status: 'completed' | 'failed' | 'cancelled';
  nodeId?: string;
  attempt?: number;
  /** Epoch ms the request went to the node, and the end. */
  startedAt?: number;
  finishedAt: number;
  usage?: { promptTokens: number; completionTokens: number };
  error?: string;
  stream?: boolean;
}

/** A request whose API process stops renewing its lease this long is over: its slot goes back. */
export const REQUEST_LEASE_MS = 60_000;
/** How often the API process renews the lease while it runs a request. */
export const REQUEST_RENEW_MS = 15_000;

/** The ledger row type of a request's end (the same on the workflow path and the fast path). */
export const REQUEST_OUTCOME_EVENT: Record<RequestOutcome['status'] | 'expired', JobLedgerEventType> = {
  completed: 'job_completed',
  failed: 'job_failed',
  cancelled: 'job_cancelled',
  expired: 'job_expired',
};
