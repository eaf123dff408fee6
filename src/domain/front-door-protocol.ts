/** Types of the OpenAI-compatible front door shared by the API process and the request workflow. Plain JSON. */
import type { PoolKey } from '../ids';
import type { JobLedgerEventType, LedgerEvent } from './ledger-events';

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
  /** The job machine runs it (absent: a run started before it; see JobInput.machine). */
  machine?: true;
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

/** What a request's ledger row says: the one shape every writer uses (request workflow, fast path, abandonment). */
export interface RequestRowFacts {
  requestId: string;
  poolId: PoolKey;
  route: string;
  status: RequestOutcome['status'] | 'expired';
  /** Epoch ms the request ended. */
  finishedAt: number;
  attempt: number;
  nodeId?: string;
  /** Epoch ms it went to the node (absent: it never ran). */
  startedAt?: number;
  usage?: RequestOutcome['usage'];
  stream?: boolean;
  coldStartMs?: number;
  error?: string;
  /** Written by the API process (warm fast path), not the request workflow. */
  fastPath?: boolean;
}

/** A request's one terminal ledger row, keyed by request and status so a retried write never doubles it. */
export function requestLedgerRow(facts: RequestRowFacts): LedgerEvent {
  return {
    eventKey: `${facts.requestId}:${facts.status}`,
    eventType: REQUEST_OUTCOME_EVENT[facts.status],
    occurredAt: facts.finishedAt,
    poolId: facts.poolId,
    jobId: facts.requestId,
    nodeId: facts.nodeId,
    details: {
      kind: 'request',
      route: facts.route,
      attempt: facts.attempt,
      ...(facts.fastPath ? { fastPath: true } : {}),
      ...(facts.usage ? { usage: facts.usage } : {}),
      ...(facts.stream ? { stream: true } : {}),
      ...(facts.coldStartMs !== undefined ? { coldStartMs: facts.coldStartMs } : {}),
      ...(facts.error ? { error: facts.error } : {}),
      runs:
        facts.startedAt !== undefined && facts.nodeId
          ? [{ nodeId: facts.nodeId, attempt: facts.attempt, startedAt: facts.startedAt, endedAt: facts.finishedAt }]
          : [],
    },
  };
}
