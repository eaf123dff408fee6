/**
 * The one interpreter of the job machine (src/domain/job-machine.ts), for jobs and front-door requests: handlers
 * post events, one loop steps the machine, and every command reports back as an event where it has a result.
 * Nothing here decides; it turns Temporal's signals, updates and timers into events and runs commands:
 * a job's attempt is an activity in its own cancellation scope (a preemption, a cancel or a revocation stops
 * it); a request's attempt runs in the API process, which asks for its slot with an update answered here.
 *
 * Failure model: no command failure fails the workflow. A pool that cannot be reached is logged, except for
 * the first arrival (the job then fails, saying so); an attempt's failure is an event; the outcome's write runs
 * in the root scope (no new work can cancel it) and its refusal is an event. The workflow returns only once no
 * command is in flight and every handler has finished.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  CancelledFailure,
  condition,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { requestLedgerRow, type RequestInput } from '../domain/front-door-protocol';
import { stepJob } from '../domain/job-machine';
import { jobOutcomeRow } from '../domain/job-outcome';
import { OUTCOME_NOT_STORABLE, SNAPSHOT_TEXT_LIMIT } from '../domain/job-policy';
import type { AttemptEnd, JobMachineCommand, JobMachineEvent, JobMachineState, PoolMessage } from '../domain/job-protocol';
import { jobStatusKey } from '../domain/search-attributes';
import type { JobInput, JobView, PlacementGrant, ProgressSnapshot } from '../domain/types';
import { jobDeliveryWorkflowId, poolWorkflowId } from '../ids';
import { BOOKKEEPING_ACTIVITY, INFERENCE_ACTIVITY, NOTIFICATION_ACTIVITY } from './activity-options';
import { jobDeliveryWorkflow } from './delivery';
import { foldReleaseIntoOutcome, type SlotRelease } from './outcome-release';
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
  requestAliveSignal,
  requestDoneSignal,
  requestSlotUpdate,
} from './messages';

const inference = proxyActivities<Activities>(INFERENCE_ACTIVITY);
const bookkeeping = proxyActivities<Activities>(BOOKKEEPING_ACTIVITY);
const notifications = proxyActivities<Activities>(NOTIFICATION_ACTIVITY);

/** What the machine starts from, and the input its commands need (a job's or a request's). */
export type JobRunSpec = {
  state: JobMachineState;
  arrivalSignalled: boolean;
  /** Machine 2: the outcome's write also gives the slot back (see outcome-release.ts). */
  outcomeGivesSlotBack?: boolean;
} & ({ kind: 'job'; input: JobInput } | { kind: 'request'; input: RequestInput });

type SlotAnswer = { grant: PlacementGrant } | { message: string; errorType: string };

