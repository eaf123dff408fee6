/**
 * Signals, queries and updates of the pool and job workflows. Names match the constants without suffix.
 * Who sends which pool ↔ job message, when, and who chooses the attempt number: README, "The pool ↔ job protocol".
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PreemptionCheck } from '../domain/preemption';
import type { JobArrival } from '../domain/pool-protocol';
import type { JobView, PlacementGrant, PoolConfig, PoolView } from '../domain/types';
import type { RequestOutcome } from '../domain/front-door-protocol';
import type { LeaseAnswer, LeaseExchange } from '../domain/slot-leases';

export type { JobArrival };

/** A job (or a new attempt of it, after a failure or a preemption) asks its pool for a slot. */
export const jobArrivedSignal = defineSignal<[JobArrival]>('jobArrived');
/** A job's attempt is over (any outcome): its slot is free. */
export const jobFinishedSignal = defineSignal<[{ jobId: string; attempt: number }]>('jobFinished');
/** A job leaves the pool for good (TTL expired, cancelled) whether queued or placed. */
export const jobWithdrawnSignal = defineSignal<[{ jobId: string }]>('jobWithdrawn');
/**
 * Many jobs leave at once: parked front-door requests whose clients went away, gathered by the API process into
 * one signal per pool (a flood of abandoned requests is then a few pool events, not one each).
 */
export const jobsWithdrawnSignal = defineSignal<[{ jobIds: string[] }]>('jobsWithdrawn');
/** Pool state for the API and the Web UI. */
export const poolStateQuery = defineQuery<PoolView>('poolState');
/** An update, not a signal, because the operator must learn whether the new config was accepted. */
export const updatePoolConfigUpdate = defineUpdate<PoolView, [PoolConfig]>('updatePoolConfig');
/** Stop accepting work, finish what is queued and running, then release every node. */
export const drainPoolUpdate = defineUpdate<PoolView, []>('drainPool');
/** Undo a drain: accept work and rebuild the baseline. */
export const resumePoolUpdate = defineUpdate<PoolView, []>('resumePool');
/** Release every idle node now, baseline included, without waiting for the idle timer. */
export const scaleToZeroUpdate = defineUpdate<PoolView, []>('scaleToZero');
/** Bring nodes up now without waiting for a job (a service "start"); the idle timer still stops them. */
export const warmPoolUpdate = defineUpdate<PoolView, [{ nodes: number }]>('warmPool');
/**
 * Stop every node (a service "stop", or "restart" with then = warm): queued jobs wait, running jobs get
 * `drainTimeoutSeconds` to finish and are then preempted (progress kept, requeued). New jobs start it again.
 */
export const stopPoolUpdate = defineUpdate<PoolView, [{ drainTimeoutSeconds: number; then: 'idle' | 'warm'; onlyIfIdle?: boolean }]>(
  'stopPool',
);
/** What a preemption round would do now, and why not if nothing. */
export const preemptionCheckQuery = defineQuery<PreemptionCheck>('preemptionCheck');
/** Run a preemption round now (also in `manual` mode); answers what it preempted. */
export const preemptNowUpdate = defineUpdate<PreemptionCheck, []>('preemptNow');
/** An API process renews, releases and asks for slot leases, and reports what it served on them (every 2 s). */
export const exchangeLeasesUpdate = defineUpdate<LeaseAnswer, [LeaseExchange]>('exchangeLeases');

/** The pool gives a job a node slot. */
export const jobPlacedSignal = defineSignal<[PlacementGrant]>('jobPlaced');
/** The pool took the job's slot away (node lost) and requeued it as `attempt`. */
export const jobRevokedSignal = defineSignal<[{ attempt: number; reason: string }]>('jobRevoked');
/** The pool needs the job's slot for a higher-priority job: stop, keep progress, queue again as `attempt + 1`. */
export const jobPreemptSignal = defineSignal<[{ attempt: number; reason: string; byJobId: string }]>('jobPreempt');
/** Progress a node reported through the API (POST /v1/jobs/:id/progress). */
export const jobProgressSignal = defineSignal<[{ attempt?: number; completionTokens: number; text?: string; at: number }]>('jobProgress');
/** Cancel a job in any non-terminal state. */
export const cancelJobSignal = defineSignal<[{ reason?: string }]>('cancelJob');
/** A job's live view. */
export const jobStateQuery = defineQuery<JobView>('jobState');

// ---- front-door requests (OpenAI routes): the API process runs the request, the workflow holds its slot ----

/** Asks for a slot (the first, or another after `failedNodeId` failed before answering); resolves when placed. */
export const requestSlotUpdate = defineUpdate<PlacementGrant, [{ failedNodeId?: string }]>('requestSlot');
/** The API process is still running the request (its lease on the slot). */
export const requestAliveSignal = defineSignal<[]>('requestAlive');
/** The request is over: the slot goes back and the ledger gets its row. */
export const requestDoneSignal = defineSignal<[RequestOutcome]>('requestDone');
