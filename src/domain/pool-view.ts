/** Builds the pool view answered by the state query. Pure. */
import { keepAliveView } from './keep-alive';
import { sleptMsUpTo, stoppedMsUpTo } from './node-billing';
import { basePriority, effectivePriority, queueOrder } from './placement';
import { busySlots, isIdle } from './scaling';
import type { NodeRecord, PoolPhase, PoolState, PoolView } from './types';
import type { PoolKey } from '../ids';

/** Human-readable phase derived from the state. */
export function poolPhase(state: PoolState, teardownRunning: boolean): PoolPhase {
  if (state.stopping) return 'stopping';
  if (state.draining) return state.nodes.length === 0 && isIdle(state) ? 'drained' : 'draining';
  const going = (n: NodeRecord) =>
    n.state === 'terminating' || n.state === 'terminate_failed' || n.state === 'stopping' || n.inFlight === 'sleep';
  if (teardownRunning || state.nodes.some(going)) return 'tearing_down';
  if (state.nodes.some((n) => n.state === 'provisioning')) return 'scaling_up';
  // Stopped nodes hold no GPU, sleeping ones no VRAM: a pool with only those is idle (they show in the view's nodes).
  if (state.nodes.every((n) => n.state === 'stopped' || n.state === 'sleeping')) return isIdle(state) ? 'idle' : 'scaling_up';
  return isIdle(state) ? 'waiting_idle' : 'active';
}

/** Queued jobs listed in a view (the count is always exact). */
const VIEW_QUEUE_LIMIT = 100;

/** The JSON answered to operators. `now` is workflow time (aging depends on it). */
export function toPoolView(state: PoolState, teardownRunning: boolean, now: number): PoolView {
  return {
    poolId: state.poolId,
    phase: poolPhase(state, teardownRunning),
    config: state.config,
    nodes: state.nodes.map((n) => ({
      id: n.id,
      state: n.state,
      laneIndex: n.laneIndex,
      lane: n.lane,
      url: n.url,
      readyAt: n.readyAt,
      ...(n.state === 'provisioning' ? { requestedAt: n.requestedAt } : {}),
      busySlots: busySlots(n),
      ...(n.billedFrom !== undefined
        ? { billedSeconds: Math.max(0, (now - n.billedFrom - stoppedMsUpTo(n, now) - sleptMsUpTo(n, now)) / 1000) }
        : {}),
      ...(n.stops ? { stoppedSeconds: stoppedMsUpTo(n, now) / 1000 } : {}),
      ...(n.stoppedAt !== undefined ? { stoppedAt: n.stoppedAt } : {}),
      ...(n.waking ? { waking: true } : {}),
      ...(n.sleeps ? { sleptSeconds: sleptMsUpTo(n, now) / 1000 } : {}),
      ...(n.wakingFromSleep ? { wakingFromSleep: true } : {}),
      ...(n.inFlight ? { inFlight: n.inFlight } : {}),
      ...(n.terminateFailures ? { terminateFailures: n.terminateFailures } : {}),
      ...(n.lastError ? { lastError: n.lastError } : {}),
      ...(n.replaces ? { replaces: n.replaces } : {}),
      ...(n.retiring ? { retiring: true } : {}),
    })),
    queued: state.queue.length,
    running: state.running.length,
    queuedJobIds: state.queue.map((q) => q.jobId),
    laneCooldownUntil: state.laneCooldownUntil,
    draining: state.draining,
    placedTotal: state.placedTotal,
    preemptedTotal: state.preemptedTotal ?? 0,
    queue: queueOrder(state, now)
      .slice(0, VIEW_QUEUE_LIMIT)
      .map((q) => ({
        jobId: q.jobId,
        priority: basePriority(q),
        effectivePriority: effectivePriority(q, now, state.config),
        waitingMs: Math.max(0, now - q.enqueuedAt),
        ...(q.notBefore !== undefined && q.notBefore > now ? { retryAt: q.notBefore } : {}),
      })),
    placements: state.running.map((p) => ({
      jobId: p.jobId,
      nodeId: p.nodeId,
      slot: p.slot,
      priority: basePriority(p),
      preempting: p.preempting ?? false,
    })),
    keepAlive: keepAliveView(state.config, state.keepAlive),
  };
}

/** Initial state of a new pool. */
export function newPoolState(poolId: PoolKey, config: PoolState['config']): PoolState {
  return {
    poolId,
    config,
    nodes: [],
    queue: [],
    running: [],
    laneCooldownUntil: {},
    nodeSequence: 0,
    draining: false,
    baselineSuspended: false,
    placedTotal: 0,
    idleSince: undefined,
  };
}