/** Runs a job (or request) to its one terminal state; returns its final view. */
export async function interpretJob(spec: JobRunSpec): Promise<JobView> {
  let state = spec.state;
  let wakeAt: number | undefined;
  const events: JobMachineEvent[] = [];
  /** Commands the workflow must see finish before it returns (signals, the attempt, writes, notifications). */
  let inFlight = 0;
  let attemptScope: CancellationScope | undefined;
  const slotAnswers = new Map<number, SlotAnswer>();
  let asks = 0;
  const ids = { jobId: state.jobId, poolId: state.view.pool };
  const pool = getExternalWorkflowHandle(poolWorkflowId(state.view.pool));
  const post = (event: JobMachineEvent): void => {
    events.push(event);
  };

  setHandler(jobStateQuery, () => state.view);
  setHandler(jobPlacedSignal, (grant) => post({ type: 'placed', grant }));
  setHandler(jobRevokedSignal, ({ attempt, reason }) => post({ type: 'revoked', attempt, reason }));
  setHandler(jobPreemptSignal, (request) => post({ type: 'preemptRequested', ...request }));
  setHandler(cancelJobSignal, ({ reason }) => post({ type: 'cancelRequested', ...(reason !== undefined ? { reason } : {}) }));
  if (spec.kind === 'job') setHandler(jobProgressSignal, (progress) => post({ type: 'progressReported', ...progress }));
  else {
    setHandler(requestAliveSignal, () => post({ type: 'leaseRenewed' }));
    setHandler(requestDoneSignal, (outcome) => post({ type: 'requestDone', outcome }));
    setHandler(requestSlotUpdate, async ({ failedNodeId }) => {
      if (state.phase === 'ended') throw ApplicationFailure.nonRetryable(`request ${state.view.status}`, 'RequestOver');
      asks += 1;
      const askId = asks;
      post({ type: 'slotAsked', askId, ...(failedNodeId ? { failedNodeId } : {}) });
      await condition(() => slotAnswers.has(askId));
      const answer = slotAnswers.get(askId)!;
      slotAnswers.delete(askId);
      if ('grant' in answer) return answer.grant;
      throw ApplicationFailure.nonRetryable(answer.message, answer.errorType);
    });
  }

  /** Runs a command's promise as in flight; `then` turns its result into an event (or a log line). */
  const track = <T>(work: Promise<T>, then: (result: T) => void, failed: (err: unknown) => void) => {
    inFlight += 1;
    void work.then(then, failed).finally(() => {
      inFlight -= 1;
    });
  };

  const tellPool = (message: PoolMessage): Promise<void> => {
    if (message.kind === 'arrived') return pool.signal(jobArrivedSignal, message.arrival);
    if (message.kind === 'finished') return pool.signal(jobFinishedSignal, { jobId: state.jobId, attempt: message.attempt });
    return pool.signal(jobWithdrawnSignal, { jobId: state.jobId });
  };

  const runAttempt = (command: Extract<JobMachineCommand, { type: 'runAttempt' }>, input: JobInput) => {
    const { grant } = command;
    const scope = new CancellationScope();
    attemptScope = scope;
    const ended = (end: AttemptEnd) => post({ type: 'attemptEnded', attempt: grant.attempt, end });
    const attempt = scope.run(() =>
      inference.runInference({
        jobId: input.jobId,
        attempt: grant.attempt,
        nodeUrl: grant.nodeUrl,
        nodeId: grant.nodeId,
        model: input.model,
        payload: input.payload,
        ...(input.service ? { service: input.service } : {}),
        ...(command.resume ? { resume: command.resume } : {}),
        ...(input.progressToken ? { progressToken: input.progressToken } : {}),
      }),
    );
    track(
      attempt.finally(() => {
        if (attemptScope === scope) attemptScope = undefined;
      }),
      (result) => ended({ ok: true, result }),
      (err) => ended(attemptFailure(err, grant.attempt)),
    );
  };

  /** A job's outcome write; with `release`, it tells the pool the slot is free too (or the job does, if it could not). */
  const jobOutcomeWrite = (command: Extract<JobMachineCommand, { type: 'recordOutcome' }>, release?: SlotRelease) => {
    const input = { view: state.view, event: jobOutcomeRow(state.view, command.status, command.error) };
    if (!release) return bookkeeping.recordJobOutcome(input);
    return bookkeeping.recordJobOutcome({ ...input, release: { attempt: release.message.attempt } }).then(
      (written) => {
        if (!written.poolTold) run(release);
      },
      (err: unknown) => {
        run(release);
        throw err;
      },
    );
  };

  const recordOutcome = (command: Extract<JobMachineCommand, { type: 'recordOutcome' }>, release?: SlotRelease) => {
    const view = state.view;
    const write: Promise<unknown> =
      spec.kind === 'job'
        ? jobOutcomeWrite(command, release)
        : bookkeeping.recordLedgerEvent(
            requestLedgerRow({
              requestId: state.jobId,
              poolId: view.pool,
              route: spec.input.route,
              status: command.status,
              finishedAt: view.finishedAt!,
              attempt: view.attempt,
              nodeId: view.nodeId,
              startedAt: state.outcome?.startedAt,
              usage: state.outcome?.usage,
              stream: state.outcome?.stream,
              coldStartMs: view.coldStartMs,
              error: command.error,
            }),
          );
    track(
      write,
      () => {
        if (!command.bestEffort) post({ type: 'outcomeRecorded' });
      },
      (err) => {
        if (command.bestEffort) log.error('job outcome could not be stored', { ...ids, error: String(err) });
        else if (outcomeNotStorable(err))
          post({ type: 'outcomeNotStorable', error: (err as ActivityFailure).cause?.message ?? String(err) });
        else post({ type: 'outcomeRefused', error: String(err) });
      },
    );
  };

  const run = (command: JobMachineCommand) => {
    switch (command.type) {
      case 'tellPool':
        return track(
          tellPool(command.message),
          () => undefined,
          (err) => {
            if (command.mustReach) post({ type: 'poolUnreachable', error: String(err) });
            else log.warn('pool unreachable', { ...ids, error: String(err) });
          },
        );
      case 'runAttempt':
        if (spec.kind === 'job') runAttempt(command, spec.input);
        return;
      case 'stopAttempt':
        attemptScope?.cancel();
        return;
      case 'answerSlot':
        slotAnswers.set(command.askId, { grant: command.grant });
        return;
      case 'refuseSlot':
        slotAnswers.set(command.askId, { message: command.message, errorType: command.errorType });
        return;
      case 'indexStatus':
        upsertSearchAttributes([{ key: jobStatusKey, value: command.status }]);
        return;
      case 'notify':
        return track(
          notifications.notifyJobEvent({
            event: command.event,
            jobId: state.jobId,
            poolId: state.view.pool,
            priority: state.view.priority ?? 3,
            attempt: state.view.attempt,
            detail: command.detail,
          }),
          () => undefined,
          (err) => log.warn('notification failed', { ...ids, event: command.event, error: String(err) }),
        );
      case 'recordOutcome':
        return recordOutcome(command);
      case 'deliver':
        // The callback may be retried for hours: a child that outlives the job does it, so the job's result (and
        // whoever waits on it) is not held up.
        if (spec.kind !== 'job') return;
        return track(
          startChild(jobDeliveryWorkflow, {
            workflowId: jobDeliveryWorkflowId(state.jobId),
            parentClosePolicy: ParentClosePolicy.ABANDON,
            args: [{ view: state.view, callbackUrl: spec.input.callbackUrl, notify: spec.input.notify ?? false }],
          }),
          () => undefined,
          (err) => log.error('delivery could not start', { ...ids, error: String(err) }),
        );
      case 'log':
        log[command.level](command.message, { ...ids, ...command.fields });
        return;
    }
  };

  const apply = (event: JobMachineEvent, now = Date.now()) => {
    const out = stepJob(state, event, now);
    state = out.state;
    wakeAt = out.wakeAt;
    const { commands, release } = spec.outcomeGivesSlotBack ? foldReleaseIntoOutcome(out.commands) : { commands: out.commands };
    for (const command of commands) {
      if (release && command.type === 'recordOutcome' && !command.bestEffort) recordOutcome(command, release);
      else run(command);
    }
  };

  // Times the machine branches on come from history, never from when a worker happened to run the task (a worker
  // catching up after a crash runs old tasks at a later clock than a replay does): the start is the workflow's
  // start, and a timer's firing means its due time was reached.
  // One timer for the machine's wake-up, kept while its due time stays the same (each event would otherwise
  // cancel and start one: two history events each). Always a timer, even when due (at least 1 ms): whether one is
  // started must not depend on the clock.
  let timer: { dueAt: number; fired: boolean; scope: CancellationScope } | undefined;
  const armTimer = (dueAt: number | undefined) => {
    if (timer && timer.dueAt === dueAt && !timer.fired) return;
    timer?.scope.cancel();
    timer = undefined;
    if (dueAt === undefined) return;
    const armed = { dueAt, fired: false, scope: new CancellationScope() };
    timer = armed;
    armed.scope
      .run(() => sleep(Math.max(1, dueAt - Date.now())))
      .then(
        () => {
          armed.fired = true;
        },
        () => undefined,
      );
  };

  apply({ type: 'started', arrivalSignalled: spec.arrivalSignalled }, workflowInfo().startTime.getTime());
  while (state.phase !== 'ended') {
    if (events.length === 0) {
      armTimer(wakeAt);
      const current = timer;
      await condition(() => events.length > 0 || current?.fired === true);
      if (events.length === 0 && current?.fired) {
        timer = undefined;
        apply({ type: 'timerFired' }, Math.max(Date.now(), current.dueAt));
        continue;
      }
    }
    apply(events.shift()!);
  }
  armTimer(undefined);
  await condition(() => inFlight === 0 && allHandlersFinished());
  return state.view;
}

