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
import { type AppResult, runMs, type SimulationKnobs } from './simulate';
import type { TraceApp } from './trace';

export function oracleApp(app: TraceApp, knobs: SimulationKnobs): AppResult {
  const bootMs = knobs.coldStartS * 1000;
  // +1 at a start, -1 at an end; at one instant ends go first (a node freed and taken again is not a gap).
  const changes: Array<[number, number]> = [];
  for (const arrival of app.arrivals) {
    changes.push([arrival.atMs, 1], [arrival.atMs + runMs(arrival, knobs), -1]);
  }
  changes.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const busySince: number[] = [];
  const lastIdleAt: Array<number | undefined> = [];
  let running = 0;
  let level = 0;
  let paidMs = 0;
  let busyMs = 0;
  let boots = 0;
  let scaledToZero = 0;
  const nodesFor = (r: number) => Math.min(knobs.maxNodes, Math.ceil(r / knobs.slotsPerNode));
  for (let i = 0; i < changes.length; ) {
    const at = changes[i][0];
    // All changes at one instant at once.
    while (i < changes.length && changes[i][0] === at) running += changes[i++][1];
    const needed = nodesFor(running);
    for (let k = level + 1; k <= needed; k++) {
      const idleAt = lastIdleAt[k];
      if (k === 1 && idleAt !== undefined && at - idleAt >= bootMs) scaledToZero += 1;
      if (idleAt === undefined) {
        paidMs += bootMs;
        boots += 1;
      } else {
        const gap = at - idleAt;
        paidMs += Math.min(gap, bootMs);
        if (gap >= bootMs) boots += 1;
      }
      busySince[k] = at;
    }
    for (let k = needed + 1; k <= level; k++) {
      busyMs += at - busySince[k];
      lastIdleAt[k] = at;
    }
    level = needed;
  }
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
