/**
 * The request workflow's first body, frozen: runs started before the job machine replay through it (see
 * job-legacy.ts). New runs use request.ts.
 *
 * A front-door request (OpenAI routes): the workflow parks it in its pool like a job and holds its slot, while
 * the API process that took the request runs it against the node and streams the answer itself (tokens never
 * pass through Temporal). The API asks for the slot with an update that resolves once the pool places the
 * request, renews a lease while it runs, and reports the end; the workflow gives the slot back and writes
 * the ledger row. A lease not renewed for REQUEST_LEASE_MS (the API process died) ends it too.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  REQUEST_LEASE_MS,
  REQUEST_OUTCOME_EVENT,
  type RequestInput,
  type RequestOutcome,
  requestLedgerRow,
} from '../domain/front-door-protocol';
import type { JobStatus, JobView, PlacementGrant } from '../domain/types';
import { poolWorkflowId } from '../ids';
import { BOOKKEEPING_ACTIVITY } from './activity-options';
import {
  cancelJobSignal,
  type JobArrival,
  jobArrivedSignal,
  jobFinishedSignal,
  jobPlacedSignal,
  jobPreemptSignal,
  jobRevokedSignal,
  jobStateQuery,
  jobWithdrawnSignal,
  requestAliveSignal,
  requestDoneSignal,
  requestSlotUpdate,
} from './messages';

const bookkeeping = proxyActivities<Activities>(BOOKKEEPING_ACTIVITY);

/** Nodes that may fail a request before its first byte before it gives up. */
const MAX_NODE_FAILURES = 3;

const OUTCOME_EVENT = REQUEST_OUTCOME_EVENT;

