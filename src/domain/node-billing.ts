/** How a node's time splits between the GPU's price, the disk's (stopped) price and the sleeping price. Pure. */
import type { NodeRecord } from './types';

/**
 * Time a node has spent stopped up to `now` (billed at its lane's stopped price, not the GPU's): the stops
 * already ended plus the one under way. The ledger's node_terminated row and the pool view both use it.
 */
export function stoppedMsUpTo(node: NodeRecord, now: number): number {
  return (node.stoppedMs ?? 0) + (node.stoppedAt !== undefined ? Math.max(0, now - node.stoppedAt) : 0);
}

/** Time a node has spent asleep up to `now` (billed at its lane's sleeping price): ended sleeps plus the one under way. */
export function sleptMsUpTo(node: NodeRecord, now: number): number {
  return (node.sleptMs ?? 0) + (node.sleptAt !== undefined ? Math.max(0, now - node.sleptAt) : 0);
}
