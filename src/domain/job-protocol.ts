/**
 * What goes into the job state machine (events) and what comes out (commands), for jobs and front-door requests
 * alike: a request is a job whose attempt runs in the API process (it asks for the slot with an update, renews a
 * lease while it streams, and reports the end), where a job's attempt is an activity. Plain JSON throughout:
 * events are built from signals, updates, timers and command results; commands are run by one interpreter
 * (src/workflows/job-interpreter.ts) for both workflows.
 */
import type { InferenceResult } from './inference-request';
import type { JobArrival } from './pool-protocol';
import type { RequestOutcome } from './front-door-protocol';
import type { JobStatus, JobView, PlacementGrant, ProgressSnapshot } from './types';

export type JobKind = 'job' | 'request';
/** The job events a notification (ntfy) tells of. */
export type NotifiedJobEvent = 'completed' | 'failed' | 'expired' | 'preempted' | 'resumed';
export type TerminalJobStatus = 'completed' | 'failed' | 'expired' | 'cancelled';

/**
 * Where a job stands. `confirming`: the API signalled its arrival, the job waits a short window for a slot
 * before announcing itself too; `queued`: waiting for a slot (or, for a request, for the API to take the slot it
 * holds); `running`: an attempt at a node; `ending`: the outcome is being written; `ended`: nothing more happens.
 */
export type JobPhase = 'confirming' | 'queued' | 'running' | 'ending' | 'ended';

/** The machine's state (plain JSON). */
export interface JobMachineState {
  kind: JobKind;
  jobId: string;
  phase: JobPhase;
  /** The priority every arrival states; absent for jobs submitted before priorities existed (they sent none). */
  arrivalPriority?: number;
  /** Workflow time (ms) the wait for a slot ends: a job's TTL, a request's park timeout, both from the start. */
  deadline: number;
  /** What an expiry says (`not placed within ttl of 60 s`, `no capacity within 30 s`). */
  expiredText: string;
  /** Failed attempts a job may make (maxAttempts); nodes a request may see fail before answering. */
  maxFailures: number;
  /** Whether the job's events are notified (ntfy) and whether it has a callback or notification to deliver. */
  notify: boolean;
  deliver: boolean;
  /** Whether the job's status is a search attribute (the server has them registered). */
  indexed: boolean;
  /** `confirming`: when the window ends (ms). */
  arrivalWindowEndsAt?: number;
  grant?: PlacementGrant;
  failures: number;
  preemptions: number;
  /** A preemption asked of the current attempt, not yet carried out. */
  preempt?: { attempt: number; reason: string; byJobId: string };
  cancelReason?: string;
  /** The snapshot the next attempt continues from (set by a preemption). */
  resumeFrom?: ProgressSnapshot;
  /** The running attempt's start (workflow ms), for its run record. */
  runStartedAt?: number;
  /** Request: the API's last lease renewal (ms); the lease ends REQUEST_LEASE_MS after it. */
  leaseRenewedAt?: number;
  /** Request: when the lease is next looked at (its end as of the last look; renewals do not move it). */
  leaseCheckAt?: number;
  /** Request: slot asks (update calls) waiting for a grant, by ask id. */
  slotAsks: number[];
  /** Request: the outcome the API reported. */
  outcome?: RequestOutcome;
  /** The status last written to the search attribute. */
  indexedStatus?: JobStatus;
  view: JobView;
}

/** What the job tells its pool. */
export type PoolMessage = { kind: 'arrived'; arrival: JobArrival } | { kind: 'finished'; attempt: number } | { kind: 'withdrawn' };

/** An attempt's end as the interpreter saw it (the activity's result, or its failure turned into plain data). */
export type AttemptEnd =
  | { ok: true; result: InferenceResult }
  | {
      ok: false;
      message: string;
      /** A non-retryable failure (the request itself is bad) ends the job at once. */
      retryable: boolean;
      /** The progress an aborted attempt reported as it stopped (preemption). */
      snapshot?: ProgressSnapshot;
    };

/** Something that happened to the job. */
export type JobMachineEvent =
  /** The workflow began. `arrivalSignalled`: the API already told the pool (the job waits a window before it does). */
  | { type: 'started'; arrivalSignalled: boolean }
  /** The clock reached the wake-up time the machine asked for. */
  | { type: 'timerFired' }
  | { type: 'placed'; grant: PlacementGrant }
  | { type: 'revoked'; attempt: number; reason: string }
  | { type: 'preemptRequested'; attempt: number; reason: string; byJobId: string }
  | { type: 'cancelRequested'; reason?: string }
  | { type: 'progressReported'; attempt?: number; completionTokens: number; text?: string; at: number }
  | { type: 'attemptEnded'; attempt: number; end: AttemptEnd }
  /** The first arrival could not reach the pool (it is not running). */
  | { type: 'poolUnreachable'; error: string }
  /** Request: the API asks for a slot (`failedNodeId`: the last one's node failed before answering). */
  | { type: 'slotAsked'; askId: number; failedNodeId?: string }
  | { type: 'leaseRenewed' }
  | { type: 'requestDone'; outcome: RequestOutcome }
  /** The outcome's write: done, refused for good because of what it holds, or refused otherwise (logged). */
  | { type: 'outcomeRecorded' }
  | { type: 'outcomeNotStorable'; error: string }
  | { type: 'outcomeRefused'; error: string };

/** A side effect the interpreter runs; those with a result report back as an event. */
export type JobMachineCommand =
  /** `mustReach`: a failure ends the job (`poolUnreachable`); otherwise it is logged (the pool may be gone). */
  | { type: 'tellPool'; message: PoolMessage; mustReach?: boolean }
  /** Job: run the attempt at the node (an activity), continuing from `resume`; reports `attemptEnded`. */
  | { type: 'runAttempt'; grant: PlacementGrant; resume?: { completionTokens: number; text: string } }
  /** Job: stop the running attempt (it reports `attemptEnded` once stopped at the node). */
  | { type: 'stopAttempt' }
  /** Request: answer a slot ask with the grant, or refuse it. */
  | { type: 'answerSlot'; askId: number; grant: PlacementGrant }
  | { type: 'refuseSlot'; askId: number; message: string; errorType: string }
  | { type: 'indexStatus'; status: JobStatus }
  | { type: 'notify'; event: NotifiedJobEvent; detail?: string }
  /** Write the terminal ledger row and record (`bestEffort`: a second try whose failure is only logged). */
  | { type: 'recordOutcome'; status: TerminalJobStatus; error?: string; bestEffort?: boolean }
  /** Hand the callback and terminal notification to a child that outlives the job. */
  | { type: 'deliver' }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> };

/** The result of one step. */
export interface JobStepResult {
  state: JobMachineState;
  commands: JobMachineCommand[];
  /** Workflow time (ms) at which the machine wants a `timerFired` event; absent: only events wake it. */
  wakeAt?: number;
}
