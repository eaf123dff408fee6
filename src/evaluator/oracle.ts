/**
 * The offline oracle: the least node time any policy can pay with no request ever waiting for a boot.
 *
 * Every request runs from its arrival for its run time; at time t the app needs n(t) = ⌈running(t) / slots⌉
 * nodes. Node k (k = 1, 2, …) is busy while n(t) ≥ k. For every idle gap g of node k the oracle keeps the node
 * iff g < boot, else tears it down at once and boots it again exactly in time; the first boot is paid too:
 *
 *     oracle node-seconds = Σ_k ( boot + Σ_{gaps g of node k} min(g, boot) + busy_k )
 *
 * No policy pays less without cold starts: over a gap a node is either kept (g) or booted again (boot), and
 * busy time and one first boot per node are owed by all. Cold starts 0, waits 0 by construction.
 */
import { nodeGaps } from './gap-replay';
import type { AppResult, SimulationKnobs } from './simulate';
import type { TraceApp } from './trace';

export function oracleApp(app: TraceApp, knobs: SimulationKnobs): AppResult {
  const bootMs = knobs.coldStartS * 1000;
  // Node k is busy while the app needs k nodes (the sweep the gap replay prices, gap-replay.ts).
  const nodes = nodeGaps(app, knobs, 0);
  let paidMs = 0;
  let busyMs = 0;
  let boots = 0;
  let scaledToZero = 0;
  nodes.forEach((node, k) => {
    paidMs += bootMs;
    boots += 1;
    busyMs += node.busyMs;
    for (const gap of node.gaps) {
      paidMs += Math.min(gap.lengthMs, bootMs);
      if (gap.lengthMs >= bootMs) {
        boots += 1;
        if (k === 0) scaledToZero += 1;
      }
    }
  });
  const nodeMs = paidMs + busyMs;
  return {
    app: app.app,
    policy: 'oracle',
    requests: app.arrivals.length,
    costUsd: (nodeMs / 3_600_000) * knobs.pricePerHour,
    idleCostUsd: (paidMs / 3_600_000) * knobs.pricePerHour,
    nodeSeconds: nodeMs / 1000,
    coldStarts: 0,
    coldWaitedRequests: 0,
    waitsMs: [],
    boots,
    scaledToZero,
  };
}
