/**
 * Which lane a node belongs on. Lanes are in preference order (usually spot first); a node runs on a later
 * lane only because an earlier one was short when it started. Two rules move nodes, make-before-break and one
 * at a time: back to a preferred lane once it has capacity again, and onto on-demand while the pool has fewer
 * on-demand nodes than its `onDemandFloor`. Pure functions over the pool state.
 */
import { activeNodes, availableLanes, isIdle, teardownCandidates } from './scaling';
import type { LaneMoveReason, NodeRecord, PoolState } from './types';

/** One node to replace: start a node on `toLane`, then retire `nodeId` once the new one is ready. */
export interface LaneMove {
  nodeId: string;
  toLane: number;
  reason: LaneMoveReason;
}

const isOnDemand = (state: PoolState, laneIndex: number) => state.config.lanes[laneIndex]?.market === 'on-demand';

/** On-demand nodes that count towards the floor: ready or coming up, not retiring. */
export function onDemandNodeCount(state: PoolState, except?: string): number {
  return activeNodes(state).filter((n) => n.id !== except && !n.retiring && n.laneIndex >= 0 && isOnDemand(state, n.laneIndex)).length;
}

/**
 * Lanes a new node may try now, in order: every lane not cooling down, narrowed to on-demand lanes while the
 * pool is under its on-demand floor (when none of those is open, any lane: capacity first).
 */
export function lanesForNewNode(state: PoolState, now: number, nodeId: string): number[] {
  const open = availableLanes(state.config, state.laneCooldownUntil, now);
  const floor = state.config.onDemandFloor ?? 0;
  if (floor === 0 || onDemandNodeCount(state, nodeId) >= floor) return open;
  const onDemand = open.filter((i) => isOnDemand(state, i));
  return onDemand.length > 0 ? onDemand : open;
}

/**
 * The next move, if the pool should make one now. Only while no job waits (a busy pool keeps what it has),
 * nothing else is moving, the pool is neither draining, stopping nor tearing down, and one more node fits
 * under maxNodes. Nodes an idle pool is about to tear down are not worth a replacement.
 */
export function planLaneMove(state: PoolState, now: number): LaneMove | undefined {
  if (state.draining || state.stopping || state.teardown || state.queue.length > 0) return undefined;
  if (state.nodes.some((n) => n.replaces)) return undefined;
  const active = activeNodes(state);
  if (active.length >= state.config.maxNodes) return undefined;
  const going = new Set(isIdle(state) ? teardownCandidates(state).map((n) => n.id) : []);
  const movable = state.nodes
    .filter((n) => n.state === 'ready' && !n.retiring && n.laneIndex >= 0 && !going.has(n.id))
    // Worst lane first; among equals, the least busy (it retires soonest).
    .sort((a, b) => b.laneIndex - a.laneIndex || a.slots.filter(Boolean).length - b.slots.filter(Boolean).length);
  const open = availableLanes(state.config, state.laneCooldownUntil, now);
  const floor = state.config.onDemandFloor ?? 0;
  const onDemand = onDemandNodeCount(state);

  // The floor first: a spot node makes way for an on-demand one.
  if (onDemand < Math.min(floor, active.length)) {
    const toLane = open.find((i) => isOnDemand(state, i));
    const node = movable.find((n) => !isOnDemand(state, n.laneIndex));
    if (toLane !== undefined && node) return { nodeId: node.id, toLane, reason: 'on-demand-floor' };
  }
  if (state.config.returnToPreferredLane === false) return undefined;
  for (const node of movable) {
    const toLane = open.find(
      (i) => i < node.laneIndex && (!isOnDemand(state, node.laneIndex) || isOnDemand(state, i) || onDemand - 1 >= floor),
    );
    if (toLane !== undefined) return { nodeId: node.id, toLane, reason: 'preferred-lane' };
  }
  return undefined;
}

/** Retiring nodes whose last job is done: they go now. */
export function retiredNodes(state: PoolState): NodeRecord[] {
  return state.nodes.filter((n) => n.retiring && n.state === 'ready' && n.slots.every((slot) => slot === null));
}