export async function legacyRequestWorkflow(input: RequestInput): Promise<JobView> {
  const view: JobView = {
    id: input.requestId,
    pool: input.poolId,
    status: 'queued',
    attempt: 1,
    submittedAt: input.submittedAt,
    priority: input.priority,
  };
  let grant: PlacementGrant | undefined;
  /** Whether the API holds the slot now (between a grant it took and the request's end). */
  let running = false;
  let outcome: RequestOutcome | undefined;
  let cancelReason: string | undefined;
  let over: 'expired' | 'cancelled' | 'failed' | undefined;
  let renewals = 0;
  let nodeFailures = 0;
  const pool = getExternalWorkflowHandle(poolWorkflowId(input.poolId));
  const arrival = (fields: Omit<JobArrival, 'jobId' | 'priority'>): JobArrival => ({
    jobId: input.requestId,
    priority: input.priority,
    ...fields,
  });
  const tell = async <A extends unknown[]>(def: Parameters<typeof pool.signal<A>>[0], ...args: A) => {
    try {
      await pool.signal(def, ...args);
    } catch (err) {
      log.warn('pool unreachable', { requestId: input.requestId, poolId: input.poolId, error: String(err) });
    }
  };

  setHandler(jobStateQuery, () => view);
  setHandler(jobPlacedSignal, (g) => {
    if (g.attempt === view.attempt && !grant && !over) grant = g;
  });
  setHandler(jobRevokedSignal, ({ attempt, reason }) => {
    if (attempt <= view.attempt) return;
    // The node was lost; the pool has requeued us under `attempt`. If the API is using the slot it sees the
    // failure itself and asks again.
    log.warn('placement revoked', { requestId: input.requestId, reason });
    view.attempt = attempt;
    grant = undefined;
    running = false;
  });
  setHandler(jobPreemptSignal, () => {
    // A front-door request is short and streams to a waiting client: it is not stopped. Its slot goes to
    // the preempting job when it ends (jobFinished), as a preempted job's would when it confirms.
  });
  setHandler(cancelJobSignal, ({ reason }) => {
    cancelReason ??= reason ?? 'cancelled by the client';
  });
  setHandler(requestAliveSignal, () => {
    renewals += 1;
  });
  setHandler(requestDoneSignal, (reported) => {
    outcome ??= reported;
  });
  setHandler(requestSlotUpdate, async ({ failedNodeId }) => {
    if (failedNodeId && grant?.nodeId === failedNodeId) {
      // The node failed before answering: another slot, ahead of requests of the same priority.
      nodeFailures += 1;
      if (nodeFailures >= MAX_NODE_FAILURES) {
        throw ApplicationFailure.nonRetryable(`${nodeFailures} nodes failed before answering`, 'RequestFailed');
      }
      view.attempt = grant.attempt + 1;
      grant = undefined;
      running = false;
      await tell(jobArrivedSignal, arrival({ attempt: view.attempt, front: true, failedNodeId }));
    }
    await condition(() => grant !== undefined || over !== undefined);
    if (!grant) {
      throw ApplicationFailure.nonRetryable(
        over === 'expired' ? `no capacity within ${input.parkTimeoutSeconds} s` : `request ${over}`,
        over === 'expired' ? 'ParkTimeout' : 'RequestOver',
      );
    }
    running = true;
    view.nodeId = grant.nodeId;
    if (view.coldStartMs === undefined) {
      view.coldStartMs = grant.coldStartMs;
      if (grant.coldStart) view.coldStartPhases = grant.coldStart;
    }
    view.status = 'running';
    return grant;
  });

  const end = async (status: JobStatus & keyof typeof OUTCOME_EVENT, error?: string): Promise<JobView> => {
    // Any update still waiting for a slot is answered (with an error): nothing will be placed any more.
    over ??= status === 'expired' || status === 'cancelled' ? status : 'failed';
    view.status = status;
    view.finishedAt = outcome?.finishedAt ?? Date.now();
    view.error = error;
    if (outcome?.usage) view.usage = outcome.usage;
    // Written outside any scope new work could cancel: the row must land. A write that still fails after its
    // retries (a key conflict) is logged, not thrown: it must not fail the request's workflow.
    await bookkeeping
      .recordLedgerEvent(
        requestLedgerRow({
          requestId: input.requestId,
          poolId: input.poolId,
          route: input.route,
          status,
          finishedAt: view.finishedAt,
          attempt: view.attempt,
          nodeId: view.nodeId,
          startedAt: outcome?.startedAt,
          usage: outcome?.usage,
          stream: outcome?.stream,
          coldStartMs: view.coldStartMs,
          error,
        }),
      )
      .catch((err) => log.error('request ledger write failed', { requestId: input.requestId, error: String(err) }));
    await condition(allHandlersFinished);
    return view;
  };

  await tell(jobArrivedSignal, arrival({ attempt: 1, front: false }));
  const deadline = workflowInfo().startTime.getTime() + input.parkTimeoutSeconds * 1000;

  for (;;) {
    if (!running) {
      // Parked: until the API takes a slot, the client goes, or the deadline passes.
      const settled = await condition(
        () => running || cancelReason !== undefined || outcome !== undefined,
        Math.max(0, deadline - Date.now()),
      );
      if (outcome) break;
      if (cancelReason !== undefined) {
        over = 'cancelled';
        await tell(jobWithdrawnSignal, { jobId: input.requestId });
        return end('cancelled', cancelReason);
      }
      if (!settled) {
        over = 'expired';
        await tell(jobWithdrawnSignal, { jobId: input.requestId });
        return end('expired', `no capacity within ${input.parkTimeoutSeconds} s`);
      }
    }
    // Running at the node through the API process: its lease must keep being renewed.
    const seen = renewals;
    const heard = await condition(() => outcome !== undefined || renewals !== seen || !running, REQUEST_LEASE_MS);
    if (outcome) break;
    if (!heard) {
      over = 'failed';
      await tell(jobFinishedSignal, { jobId: input.requestId, attempt: view.attempt });
      return end('failed', 'the API process running the request stopped renewing its lease');
    }
  }
  const reported = outcome!;
  if (reported.nodeId) view.nodeId = reported.nodeId;
  if (running || grant) await tell(jobFinishedSignal, { jobId: input.requestId, attempt: view.attempt });
  else await tell(jobWithdrawnSignal, { jobId: input.requestId });
  return end(reported.status, reported.error);
}