/** The outcome write failed for good because of what it holds (see recordJobOutcome). */
function outcomeNotStorable(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === OUTCOME_NOT_STORABLE;
}

/** An attempt's failure as plain data: its message, whether a retry may help, and the progress it stopped at. */
function attemptFailure(err: unknown, attempt: number): AttemptEnd {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const snapshot = snapshotOf(err, attempt);
  return {
    ok: false,
    message: cause instanceof Error ? cause.message : String(cause),
    retryable: cause instanceof ApplicationFailure ? !cause.nonRetryable : true,
    ...(snapshot ? { snapshot } : {}),
  };
}

/**
 * The progress an aborted inference attempt reported as it stopped: the activity's cancellation details, or,
 * when its worker died and it timed out instead, its last heartbeat.
 */
export function snapshotOf(failure: unknown, attempt: number): ProgressSnapshot | undefined {
  let error: unknown = failure;
  while (error instanceof Error) {
    if (error instanceof CancelledFailure || error instanceof TimeoutFailure) {
      const reported = error instanceof CancelledFailure ? error.details?.[0] : error.lastHeartbeatDetails;
      const details = reported as { completionTokens?: number; text?: string; at?: number } | undefined;
      if (details && typeof details.completionTokens === 'number') {
        return {
          attempt,
          completionTokens: details.completionTokens,
          text: String(details.text ?? '').slice(0, SNAPSHOT_TEXT_LIMIT),
          at: details.at ?? Date.now(),
          source: 'heartbeat',
        };
      }
      return undefined;
    }
    error = (error as Error & { cause?: unknown }).cause;
  }
  return undefined;
}
