/**
 * The job workflow's first body, frozen: runs started before the job machine (no `job-machine` marker in their
 * history) replay through it, so it stays exactly as they were recorded with. New runs use job.ts.
 *
 * The job workflow: one per job. It asks its pool for a slot, waits with its TTL as deadline, runs the
 * request as a heartbeating activity, gives the slot back, and ends in exactly one terminal state. It
 * retries failed attempts with backoff, obeys preemption (stops, keeps its progress, queues again and
 * resumes from the snapshot), and hands its callback and notification to a child that outlives it.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  log,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { OUTCOME_NOT_STORABLE } from '../domain/job-policy';
import { BOOKKEEPING_ACTIVITY, INFERENCE_ACTIVITY, NOTIFICATION_ACTIVITY } from './activity-options';
import type { InferenceResult } from '../domain/inference-request';
import { laterSnapshot, retryBackoffMs, SNAPSHOT_TEXT_LIMIT } from '../domain/job-policy';
import { DEFAULT_PRIORITY } from '../domain/placement';
import type { JobInput, JobRun, JobStatus, JobView, PlacementGrant, ProgressSnapshot } from '../domain/types';

import { jobStatusKey } from '../domain/search-attributes';
import { jobDeliveryWorkflowId, poolWorkflowId } from '../ids';
import type { JobEvent } from '../activities/notify';
import { jobDeliveryWorkflow } from './delivery';
import { snapshotOf } from './job-interpreter';
import { jobOutcomeRow } from '../domain/job-outcome';
import {
  cancelJobSignal,
  jobArrivedSignal,
  jobFinishedSignal,
  jobPlacedSignal,
  jobPreemptSignal,
  jobProgressSignal,
  jobRevokedSignal,
  jobStateQuery,
  jobWithdrawnSignal,
  type JobArrival,
} from './messages';

type TerminalJobStatus = 'completed' | 'failed' | 'expired' | 'cancelled';

/** The outcome write failed for good because of what it holds (see recordJobOutcome). */
function outcomeNotStorable(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === OUTCOME_NOT_STORABLE;
}

const inference = proxyActivities<Activities>(INFERENCE_ACTIVITY);
const bookkeeping = proxyActivities<Activities>(BOOKKEEPING_ACTIVITY);
const notifications = proxyActivities<Activities>(NOTIFICATION_ACTIVITY);

/** How long a job whose arrival the API signalled waits for a slot before announcing itself too. */
const ARRIVAL_CONFIRM_MS = 5000;

