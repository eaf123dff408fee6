/**
 * When capacity a parked request waits for should be there, from the pool's view: the soonest node on its way
 * up, by the boot or wake time the pool has learned. Pure; an estimate, said as one ("about").
 */
import type { PoolView } from './types';

export interface CapacityEta {
  /** Seconds from `now` (at least 1: a node past its estimate is "about 1 s" away, not overdue). */
  seconds: number;
  /** `booting a node`, `waking from stopped` or `waking from sleep`. */
  what: string;
}

export function capacityEta(view: Pick<PoolView, 'nodes' | 'keepAlive'>, now: number): CapacityEta | undefined {
  let soonest: CapacityEta | undefined;
  for (const node of view.nodes) {
    if (node.state !== 'provisioning' || node.requestedAt === undefined) continue;
    const [estimateMs, what] = node.wakingFromSleep
      ? [view.keepAlive.sleepWakeEstimateMs, 'waking from sleep']
      : node.waking
        ? [view.keepAlive.wakeEstimateMs, 'waking from stopped']
        : [view.keepAlive.bootEstimateMs, 'booting a node'];
    if (estimateMs === undefined) continue;
    const seconds = Math.max(1, Math.ceil((node.requestedAt + estimateMs - now) / 1000));
    if (!soonest || seconds < soonest.seconds) soonest = { seconds, what };
  }
  return soonest;
}

/** The SSE comment a parked streaming client gets: how long it has waited, and the ETA where there is one. */
export function waitingComment(waitedS: number, eta: CapacityEta | undefined): string {
  return `: waiting for capacity, ${waitedS} s${eta ? ` (${eta.what}, about ${eta.seconds} s)` : ''}\n\n`;
}
