/**
 * The gap replay: the warm-state ladder's policies, priced node by node, as the oracle counts (oracle.ts).
 *
 * Each request runs from its arrival, so the app needs n(t) = ⌈running(t) / slots⌉ nodes and node k is busy
 * while n(t) ≥ k. Every node pays its first boot and its busy time under every policy; what differs is each
 * idle gap of each node (and the tail after its last work, to the trace's end): a policy's plan
 * (src/domain/warm-ladder.ts) prices it. The learned policies see only gaps that ended before the gap at hand
 * began (one histogram per app, fed by all its nodes), and run the fixed timeout until they have `minSamples`.
 *
 * This is a model, not the pool machine: a wait does not shift the work after it, and requests of one burst
 * are not queued behind each other. The machine replay (simulate.ts) runs the two-state policies as a live pool
 * would; the ladder's rungs are not in the machine yet. Its two-state oracle equals oracle.ts's cost exactly.
 */
import { DEFAULT_MIN_SAMPLES, GAP_BIN_COUNT, gapBin, HISTOGRAM_HALVING_WEIGHT } from '../domain/keep-alive';
import {
  chooseLadderPlan,
  type DownRung,
  type Ladder,
  type LadderPlan,
  ladderGapOutcome,
  ladderOracleGapCost,
  ladderTailCost,
} from '../domain/warm-ladder';
import { runMs, type SimulationKnobs } from './simulate';
import type { TraceApp } from './trace';

/** One node's life in the app: busy periods, the idle gaps between them. */
export interface NodeGaps {
  /** Idle gaps between busy periods: start (ms since the trace began) and length (ms). */
  gaps: Array<{ startMs: number; lengthMs: number }>;
  busyMs: number;
  /** Idle from the end of its last work to the end of the trace (ms). */
  tailMs: number;
}

/** Busy periods per node k (busy while n(t) ≥ k), as oracle.ts sweeps them. */
export function nodeGaps(app: TraceApp, knobs: SimulationKnobs, spanMs: number): NodeGaps[] {
  const changes: Array<[number, number]> = [];
  for (const arrival of app.arrivals) changes.push([arrival.atMs, 1], [arrival.atMs + runMs(arrival, knobs), -1]);
  changes.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const nodes: NodeGaps[] = [];
  const busySince: number[] = [];
  const idleSince: number[] = [];
  let running = 0;
  let level = 0;
  const nodesFor = (r: number) => Math.min(knobs.maxNodes, Math.ceil(r / knobs.slotsPerNode));
  for (let i = 0; i < changes.length; ) {
    const at = changes[i][0];
    while (i < changes.length && changes[i][0] === at) running += changes[i++][1];
    const needed = nodesFor(running);
    for (let k = level; k < needed; k++) {
      if (!nodes[k]) nodes[k] = { gaps: [], busyMs: 0, tailMs: 0 };
      else nodes[k].gaps.push({ startMs: idleSince[k], lengthMs: at - idleSince[k] });
      busySince[k] = at;
    }
    for (let k = needed; k < level; k++) {
      nodes[k].busyMs += at - busySince[k];
      idleSince[k] = at;
    }
    level = needed;
  }
  const end = Math.max(spanMs, changes.length > 0 ? changes[changes.length - 1][0] : 0);
  for (let k = 0; k < nodes.length; k++) nodes[k].tailMs = k < level ? 0 : end - idleSince[k];
  return nodes;
}

/** The ladder the evaluator prices with: the lane's price and boot from the knobs, the rungs from the ladder knobs. */
export interface LadderKnobs {
  stopPricePerHour: number;
  stopWakeS: number;
  sleepPricePerHour?: number;
  sleepWakeS: number;
  maxStoppedS: number;
  /** Cold-start rate a learned policy may add over the fixed timeout's, per app (a pool's keepAlive.extraColdStartRate). */
  coldSlack: number;
}

/**
 * Defaults, and where each comes from:
 * - stopped: RunPod bills a stopped pod's volume disk $0.20 per GB-month (docs.runpod.io, "Billing information";
 *   running pods $0.10): a 100 GB disk holding the image and weights is $0.20 × 100 / 730 h = $0.0274 an hour.
 *   EBS gp3 ($0.08 per GB-month) is cheaper; RunPod's is the dearest of the three, so the default is.
 * - a wake from stopped: 20 s, an estimate (the machine starts, the container starts, the weights load from
 *   local disk; no image pull, no download): the pool learns its own from the wakes it sees;
 * - sleeping: billed as running (the GPU is still rented); a vLLM sleep-mode wake: 3 s, an estimate;
 * - a stopped node is terminated after 24 h;
 * - no cold starts beyond the fixed timeout's (as a pool's keepAlive.extraColdStartRate defaults to 0).
 */
export const DEFAULT_LADDER_KNOBS: LadderKnobs = {
  stopPricePerHour: 0.0274,
  stopWakeS: 20,
  sleepWakeS: 3,
  maxStoppedS: 24 * 3600,
  coldSlack: 0,
};

export function ladderOf(knobs: SimulationKnobs, ladder: LadderKnobs, rungs: 'ladder' | 'two-state'): Ladder {
  return {
    runPerHour: knobs.pricePerHour,
    bootS: knobs.coldStartS,
    maxStoppedS: ladder.maxStoppedS,
    down:
      rungs === 'two-state'
        ? {}
        : {
            stopped: { perHour: ladder.stopPricePerHour, wakeS: ladder.stopWakeS },
            sleeping: { perHour: ladder.sleepPricePerHour ?? knobs.pricePerHour, wakeS: ladder.sleepWakeS },
          },
  };
}

