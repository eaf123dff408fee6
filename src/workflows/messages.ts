/** Signals, queries and updates of the pool and job workflows. Names match the constants without suffix. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { JobView, PlacementGrant, PoolConfig, PoolView } from '../domain/types';

/** A job (or a new attempt of it, naming the node that failed it) asks its pool for a slot. */
export const jobArrivedSignal = defineSignal<[{ jobId: string; attempt: number; front: boolean; failedNodeId?: string }]>('jobArrived');
/** A job's attempt is over (any outcome): its slot is free. */
export const jobFinishedSignal = defineSignal<[{ jobId: string; attempt: number }]>('jobFinished');
/** A job leaves the pool for good (TTL expired, cancelled) whether queued or placed. */
export const jobWithdrawnSignal = defineSignal<[{ jobId: string }]>('jobWithdrawn');
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

/** The pool gives a job a node slot. */
export const jobPlacedSignal = defineSignal<[PlacementGrant]>('jobPlaced');
/** The pool took the job's slot away (node lost) and requeued it as `attempt`. */
export const jobRevokedSignal = defineSignal<[{ attempt: number; reason: string }]>('jobRevoked');
/** Cancel a job in any non-terminal state. */
export const cancelJobSignal = defineSignal<[{ reason?: string }]>('cancelJob');
/** A job's live view. */
export const jobStateQuery = defineQuery<JobView>('jobState');
