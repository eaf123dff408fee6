/** How a node's time splits between the GPU's price and the disk's (stopped) price. Pure. */
import type { NodeRecord } from './types';

/**
 * Time a node has spent stopped up to `now` (billed at its lane's stopped price, not the GPU's): the stops
 * already ended plus the one under way. The ledger's node_terminated row and the pool view both use it.
 */
export function stoppedMsUpTo(node: NodeRecord, now: number): number {
  return (node.stoppedMs ?? 0) + (node.stoppedAt !== undefined ? Math.max(0, now - node.stoppedAt) : 0);
}