/** The job workflow as it was. Returns the job's final view. */
export async function legacyJobWorkflow(input: JobInput): Promise<JobView> {
  const priority = input.priority ?? DEFAULT_PRIORITY;
  const view: JobView = { id: input.jobId, pool: input.poolId, status: 'queued', attempt: 1, submittedAt: input.submittedAt, priority };
  let grant: PlacementGrant | undefined;
  let runScope: CancellationScope | undefined;
  let cancelReason: string | undefined;
  let preemptRequest: { attempt: number; reason: string; byJobId: string } | undefined;
  let failures = 0;
  let preemptions = 0;
  /** The snapshot the next attempt continues from (set by a preemption). */
  let resumeFrom: ProgressSnapshot | undefined;
  let pendingNotifications = 0;
  const terminal = () => view.finishedAt !== undefined;

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
  // Jobs submitted before priorities existed sent no priority field; keep their arrivals as they were.
  const arrival = (fields: Omit<JobArrival, 'jobId' | 'priority'>): JobArrival => ({
    jobId: input.jobId,
    ...fields,
    ...(input.priority !== undefined ? { priority } : {}),
  });

  const notify = (event: JobEvent, detail?: string) => {
    if (!input.notify) return;
    pendingNotifications += 1;
    void notifications
      .notifyJobEvent({ event, jobId: input.jobId, poolId: input.poolId, priority, attempt: view.attempt, detail })
      .catch((err) => log.warn('notification failed', { jobId: input.jobId, event, error: String(err) }))
      .finally(() => {
        pendingNotifications -= 1;
      });
  };

  setHandler(jobStateQuery, () => view);
  /** The wait for the API's arrival signal to be answered; whatever answers ends it in the handler itself. */
  let arrivalWindow: CancellationScope | undefined;
  setHandler(jobPlacedSignal, (g) => {
    if (g.attempt === view.attempt && !grant) grant = g;
    if (grant) arrivalWindow?.cancel();
  });
  setHandler(jobRevokedSignal, ({ attempt, reason }) => {
    if (attempt <= view.attempt) return;
    log.warn('placement revoked', { jobId: input.jobId, reason });
    view.attempt = attempt;
    grant = undefined;
    runScope?.cancel();
  });
  setHandler(jobPreemptSignal, (request) => {
    if (terminal() || request.attempt !== view.attempt || preemptRequest) return;
    preemptRequest = request;
    runScope?.cancel();
  });
  setHandler(jobProgressSignal, ({ attempt, completionTokens, text, at }) => {
    if (terminal() || (attempt !== undefined && attempt !== view.attempt)) return;
    const reported: ProgressSnapshot = {
      attempt: view.attempt,
      completionTokens,
      text: (text ?? '').slice(0, SNAPSHOT_TEXT_LIMIT),
      at,
      source: 'node',
    };
    view.progress = laterSnapshot(view.progress, reported);
  });
  setHandler(cancelJobSignal, ({ reason }) => {
    if (terminal()) return;
    cancelReason = reason ?? 'cancelled by request';
    runScope?.cancel();
    arrivalWindow?.cancel();
  });

  const setStatus = (status: JobStatus) => {
    view.status = status;
    if (input.indexed) upsertSearchAttributes([{ key: jobStatusKey, value: status }]);
  };

  const finish = async (status: TerminalJobStatus, error?: string): Promise<JobView> => {
    view.finishedAt = Date.now();
    view.error = error;
    view.retryAt = undefined;
    if (failures > 0) view.failures = failures;
    if (preemptions > 0) view.preemptions = preemptions;
    setStatus(status);
    const recordOutcome = (ended: TerminalJobStatus, reason: string | undefined) =>
      bookkeeping.recordJobOutcome({ view, event: jobOutcomeRow(view, ended, reason) });
    try {
      await recordOutcome(status, error);
    } catch (err) {
      if (outcomeNotStorable(err) && patched('unstorable-outcome-fails-job')) {
        // The outcome holds what PostgreSQL cannot store (a node answered text with a lone surrogate): no retry
        // can help. The job ends failed, once, saying why, without the text; its in-flight place is given back.
        const reason = `the job's ${status} outcome could not be stored (${(err as ActivityFailure).cause?.message}): its result was dropped`;
        view.result = undefined;
        view.progress = undefined;
        view.error = reason;
        setStatus('failed');
        await recordOutcome('failed', reason).catch((again) =>
          log.error('job outcome could not be stored', { jobId: input.jobId, error: String(again) }),
        );
      } else {
        // A ledger key already holding another event: the job's record was made terminal all the same, and the
        // job still ends as decided. Loud, never a failed workflow.
        log.error('job outcome row refused', { jobId: input.jobId, error: String(err) });
      }
    }
    if (input.callbackUrl || input.notify) {
      // The callback may be retried for hours: a child that outlives the job does it, so the job's
      // result (and whoever waits on it) is not held up.
      await startChild(jobDeliveryWorkflow, {
        workflowId: jobDeliveryWorkflowId(input.jobId),
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [{ view, callbackUrl: input.callbackUrl, notify: input.notify ?? false }],
      });
    }
    if (pendingNotifications > 0) await condition(() => pendingNotifications === 0);
    return view;
  };

  // The TTL runs on the workflow clock from the job's start (ms after the API accepted it), not on the API's
  // clock: the two may disagree, and retries or preemption never restart it.
  const deadline = workflowInfo().startTime.getTime() + input.ttlSeconds * 1000;

  const announce = async (): Promise<string | undefined> => {
    try {
      await poolHandle.signal(jobArrivedSignal, arrival({ attempt: 1, front: false }));
      return undefined;
    } catch (err) {
      return `pool ${input.poolId} is not running: ${String(err)}`;
    }
  };
  if (input.arrivalSignalled) {
    // A duplicate arrival is ignored by the pool, so re-sending after a quiet spell is always safe.
    const window = Math.min(ARRIVAL_CONFIRM_MS, Math.max(0, deadline - Date.now()));
    let heard: boolean;
    if (patched('arrival-window-ended-by-handler')) {
      // The placement (or a cancel) ends the window in its handler, before the window's timer can be seen to
      // fire in the same activation: a worker that was down gets both at once, and the outcome must not depend
      // on how the SDK orders them (a race here replayed differently from how it ran: a nondeterminism).
      arrivalWindow = new CancellationScope();
      if (grant !== undefined || cancelReason !== undefined) arrivalWindow.cancel();
      heard = await arrivalWindow
        .run(async () => {
          await sleep(window);
          return false;
        })
        .catch((err) => {
          if (isCancellation(err)) return true;
          throw err;
        });
      arrivalWindow = undefined;
    } else {
      heard = await condition(() => grant !== undefined || cancelReason !== undefined, window);
    }
    if (!heard) {
      const problem = await announce();
      if (problem) return finish('failed', problem);
    }
  } else {
    const problem = await announce();
    if (problem) return finish('failed', problem);
  }

  /** The attempt stopped for a preemption: keep its progress and queue the next attempt (no retry used). */
  const requeueAfterPreemption = async (current: PlacementGrant, snapshot: ProgressSnapshot | undefined) => {
    const request = preemptRequest!;
    preemptRequest = undefined;
    preemptions += 1;
    view.preemptions = preemptions;
    if (snapshot) {
      view.progress = laterSnapshot(view.progress, snapshot);
      resumeFrom = laterSnapshot(resumeFrom, view.progress);
    }
    log.info('preempted; queueing again', {
      jobId: input.jobId,
      nodeId: current.nodeId,
      by: request.byJobId,
      tokens: resumeFrom?.completionTokens ?? 0,
    });
    notify('preempted', `${request.reason}; ${resumeFrom?.completionTokens ?? 0} tokens kept`);
    view.attempt = current.attempt + 1;
    grant = undefined;
    setStatus('queued');
    await pool.signal(jobArrivedSignal, arrival({ attempt: view.attempt, front: false }));
  };

  // The TTL's end and a placement can come in one activation too: decide on the grant the job holds, not on
  // which of the two won condition()'s race (the SDK may order them differently on replay).
  const placementDecidesTtl = patched('ttl-decided-by-grant');
  for (;;) {
    const inTime = await condition(() => grant !== undefined || cancelReason !== undefined, Math.max(0, deadline - Date.now()));
    const placed = placementDecidesTtl ? grant !== undefined : inTime;
    if (cancelReason !== undefined) {
      await pool.signal(jobWithdrawnSignal, { jobId: input.jobId });
      return finish('cancelled', cancelReason);
    }
    if (!placed) {
      await pool.signal(jobWithdrawnSignal, { jobId: input.jobId });
      return finish('expired', `not placed within ttl of ${input.ttlSeconds} s`);
    }
    const current = grant!;
    view.retryAt = undefined;
    if (preemptRequest?.attempt === current.attempt) {
      // Preempted before the request went out: nothing to stop at the node.
      await requeueAfterPreemption(current, undefined);
      continue;
    }
    view.nodeId = current.nodeId;
    view.placedAt ??= Date.now();
    view.queueMs ??= view.placedAt - input.submittedAt;
    if (view.coldStartMs === undefined) {
      view.coldStartMs = current.coldStartMs;
      if (current.coldStart) view.coldStartPhases = current.coldStart;
    }
    setStatus('running');
    if (resumeFrom) notify('resumed', `continuing from ${resumeFrom.completionTokens} tokens on ${current.nodeId}`);

    let result: InferenceResult | undefined;
    let failure: unknown;
    runScope = new CancellationScope();
    const runStartedAt = Date.now();
    const run: JobRun = { nodeId: current.nodeId, attempt: current.attempt, startedAt: runStartedAt, endedAt: runStartedAt };
    try {
      result = await runScope.run(() =>
        inference.runInference({
          jobId: input.jobId,
          attempt: current.attempt,
          nodeUrl: current.nodeUrl,
          nodeId: current.nodeId,
          model: input.model,
          payload: input.payload,
          ...(input.service ? { service: input.service } : {}),
          ...(resumeFrom ? { resume: { completionTokens: resumeFrom.completionTokens, text: resumeFrom.text } } : {}),
          ...(input.progressToken ? { progressToken: input.progressToken } : {}),
        }),
      );
    } catch (err) {
      failure = err;
    } finally {
      runScope = undefined;
      run.endedAt = Date.now();
      view.runs ??= [];
      view.runs.push(run);
    }

    if (result) {
      run.outcome = 'completed';
      await pool.signal(jobFinishedSignal, { jobId: input.jobId, attempt: current.attempt });
      view.usage = result.usage;
      view.result = result.response ? { response: result.response } : { text: result.text };
      view.runMs = result.finishedAt - result.startedAt;
      view.startedAt = result.startedAt;
      return finish('completed');
    }
    if (cancelReason !== undefined) {
      run.outcome = 'cancelled';
      await pool.signal(jobWithdrawnSignal, { jobId: input.jobId });
      return finish('cancelled', cancelReason);
    }
    if (preemptRequest?.attempt === current.attempt) {
      run.outcome = 'preempted';
      await requeueAfterPreemption(current, snapshotOf(failure, current.attempt));
      continue;
    }
    if (view.attempt > current.attempt) {
      // The pool revoked the slot (node lost) and already requeued us as view.attempt.
      run.outcome = 'revoked';
      failures += 1;
      view.failures = failures;
      if (failures >= input.maxAttempts) {
        await pool.signal(jobWithdrawnSignal, { jobId: input.jobId });
        return finish('failed', `gave up after ${failures} failed attempts: node lost`);
      }
      setStatus('queued');
      continue;
    }
    run.outcome = 'failed';
    const cause = failure instanceof ActivityFailure ? failure.cause : failure;
    const retryable = cause instanceof ApplicationFailure ? !cause.nonRetryable : true;
    const message = cause instanceof Error ? cause.message : String(cause);
    failures += 1;
    view.failures = failures;
    if (!retryable || failures >= input.maxAttempts) {
      await pool.signal(jobFinishedSignal, { jobId: input.jobId, attempt: current.attempt });
      return finish('failed', retryable ? `gave up after ${failures} failed attempts: ${message}` : message);
    }
    // The node failed us before the pool noticed: back off, then take the next free slot ahead of
    // jobs of the same priority. The pool holds the place (and keeps the capacity) during the backoff.
    view.attempt = current.attempt + 1;
    view.retryAt = Date.now() + retryBackoffMs(failures);
    grant = undefined;
    setStatus('queued');
    log.warn('attempt failed; retrying after backoff', { jobId: input.jobId, nodeId: current.nodeId, failures, error: message });
    await pool.signal(
      jobArrivedSignal,
      arrival({ attempt: view.attempt, front: true, failedNodeId: current.nodeId, notBefore: view.retryAt }),
    );
  }
}
