/**
 * A job as a pure state machine: `stepJob(state, event, now) → { state, commands, wakeAt }`, for jobs and
 * front-door requests alike (job-protocol.ts). No Temporal here: the workflows (job.ts, request.ts) hand every
 * signal, update, timer and command result to it through one interpreter, and run what it asks.
 *
 * The rules, in the order a job meets them:
 * - **arrival**: a job the API already announced waits ARRIVAL_CONFIRM_MS for a slot, then announces itself too
 *   (a duplicate arrival is ignored by the pool); otherwise it announces itself at once. A first arrival that
 *   cannot reach the pool fails the job.
 * - **placement**: a grant for the current attempt is taken once; a job runs its attempt at once, a request
 *   answers the API's slot ask (now, or when the API asks). A grant decides against the deadline: once the
 *   machine holds one, the TTL no longer applies (it bounds the wait for a slot, not the run).
 * - **deadline**: no grant by the TTL (a request: its park timeout): the job leaves the pool, expired.
 * - **cancel**: a waiting job leaves at once; a running job's attempt is stopped and then it ends cancelled; a
 *   running request goes on until the API reports its end (the API sees its client go).
 * - **preemption** (jobs; a request is short and streams to a waiting client, so it is never stopped): the
 *   attempt stops, its progress is kept, and the job queues again as the next attempt, no retry used.
 * - **revocation** (the pool lost the node and requeued the job): a failure; the job waits for its new slot,
 *   or fails after maxAttempts.
 * - **failure**: a retryable one queues the next attempt ahead of its priority after a backoff (the pool holds
 *   the place); a non-retryable one, or the last allowed, fails the job.
 * - **lease** (requests): the API renews it while it streams; REQUEST_LEASE_MS without a renewal ends the
 *   request failed (its API process died) and frees the slot.
 * - **the end**: exactly one terminal status, one outcome write (an outcome PostgreSQL cannot store ends the job
 *   failed, once, without the text), then the callback and notification are handed to a child that outlives it.
 */
import { REQUEST_LEASE_MS, type RequestInput } from './front-door-protocol';
import { DEFAULT_PRIORITY } from './placement';
import { jsonCopy } from './plain-json';
import { laterSnapshot, retryBackoffMs, SNAPSHOT_TEXT_LIMIT } from './job-policy';
import type {
  AttemptEnd,
  JobMachineCommand,
  JobMachineEvent,
  JobMachineState,
  JobStepResult,
  NotifiedJobEvent,
  PoolMessage,
  TerminalJobStatus,
} from './job-protocol';
import type { JobArrival } from './pool-protocol';
import type { JobInput, JobRun, JobStatus, PlacementGrant, ProgressSnapshot } from './types';

/** How long a job whose arrival the API signalled waits for a slot before announcing itself too. */
export const ARRIVAL_CONFIRM_MS = 5000;

/** Applies one event to a copy of the state; the input is never mutated. */
export function stepJob(state: JobMachineState, event: JobMachineEvent, now: number): JobStepResult {
  const m = new JobStep(jsonCopy(state), now);
  m.apply(event);
  return { state: m.state, commands: m.commands, wakeAt: m.wakeAt() };
}

class JobStep {
  readonly commands: JobMachineCommand[] = [];

  constructor(
    readonly state: JobMachineState,
    readonly now: number,
  ) {}

