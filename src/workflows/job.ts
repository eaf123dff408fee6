/**
 * The job workflow: one per job. It asks its pool for a slot, waits with its TTL as deadline, runs the
 * request as a heartbeating activity, gives the slot back, and ends in exactly one terminal state.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { InferenceResult } from '../activities/inference';
import type { LedgerEventType } from '../db/ledger';
import type { JobInput, JobStatus, JobView, PlacementGrant } from '../domain/types';
import { jobStatusKey } from '../domain/search-attributes';
import { poolWorkflowId } from '../ids';
import { cancelJobSignal, jobArrivedSignal, jobFinishedSignal, jobPlacedSignal, jobRevokedSignal, jobStateQuery, jobWithdrawnSignal } from './messages';

const inference = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  // The job retries through its pool (a new placement), never blindly on the same node.
  retry: { maximumAttempts: 1 },
});
const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '30 seconds' },
});

/** How long a job whose arrival the API signalled waits for a slot before announcing itself too. */
const ARRIVAL_CONFIRM_MS = 5000;

/** The job workflow. Returns the job's final view. */
export async function jobWorkflow(input: JobInput): Promise<JobView> {
  const view: JobView = { id: input.jobId, pool: input.poolId, status: 'queued', attempt: 1, submittedAt: input.submittedAt };
  let grant: PlacementGrant | undefined;
  let runScope: CancellationScope | undefined;
  let cancelReason: string | undefined;
  const poolHandle = getExternalWorkflowHandle(poolWorkflowId(input.poolId));
  // Messages to the pool after arrival must not fail the job if the pool is gone (deleted, terminated).
  const pool = {
    signal: async <A extends unknown[]>(def: Parameters<typeof poolHandle.signal<A>>[0], ...args: A): Promise<void> => {
      try {
        await poolHandle.signal(def, ...args);
      } catch (err) {
        log.warn('pool unreachable', { jobId: input.jobId, poolId: input.poolId, error: String(err) });
      }
    },
  };

  setHandler(jobStateQuery, () => view);
  setHandler(jobPlacedSignal, (g) => {
    if (g.attempt === view.attempt && !grant) grant = g;
  });
  setHandler(jobRevokedSignal, ({ attempt, reason }) => {
    if (attempt <= view.attempt) return;
    log.warn('placement revoked', { jobId: input.jobId, reason });
    view.attempt = attempt;
    grant = undefined;
    runScope?.cancel();
  });
  setHandler(cancelJobSignal, ({ reason }) => {
    cancelReason = reason ?? 'cancelled by request';
    runScope?.cancel();
  });

  const setStatus = (status: JobStatus) => {
    view.status = status;
    if (input.indexed) upsertSearchAttributes([{ key: jobStatusKey, value: status }]);
  };

  const finish = async (status: JobStatus, error?: string): Promise<JobView> => {
    view.finishedAt = Date.now();
    view.error = error;
    setStatus(status);
    const eventType = `job_${status}` as LedgerEventType;
    await bookkeeping.recordJobOutcome({
      view,
      event: {
        eventKey: `${input.jobId}:${status}`,
        eventType,
        occurredAt: view.finishedAt,
        poolId: input.poolId,
        jobId: input.jobId,
        nodeId: view.nodeId,
        details: { attempt: view.attempt, usage: view.usage, queueMs: view.queueMs, runMs: view.runMs, error, runs: view.runs ?? [] },
      },
    });
    return view;
  };

  // The TTL runs on the workflow clock from the job's start (ms after the API accepted it), not on the API's
  // clock: the two may disagree, and retries or preemption never restart it.
  const deadline = workflowInfo().startTime.getTime() + input.ttlSeconds * 1000;

  const announce = async (): Promise<string | undefined> => {
    try {
      await poolHandle.signal(jobArrivedSignal, { jobId: input.jobId, attempt: 1, front: false });
      return undefined;
    } catch (err) {
      return `pool ${input.poolId} is not running: ${String(err)}`;
    }
  };
  if (input.arrivalSignalled) {
    // A duplicate arrival is ignored by the pool, so re-sending after a quiet spell is always safe.
    const window = Math.min(ARRIVAL_CONFIRM_MS, Math.max(0, deadline - Date.now()));
    const heard = await condition(() => grant !== undefined || cancelReason !== undefined, window);
    if (!heard) {
      const problem = await announce();
      if (problem) return finish('failed', problem);
    }
  } else {
    const problem = await announce();
    if (problem) return finish('failed', problem);
  }
  for (;;) {
    const placed = await condition(() => grant !== undefined || cancelReason !== undefined, Math.max(0, deadline - Date.now()));
    if (cancelReason !== undefined) {
      await pool.signal(jobWithdrawnSignal, { jobId: input.jobId });
      return finish('cancelled', cancelReason);
    }
    if (!placed) {
      await pool.signal(jobWithdrawnSignal, { jobId: input.jobId });
      return finish('expired', `not placed within ttl of ${input.ttlSeconds} s`);
    }
    const current = grant!;
    view.nodeId = current.nodeId;
    view.placedAt ??= Date.now();
    view.queueMs ??= view.placedAt - input.submittedAt;
    view.coldStartMs ??= current.coldStartMs;
    setStatus('running');

    let result: InferenceResult | undefined;
    let failure: unknown;
    runScope = new CancellationScope();
    const runStartedAt = Date.now();
    try {
      result = await runScope.run(() =>
        inference.runInference({ jobId: input.jobId, attempt: current.attempt, nodeUrl: current.nodeUrl, model: input.model, payload: input.payload }),
      );
    } catch (err) {
      failure = err;
    } finally {
      runScope = undefined;
      (view.runs ??= []).push({ nodeId: current.nodeId, attempt: current.attempt, startedAt: runStartedAt, endedAt: Date.now() });
    }

    if (result) {
      await pool.signal(jobFinishedSignal, { jobId: input.jobId, attempt: current.attempt });
      view.usage = result.usage;
      view.result = { text: result.text };
      view.runMs = result.finishedAt - result.startedAt;
      view.startedAt = result.startedAt;
      return finish('completed');
    }
    if (cancelReason !== undefined) {
      await pool.signal(jobWithdrawnSignal, { jobId: input.jobId });
      return finish('cancelled', cancelReason);
    }
    if (view.attempt > current.attempt) {
      // The pool revoked the slot (node lost) and already requeued us as view.attempt.
      if (view.attempt > input.maxAttempts) {
        await pool.signal(jobWithdrawnSignal, { jobId: input.jobId });
        return finish('failed', `gave up after ${input.maxAttempts} attempts: node lost`);
      }
      setStatus('queued');
      continue;
    }
    const cause = failure instanceof ActivityFailure ? failure.cause : failure;
    const retryable = cause instanceof ApplicationFailure ? !cause.nonRetryable : true;
    const message = cause instanceof Error ? cause.message : String(cause);
    if (!retryable || view.attempt >= input.maxAttempts) {
      await pool.signal(jobFinishedSignal, { jobId: input.jobId, attempt: current.attempt });
      return finish('failed', message);
    }
    // The node failed us before the pool noticed: ask for a new slot at the front of the queue.
    view.attempt = current.attempt + 1;
    grant = undefined;
    setStatus('queued');
    await pool.signal(jobArrivedSignal, { jobId: input.jobId, attempt: view.attempt, front: true, failedNodeId: current.nodeId });
  }
}
