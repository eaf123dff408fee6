/** Scaling rules: how many nodes a pool wants, which lane to try, which nodes to tear down. Pure functions. */
import { jobSlots } from './slot-leases';
import type { Lane, NodeRecord, PoolConfig, PoolState } from './types';

/** Nodes that count as capacity: ready or still coming up (nodes being terminated never do). */
export function activeNodes(state: PoolState): NodeRecord[] {
  return state.nodes.filter((n) => n.state === 'ready' || n.state === 'provisioning');
}

/** Number of busy slots on a node. */
export function busySlots(node: NodeRecord): number {
  return node.slots.filter((s) => s !== null).length;
}

/** Warm baseline the pool keeps right now (minNodes, or more while an operator's start holds nodes warm). */
export function baseline(state: PoolState): number {
  if (state.draining || state.baselineSuspended || state.stopping) return 0;
  return Math.min(Math.max(state.config.minNodes, state.warmNodes ?? 0), state.config.maxNodes);
}

/**
 * Node count the pool should have (ready + provisioning).
 * - From zero, one trigger sizes the fleet for everything waiting: ceil(demand / slotsPerNode).
 * - Over a live fleet, burst nodes are added only when the jobs not covered by free or incoming slots
 *   exceed burstThreshold; then enough nodes for all of them.
 * - Never below the baseline, never above maxNodes. Never shrinks here: shrinking is the idle timer's job.
 */
export function desiredNodeCount(state: PoolState, drains?: (node: NodeRecord) => number): number {
  const { slotsPerNode, burstThreshold, maxNodes } = state.config;
  const active = activeNodes(state);
  const queued = state.queue.length;
  let wanted = active.length;
  if (active.length === 0) {
    wanted = Math.ceil((queued + state.running.length) / slotsPerNode);
  } else {
    // Leased slots count as incoming: queued work revokes their leases.
    const freeOrIncoming = active.reduce((sum, n) => sum + (n.slots.length - jobSlots(n)), 0);
    // What the nodes there will finish before a new one could be up (adaptive pools; see drainEstimate).
    const drained = drains ? active.reduce((sum, n) => sum + drains(n), 0) : 0;
    const uncovered = queued - freeOrIncoming - drained;
    if (uncovered > burstThreshold) wanted = active.length + Math.ceil(uncovered / slotsPerNode);
  }
  return Math.min(maxNodes, Math.max(wanted, baseline(state)));
}

/** How many new nodes to request now. */
export function nodesToAdd(state: PoolState, drains?: (node: NodeRecord) => number): number {
  return Math.max(0, desiredNodeCount(state, drains) - activeNodes(state).length);
}

/** Lanes in preference order that are not cooling down at `now`. */
export function availableLanes(config: PoolConfig, cooldownUntil: Record<string, number>, now: number): number[] {
  const out: number[] = [];
  config.lanes.forEach((_lane: Lane, index: number) => {
    if ((cooldownUntil[String(index)] ?? 0) <= now) out.push(index);
  });
  return out;
}

/** Earliest time at which a cooling lane becomes available again (Infinity if none is cooling). */
export function nextLaneAvailableAt(cooldownUntil: Record<string, number>): number {
  const times = Object.values(cooldownUntil);
  return times.length === 0 ? Infinity : Math.min(...times);
}

/** Backoff (ms) before another round when every lane is short: 5 s doubling to 60 s. */
export function allLanesShortBackoffMs(round: number): number {
  return Math.min(60_000, 5_000 * 2 ** Math.max(0, round - 1));
}

/** True when the pool has no work at all (queue empty, nothing running). */
export function isIdle(state: PoolState): boolean {
  return state.queue.length === 0 && state.running.length === 0;
}

/** Nodes above the baseline that the idle timer may tear down: most expensive first, then newest. */
export function teardownCandidates(state: PoolState): NodeRecord[] {
  const keep = baseline(state);
  // A node whose only business is leased slots is idle (the holder reports its requests to the idle timer).
  const idle = activeNodes(state).filter((n) => jobSlots(n) === 0);
  const excess = activeNodes(state).length - keep;
  if (excess <= 0) return [];
  const ranked = [...idle].sort((a, b) => {
    const price = (b.lane?.pricePerHour ?? 0) - (a.lane?.pricePerHour ?? 0);
    return price !== 0 ? price : b.requestedAt - a.requestedAt;
  });
  return ranked.slice(0, excess);
}