  apply(event: JobMachineEvent): void {
    const s = this.state;
    if (s.phase === 'ended') return;
    if (s.phase === 'ending') {
      // Only the outcome's write matters now (the job has its one terminal state), and a slot asked for too late.
      if (event.type === 'outcomeRecorded' || event.type === 'outcomeRefused' || event.type === 'outcomeNotStorable')
        this.outcomeWritten(event);
      if (event.type === 'slotAsked') this.refuseSlot(event.askId);
      return;
    }
    switch (event.type) {
      case 'started':
        if (event.arrivalSignalled) {
          s.phase = 'confirming';
          s.arrivalWindowEndsAt = this.now + Math.min(ARRIVAL_CONFIRM_MS, Math.max(0, s.deadline - this.now));
        } else this.announce();
        return;
      case 'timerFired':
        this.timerFired();
        return;
      case 'placed':
        this.placed(event.grant);
        return;
      case 'revoked':
        this.revoked(event.attempt, event.reason);
        return;
      case 'preemptRequested':
        if (s.kind === 'request' || event.attempt !== s.view.attempt || s.preempt) return;
        s.preempt = { attempt: event.attempt, reason: event.reason, byJobId: event.byJobId };
        if (s.phase === 'running') this.commands.push({ type: 'stopAttempt' });
        return;
      case 'cancelRequested':
        this.cancelRequested(event.reason);
        return;
      case 'progressReported': {
        if (event.attempt !== undefined && event.attempt !== s.view.attempt) return;
        const reported: ProgressSnapshot = {
          attempt: s.view.attempt,
          completionTokens: event.completionTokens,
          text: (event.text ?? '').slice(0, SNAPSHOT_TEXT_LIMIT),
          at: event.at,
          source: 'node',
        };
        s.view.progress = laterSnapshot(s.view.progress, reported);
        return;
      }
      case 'attemptEnded':
        this.attemptEnded(event.attempt, event.end);
        return;
      case 'poolUnreachable':
        if (s.grant || s.view.attempt > 1) return;
        this.finish('failed', `pool ${s.view.pool} is not running: ${event.error}`);
        return;
      case 'slotAsked':
        this.slotAsked(event.askId, event.failedNodeId);
        return;
      case 'leaseRenewed':
        s.leaseRenewedAt = this.now;
        return;
      case 'requestDone':
        this.requestDone(event);
        return;
      case 'outcomeRecorded':
      case 'outcomeRefused':
      case 'outcomeNotStorable':
        return;
    }
  }

  // ---- arrival, placement, the deadline ---------------------------------------------------------------------

  private announce(): void {
    const s = this.state;
    s.phase = 'queued';
    s.arrivalWindowEndsAt = undefined;
    this.tellPool({ kind: 'arrived', arrival: this.arrival({ attempt: 1, front: false }) }, true);
  }

  private timerFired(): void {
    const s = this.state;
    if (this.awaitsDeadline() && this.now >= s.deadline) {
      this.tellPool({ kind: 'withdrawn' });
      this.finish('expired', s.expiredText);
      return;
    }
    if (s.phase === 'confirming' && this.now >= (s.arrivalWindowEndsAt ?? 0)) this.announce();
    if (s.kind === 'request' && s.phase === 'running' && this.now >= (s.leaseCheckAt ?? 0)) {
      // A renewal does not move the check (that would restart the timer each time): the check moves on here.
      s.leaseCheckAt = this.leaseEndsAt();
    }
    if (s.kind === 'request' && s.phase === 'running' && this.now >= this.leaseEndsAt()) {
      this.tellPool({ kind: 'finished', attempt: s.view.attempt });
      this.finish('failed', 'the API process running the request stopped renewing its lease');
    }
  }

  private placed(grant: PlacementGrant): void {
    const s = this.state;
    if (grant.attempt !== s.view.attempt || s.grant) return;
    s.grant = grant;
    if (s.phase === 'confirming') {
      s.phase = 'queued';
      s.arrivalWindowEndsAt = undefined;
    }
    if (s.kind === 'job') this.startAttempt();
    else for (const askId of s.slotAsks.splice(0)) this.answerSlot(askId);
  }

  /** A job with a grant runs its attempt, unless a preemption came for it first (then it queues again at once). */
  private startAttempt(): void {
    const s = this.state;
    const grant = s.grant!;
    if (s.phase !== 'queued') return;
    s.view.retryAt = undefined;
    if (s.preempt?.attempt === grant.attempt) {
      this.requeueAfterPreemption(undefined);
      return;
    }
    this.takeSlot(grant);
    s.runStartedAt = this.now;
    if (s.resumeFrom) this.notify('resumed', `continuing from ${s.resumeFrom.completionTokens} tokens on ${grant.nodeId}`);
    this.commands.push({
      type: 'runAttempt',
      grant,
      ...(s.resumeFrom ? { resume: { completionTokens: s.resumeFrom.completionTokens, text: s.resumeFrom.text } } : {}),
    });
  }

  /** The job (or request) is on its node: the view says where, since when, and what its cold start was. */
  private takeSlot(grant: PlacementGrant): void {
    const s = this.state;
    const view = s.view;
    s.phase = 'running';
    view.nodeId = grant.nodeId;
    if (s.kind === 'job') {
      view.placedAt ??= this.now;
      view.queueMs ??= view.placedAt - view.submittedAt;
    }
    if (view.coldStartMs === undefined) {
      view.coldStartMs = grant.coldStartMs;
      if (grant.coldStart) view.coldStartPhases = grant.coldStart;
    }
    this.setStatus('running');
  }