/** The policies of the ladder table. */
export const GAP_POLICIES = ['fixed-600s', 'adaptive', 'adaptive-ladder', 'oracle', 'oracle-ladder'] as const;
export type GapPolicy = (typeof GAP_POLICIES)[number];

/** What one policy paid for one app in the gap replay. */
export interface GapResult {
  app: string;
  policy: GapPolicy;
  costUsd: number;
  /** Gaps that ended in a wait (first boots are paid by every policy, the oracle included, and not counted). */
  coldStarts: number;
  /** Of them, wakes from a rung other than terminated. */
  wakes: Partial<Record<DownRung, number>>;
  /** Each cold start's wait, seconds. */
  waitsS: number[];
  /** Idle gaps priced (over all nodes). */
  gaps: number;
}

const FIXED_KEEP_S = 600;

/** Runs one policy over one app's nodes. */
export function replayGaps(
  app: TraceApp,
  nodes: NodeGaps[],
  policy: GapPolicy,
  knobs: SimulationKnobs,
  ladderKnobs: LadderKnobs,
  minSamples = DEFAULT_MIN_SAMPLES,
): GapResult {
  const rungs = policy === 'adaptive-ladder' || policy === 'oracle-ladder' ? 'ladder' : 'two-state';
  const ladder = ladderOf(knobs, ladderKnobs, rungs);
  const run = knobs.pricePerHour / 3_600_000;
  const graceS = knobs.teardownGraceS;
  let costUsd = 0;
  const waitsS: number[] = [];
  const wakes: GapResult['wakes'] = {};
  // Every policy: one first boot per node, and the busy time.
  for (const node of nodes) costUsd += run * (node.busyMs + knobs.coldStartS * 1000);
  const all = nodes.flatMap((node, k) => node.gaps.map((g) => ({ ...g, k })));
  const tails = nodes.map((n) => n.tailMs).filter((t) => t > 0);
  const fixedPlan: LadderPlan = { keepS: FIXED_KEEP_S, down: 'terminated' };
  if (policy === 'oracle' || policy === 'oracle-ladder') {
    for (const gap of all) costUsd += ladderOracleGapCost(gap.lengthMs / 1000, ladder, rungs).costUsd;
    // After the last work there is no arrival to be ready for: the oracle leaves at once.
    return { app: app.app, policy, costUsd, coldStarts: waitsS.length, wakes, waitsS, gaps: all.length };
  }
  const learned = policy === 'adaptive' || policy === 'adaptive-ladder';
  // Gaps in the order they start; the histogram takes a gap once it has ended.
  all.sort((a, b) => a.startMs - b.startMs);
  const byEnd = [...all].sort((a, b) => a.startMs + a.lengthMs - (b.startMs + b.lengthMs));
  const bins = Array.from({ length: GAP_BIN_COUNT }, () => 0);
  let outOfRange = 0;
  let seen = 0;
  let ended = 0;
  let plan = fixedPlan;
  const learn = (lengthMs: number) => {
    const bin = gapBin(lengthMs);
    if (bin < 0) outOfRange += 1;
    else bins[bin] += 1;
    seen += 1;
    if (bins.reduce((a, b) => a + b, 0) + outOfRange > HISTOGRAM_HALVING_WEIGHT) {
      for (let i = 0; i < bins.length; i++) bins[i] /= 2;
      outOfRange /= 2;
    }
    // As the pool does: every gap at first, then about every 2 % of new ones.
    const every = Math.max(1, Math.floor(seen / 50));
    if (seen >= minSamples && (seen <= 2 * minSamples || seen % every === 0)) {
      const inRange = bins.reduce((a, b) => a + b, 0);
      plan =
        inRange < (inRange + outOfRange) / 2
          ? fixedPlan
          : chooseLadderPlan(bins, outOfRange, ladder, { graceS, fixedKeepS: FIXED_KEEP_S, slack: ladderKnobs.coldSlack }).plan;
    }
  };
  for (const gap of all) {
    if (learned) {
      while (ended < byEnd.length && byEnd[ended].startMs + byEnd[ended].lengthMs <= gap.startMs) learn(byEnd[ended++].lengthMs);
    }
    const outcome = ladderGapOutcome(gap.lengthMs / 1000, plan, ladder, graceS);
    costUsd += outcome.costUsd;
    if (outcome.waitS > 0) {
      waitsS.push(outcome.waitS);
      if (outcome.wokeFrom && outcome.wokeFrom !== 'terminated') wakes[outcome.wokeFrom] = (wakes[outcome.wokeFrom] ?? 0) + 1;
    }
  }
  for (const tail of tails) costUsd += ladderTailCost(tail / 1000, plan, ladder, graceS);
  return { app: app.app, policy, costUsd, coldStarts: waitsS.length, wakes, waitsS, gaps: all.length };
}

/** Every gap policy over every app of a trace. */
export function runGapPolicies(apps: TraceApp[], knobs: SimulationKnobs, ladderKnobs: LadderKnobs, spanMs: number): GapResult[] {
  const results: GapResult[] = [];
  for (const app of apps) {
    const nodes = nodeGaps(app, knobs, spanMs);
    for (const policy of GAP_POLICIES) results.push(replayGaps(app, nodes, policy, knobs, ladderKnobs));
  }
  return results;
}