  private cancelRequested(reason: string | undefined): void {
    const s = this.state;
    if (s.kind === 'request') {
      s.cancelReason ??= reason ?? 'cancelled by the client';
      // A running request goes on until the API reports it: the API sees its client go and stops it.
      if (s.phase === 'running') return;
    } else s.cancelReason = reason ?? 'cancelled by request';
    if (s.phase === 'running') {
      this.commands.push({ type: 'stopAttempt' });
      return;
    }
    this.tellPool({ kind: 'withdrawn' });
    this.finish('cancelled', s.cancelReason);
  }

  /** The pool lost the node and requeued the job as `attempt` (a revoked attempt counts as a failure). */
  private revoked(attempt: number, reason: string): void {
    const s = this.state;
    if (attempt <= s.view.attempt) return;
    this.log('warn', 'placement revoked', { reason });
    s.view.attempt = attempt;
    s.grant = undefined;
    if (s.kind === 'request') {
      // The API sees the failure itself and asks again; until then the request is parked.
      if (s.phase === 'running') s.phase = 'queued';
      return;
    }
    if (s.phase === 'running') this.commands.push({ type: 'stopAttempt' });
  }

  // ---- a job's attempt ends -----------------------------------------------------------------------------------

  private attemptEnded(attempt: number, end: AttemptEnd): void {
    const s = this.state;
    const current = s.grant;
    if (s.phase !== 'running' || !current || attempt !== current.attempt) {
      // A revoked attempt's grant is gone already; its run is still recorded below by attempt number.
      if (s.phase !== 'running' || s.view.attempt <= attempt) return;
    }
    const run: JobRun = {
      nodeId: s.view.nodeId ?? '',
      attempt,
      startedAt: s.runStartedAt ?? this.now,
      endedAt: this.now,
    };
    s.runStartedAt = undefined;
    s.view.runs = [...(s.view.runs ?? []), run];
    if (end.ok) {
      run.outcome = 'completed';
      this.tellPool({ kind: 'finished', attempt });
      s.view.usage = end.result.usage;
      s.view.result = end.result.response ? { response: end.result.response } : { text: end.result.text };
      s.view.runMs = end.result.finishedAt - end.result.startedAt;
      s.view.startedAt = end.result.startedAt;
      this.finish('completed');
      return;
    }
    if (s.cancelReason !== undefined) {
      run.outcome = 'cancelled';
      this.tellPool({ kind: 'withdrawn' });
      this.finish('cancelled', s.cancelReason);
      return;
    }
    if (s.preempt?.attempt === attempt) {
      run.outcome = 'preempted';
      this.requeueAfterPreemption(end.snapshot);
      return;
    }
    if (s.view.attempt > attempt) {
      // Revoked: the pool already requeued the job as view.attempt.
      run.outcome = 'revoked';
      if (this.failed()) {
        this.tellPool({ kind: 'withdrawn' });
        this.finish('failed', `gave up after ${s.failures} failed attempts: node lost`);
        return;
      }
      s.phase = 'queued';
      this.setStatus('queued');
      // Its next slot may have come before this attempt had stopped.
      if (s.grant) this.startAttempt();
      return;
    }
    run.outcome = 'failed';
    if (!end.retryable || this.failed()) {
      this.tellPool({ kind: 'finished', attempt });
      this.finish('failed', end.retryable ? `gave up after ${s.failures} failed attempts: ${end.message}` : end.message);
      return;
    }
    // The node failed us before the pool noticed: back off, then take the next free slot ahead of jobs of the
    // same priority. The pool holds the place (and keeps the capacity) during the backoff.
    s.view.attempt = attempt + 1;
    s.view.retryAt = this.now + retryBackoffMs(s.failures);
    s.grant = undefined;
    s.phase = 'queued';
    this.setStatus('queued');
    this.log('warn', 'attempt failed; retrying after backoff', { nodeId: current?.nodeId, failures: s.failures, error: end.message });
    this.tellPool({
      kind: 'arrived',
      arrival: this.arrival({ attempt: s.view.attempt, front: true, failedNodeId: current?.nodeId, notBefore: s.view.retryAt }),
    });
  }

  /** Counts one failure; true when no attempt is left. */
  private failed(): boolean {
    const s = this.state;
    s.failures += 1;
    s.view.failures = s.failures;
    return s.failures >= s.maxFailures;
  }

  /** The attempt stopped for a preemption (or before it went out): keep its progress, queue the next attempt. */
  private requeueAfterPreemption(snapshot: ProgressSnapshot | undefined): void {
    const s = this.state;
    const request = s.preempt!;
    const current = s.grant!;
    s.preempt = undefined;
    s.preemptions += 1;
    s.view.preemptions = s.preemptions;
    if (snapshot) {
      s.view.progress = laterSnapshot(s.view.progress, snapshot);
      s.resumeFrom = laterSnapshot(s.resumeFrom, s.view.progress);
    }
    const tokens = s.resumeFrom?.completionTokens ?? 0;
    this.log('info', 'preempted; queueing again', { nodeId: current.nodeId, by: request.byJobId, tokens });
    this.notify('preempted', `${request.reason}; ${tokens} tokens kept`);
    s.view.attempt = current.attempt + 1;
    s.grant = undefined;
    s.phase = 'queued';
    this.setStatus('queued');
    this.tellPool({ kind: 'arrived', arrival: this.arrival({ attempt: s.view.attempt, front: false }) });
  }

  // ---- a request's slot, lease and end --------------------------------------------------------------------------

  private slotAsked(askId: number, failedNodeId: string | undefined): void {
    const s = this.state;
    if (failedNodeId && s.grant?.nodeId === failedNodeId) {
      // The node failed before answering: another slot, ahead of requests of the same priority.
      if (this.failed()) {
        this.commands.push({
          type: 'refuseSlot',
          askId,
          message: `${s.failures} nodes failed before answering`,
          errorType: 'RequestFailed',
        });
        return;
      }
      s.view.attempt = s.grant.attempt + 1;
      s.grant = undefined;
      s.phase = 'queued';
      this.tellPool({ kind: 'arrived', arrival: this.arrival({ attempt: s.view.attempt, front: true, failedNodeId }) });
    }
    if (s.grant) {
      this.answerSlot(askId);
      return;
    }
    s.slotAsks.push(askId);
  }

  private answerSlot(askId: number): void {
    const s = this.state;
    if (s.phase !== 'running') {
      this.takeSlot(s.grant!);
      s.leaseRenewedAt = this.now;
      s.leaseCheckAt = this.leaseEndsAt();
    }
    this.commands.push({ type: 'answerSlot', askId, grant: s.grant! });
  }

  /**
   * Whether the deadline still applies: while waiting without a grant; for a request, also while it holds a grant
   * its API has not taken (an API process that died before asking must not hold the slot for ever).
   */
  private awaitsDeadline(): boolean {
    const s = this.state;
    return (s.phase === 'confirming' || s.phase === 'queued') && (!s.grant || s.kind === 'request');
  }

  private leaseEndsAt(): number {
    return (this.state.leaseRenewedAt ?? this.now) + REQUEST_LEASE_MS;
  }

  private requestDone(event: Extract<JobMachineEvent, { type: 'requestDone' }>): void {
    const s = this.state;
    s.outcome ??= event.outcome;
    const reported = s.outcome;
    if (reported.nodeId) s.view.nodeId = reported.nodeId;
    if (s.phase === 'running' || s.grant) this.tellPool({ kind: 'finished', attempt: s.view.attempt });
    else this.tellPool({ kind: 'withdrawn' });
    this.finish(reported.status, reported.error);
  }

  // ---- the end ------------------------------------------------------------------------------------------------

  private finish(status: TerminalJobStatus, error?: string): void {
    const s = this.state;
    const view = s.view;
    s.phase = 'ending';
    view.finishedAt = s.outcome?.finishedAt ?? this.now;
    view.error = error;
    view.retryAt = undefined;
    if (s.kind === 'job') {
      if (s.failures > 0) view.failures = s.failures;
      if (s.preemptions > 0) view.preemptions = s.preemptions;
    } else if (s.outcome?.usage) view.usage = s.outcome.usage;
    this.setStatus(status);
    // Any slot ask still waiting is answered: nothing will be placed any more.
    for (const askId of s.slotAsks.splice(0)) this.refuseSlot(askId);
    this.commands.push({ type: 'recordOutcome', status, ...(error !== undefined ? { error } : {}) });
  }

  /** A slot ask that comes when the request is over: refused, saying how it ended. */
  private refuseSlot(askId: number): void {
    const s = this.state;
    const expired = s.view.status === 'expired';
    const message = expired ? s.expiredText : `request ${s.view.status}`;
    this.commands.push({ type: 'refuseSlot', askId, message, errorType: expired ? 'ParkTimeout' : 'RequestOver' });
  }

  private outcomeWritten(event: Extract<JobMachineEvent, { type: 'outcomeRecorded' | 'outcomeRefused' | 'outcomeNotStorable' }>): void {
    const s = this.state;
    if (event.type === 'outcomeNotStorable' && s.view.status !== 'failed') {
      // What a node answered cannot be stored (a lone surrogate in its text): no retry can help. The job ends
      // failed, once, saying why, without the text.
      const reason = `the job's ${s.view.status} outcome could not be stored (${event.error}): its result was dropped`;
      s.view.result = undefined;
      s.view.progress = undefined;
      s.view.error = reason;
      this.setStatus('failed');
      this.commands.push({ type: 'recordOutcome', status: 'failed', error: reason, bestEffort: true });
    } else if (event.type !== 'outcomeRecorded') {
      // A ledger key already holding another event: the record was made terminal all the same. Loud, never a crash.
      this.log('error', 'job outcome row refused', { error: event.error });
    }
    if (s.deliver) this.commands.push({ type: 'deliver' });
    s.phase = 'ended';
  }

  // ---- helpers ------------------------------------------------------------------------------------------------

  private setStatus(status: JobStatus): void {
    const s = this.state;
    s.view.status = status;
    if (s.indexed && s.indexedStatus !== status) {
      s.indexedStatus = status;
      this.commands.push({ type: 'indexStatus', status });
    }
  }

  private arrival(fields: Omit<JobArrival, 'jobId' | 'priority'>): JobArrival {
    const s = this.state;
    const { failedNodeId, notBefore, ...rest } = fields;
    return {
      jobId: s.jobId,
      ...rest,
      ...(failedNodeId !== undefined ? { failedNodeId } : {}),
      ...(notBefore !== undefined ? { notBefore } : {}),
      ...(s.arrivalPriority !== undefined ? { priority: s.arrivalPriority } : {}),
    };
  }

  private tellPool(message: PoolMessage, mustReach = false): void {
    this.commands.push({ type: 'tellPool', message, ...(mustReach ? { mustReach } : {}) });
  }

  private notify(event: NotifiedJobEvent, detail?: string): void {
    if (this.state.notify) this.commands.push({ type: 'notify', event, ...(detail !== undefined ? { detail } : {}) });
  }

  private log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
    this.commands.push({ type: 'log', level, message, fields });
  }

  /** The earliest time the machine needs to look again without any event. */
  wakeAt(): number | undefined {
    const s = this.state;
    const times: number[] = [];
    if (this.awaitsDeadline()) times.push(s.deadline);
    if (s.phase === 'confirming' && s.arrivalWindowEndsAt !== undefined) times.push(s.arrivalWindowEndsAt);
    if (s.kind === 'request' && s.phase === 'running' && s.leaseCheckAt !== undefined) times.push(s.leaseCheckAt);
    return times.length > 0 ? Math.min(...times) : undefined;
  }
}

/** A job's machine as its workflow starts (`startedAt`: workflow time; the TTL counts from it). */
export function newJobMachine(input: JobInput, startedAt: number): JobMachineState {
  return {
    kind: 'job',
    jobId: input.jobId,
    phase: 'queued',
    ...(input.priority !== undefined ? { arrivalPriority: input.priority } : {}),
    deadline: startedAt + input.ttlSeconds * 1000,
    expiredText: `not placed within ttl of ${input.ttlSeconds} s`,
    maxFailures: input.maxAttempts,
    notify: input.notify ?? false,
    deliver: Boolean(input.callbackUrl || input.notify),
    indexed: input.indexed,
    // The API starts the workflow with its status attribute `queued`.
    indexedStatus: 'queued',
    failures: 0,
    preemptions: 0,
    slotAsks: [],
    view: {
      id: input.jobId,
      pool: input.poolId,
      status: 'queued',
      attempt: 1,
      submittedAt: input.submittedAt,
      priority: input.priority ?? DEFAULT_PRIORITY,
    },
  };
}

/** Nodes that may fail a front-door request before its first byte before it gives up. */
export const MAX_REQUEST_NODE_FAILURES = 3;

/** A front-door request's machine as its workflow starts (its park timeout counts from `startedAt`). */
export function newRequestMachine(input: RequestInput, startedAt: number): JobMachineState {
  return {
    kind: 'request',
    jobId: input.requestId,
    phase: 'queued',
    arrivalPriority: input.priority,
    deadline: startedAt + input.parkTimeoutSeconds * 1000,
    expiredText: `no capacity within ${input.parkTimeoutSeconds} s`,
    maxFailures: MAX_REQUEST_NODE_FAILURES,
    notify: false,
    deliver: false,
    // A request's status is not a search attribute: its one row in the ledger is its record.
    indexed: false,
    failures: 0,
    preemptions: 0,
    slotAsks: [],
    view: {
      id: input.requestId,
      pool: input.poolId,
      status: 'queued',
      attempt: 1,
      submittedAt: input.submittedAt,
      priority: input.priority,
    },
  };
}
