/**
 * Keep-alive that learns: what a pool does between the end of its work and the next arrival. Pure functions.
 *
 * The pool records every idle gap (pool idle → next arrival) in a histogram with log-spaced bins, and each
 * node's boot time. From them, the adaptive policy picks its windows the way the hybrid histogram policy of
 * Shahrad et al. ("Serverless in the Wild", ATC 2020) does, adapted to GPUs whose boot is billed:
 *
 * - **keep**: keep the nodes for `keepAliveMs` after the pool goes idle (a fixed timeout, chosen by the data);
 * - **prewarm**: tear down at once, boot again `prewarmMs − boot` after the pool went idle so the nodes are
 *   ready at `prewarmMs`, keep them until `keepAliveMs`, then tear down.
 *
 * Among all windows on the histogram's bin edges it takes the one with the least expected node-seconds per gap,
 * counting each expected cold start as idleTimeoutSeconds of node time (what the operator pays to keep a node
 * rather than cold-start; at least one boot), whose expected cold-start
 * rate is no higher than the pool's fixed `idleTimeoutSeconds` would have on the same gaps (plus
 * `extraColdStartRate`, 0 unless the pool says): the adaptive policy never trades cold starts for money behind
 * the operator's back. Until the histogram holds `minSamples` gaps (or most gaps lie past its range) the fixed
 * timeout applies.
 */
import { binValueSeconds, GAP_BIN_COUNT, GAP_BIN_EDGES_S, gapBin } from './gap-histogram';
import type { PoolConfig } from './pool-config';
import { chooseLadderPlan, type DownRung, type Ladder } from './warm-ladder';

export { binValueSeconds, GAP_BIN_COUNT, GAP_BIN_EDGES_S, gapBin };

/** Past this total weight the histogram halves, so old behaviour fades and the pool keeps adapting. */
export const HISTOGRAM_HALVING_WEIGHT = 1000;
/** Boots remembered; the estimate is the longest of them (a late pre-warm is a cold start). */
export const BOOTS_REMEMBERED = 5;
/** Gaps recorded before the adaptive windows replace the fixed timeout (unless the pool says). */
export const DEFAULT_MIN_SAMPLES = 10;

/** The keep-alive part of a pool's view. */
export interface KeepAliveView {
  mode: 'fixed' | 'adaptive';
  /** The windows in force now, and why. */
  windows: KeepAliveWindows;
  /** How long a node above the pool's need stays before it retires (scale-in). */
  scaleInWindowMs: number;
  /** Adaptive pools: the average run time of a job (burst sizing counts what the fleet finishes soon). */
  runMsAverage?: number;
  /** For a fixed pool that has seen enough gaps: what `adaptive` would choose. */
  adaptiveWouldChoose?: KeepAliveWindows;
  gapsSeen: number;
  /** Idle gaps seen, by percentile (seconds; from the histogram's bins, with halving of old gaps). */
  gapPercentilesS?: { p5: number; p50: number; p99: number };
  bootEstimateMs?: number;
  /** The wake from stopped it plans with (learned, else a third of the boot). */
  wakeEstimateMs?: number;
  /** The wake from sleep it plans with (learned, else DEFAULT_SLEEP_WAKE_MS), where a lane offers the sleeping rung. */
  sleepWakeEstimateMs?: number;
}

/** What the pool has learned (plain JSON: it travels through continue-as-new). */
export interface KeepAliveLearning {
  /** Weight of idle gaps per bin of GAP_BIN_EDGES_S. */
  gapBins: number[];
  /** Weight of gaps longer than the last edge. */
  outOfRange: number;
  /** Gaps seen over the pool's life (not halved). */
  gapsSeen: number;
  /** Recent boot durations (request → ready), ms, newest last. */
  bootsMs: number[];
  /** Recent wakes from stopped (start call → ready), ms, newest last. */
  wakesMs?: number[];
  /** Recent wakes from sleep (wake call → serving), ms, newest last. */
  sleepWakesMs?: number[];
  /** The windows chosen from the current histogram (recomputed when it changes). */
  windows?: KeepAliveWindows;
  /** Nodes the pool had when it last went idle: a pre-warm brings back as many. */
  nodesWhenIdle?: number;
  /** Average run time of a job, placement to finish (ms; exponentially weighted, newest 1/20). */
  runMsAverage?: number;
  /** The current idle period followed work (its end is a gap to learn from). */
  gapOpen?: boolean;
  /** The idle period (its `idleSince`) whose pre-warm has gone out. */
  prewarmedFor?: number;
}

/** The windows in force and why. */
export interface KeepAliveWindows {
  /** `fixed`: idleTimeoutSeconds; `keep` and `prewarm`: learned (see the file comment). */
  mode: 'fixed' | 'keep' | 'prewarm';
  /** Idle deadline, ms after the pool went idle (for `prewarm`: after the pre-warmed nodes are up). */
  keepAliveMs: number;
  /** `prewarm` only: when the nodes should be ready, ms after the pool went idle. */
  prewarmMs?: number;
  /** Boot estimate the windows assume, ms. */
  bootMs?: number;
  /** Expected cold starts per idle gap, and node-seconds per gap per node, of these windows and of the fixed timeout. */
  expectedColdRate?: number;
  fixedColdRate?: number;
  expectedCostSeconds?: number;
  fixedCostSeconds?: number;
  /** The rung idle nodes go down to (absent: terminated). A lane with a stopped price lets the policy choose. */
  down?: DownRung;
  /** The wake from stopped the windows assume, ms. */
  wakeMs?: number;
  /** The wake from sleep the windows assume, ms (where the lane offers the sleeping rung). */
  sleepWakeMs?: number;
  /** The best plan per rung, priced on the same gaps (USD per gap per node; waits in seconds). */
  rungs?: Partial<Record<DownRung, { keepAliveMs: number; prewarmMs?: number; expectedCostUsd: number; coldRate: number; waitS: number }>>;
  reason: string;
}

export function newKeepAliveLearning(): KeepAliveLearning {
  return { gapBins: Array.from({ length: GAP_BIN_COUNT }, () => 0), outOfRange: 0, gapsSeen: 0, bootsMs: [] };
}

/** The p-th percentile (0..100) of the learned gaps, seconds: the upper edge of the bin that reaches it. */
export function gapPercentileS(learning: KeepAliveLearning, p: number): number | undefined {
  const total = learning.gapBins.reduce((a, b) => a + b, 0) + learning.outOfRange;
  if (total === 0) return undefined;
  let seen = 0;
  for (let bin = 0; bin < GAP_BIN_COUNT; bin++) {
    seen += learning.gapBins[bin];
    if (seen >= (p / 100) * total - 1e-9 && learning.gapBins[bin] > 0) return GAP_BIN_EDGES_S[bin + 1];
  }
  return Infinity;
}

/** The keep-alive part of the pool's view. */
export function keepAliveView(config: PoolConfig, learning: KeepAliveLearning | undefined): KeepAliveView {
  const mode = config.keepAlive?.mode ?? 'fixed';
  const windows = windowsInForce(config, learning);
  if (!learning) return { mode, windows, scaleInWindowMs: scaleInWindowMs(config, learning), gapsSeen: 0 };
  const p5 = gapPercentileS(learning, 5);
  const p50 = gapPercentileS(learning, 50);
  const p99 = gapPercentileS(learning, 99);
  const boot = bootEstimateMs(learning);
  const wouldChoose =
    mode === 'fixed'
      ? chooseWindows(learning, {
          ...config,
          keepAlive: {
            mode: 'adaptive',
            minSamples: config.keepAlive?.minSamples ?? DEFAULT_MIN_SAMPLES,
            extraColdStartRate: config.keepAlive?.extraColdStartRate ?? 0,
          },
        })
      : undefined;
  return {
    mode,
    windows,
    scaleInWindowMs: scaleInWindowMs(config, learning),
    ...(wouldChoose && wouldChoose.mode !== 'fixed' ? { adaptiveWouldChoose: wouldChoose } : {}),
    gapsSeen: learning.gapsSeen,
    // JSON has no Infinity: a percentile past the histogram's range reads as its last edge.
    ...(p5 !== undefined && p50 !== undefined && p99 !== undefined
      ? { gapPercentilesS: { p5: finite(p5), p50: finite(p50), p99: finite(p99) } }
      : {}),
    ...(boot !== undefined ? { bootEstimateMs: boot } : {}),
    ...(wakeEstimateMs(learning) !== undefined ? { wakeEstimateMs: wakeEstimateMs(learning) } : {}),
    ...(config.lanes.some((l) => l.sleepingPricePerHour !== undefined) ? { sleepWakeEstimateMs: sleepWakeEstimateMs(learning) } : {}),
    ...(learning.runMsAverage !== undefined ? { runMsAverage: Math.round(learning.runMsAverage) } : {}),
  };
}

function finite(seconds: number): number {
  return Number.isFinite(seconds) ? seconds : GAP_BIN_EDGES_S[GAP_BIN_COUNT];
}

/** Adds one idle gap (mutates `learning`); the windows are chosen again. */
export function recordIdleGap(learning: KeepAliveLearning, gapMs: number, config: PoolConfig): void {
  const bin = gapBin(Math.max(0, gapMs));
  if (bin < 0) learning.outOfRange += 1;
  else learning.gapBins[bin] += 1;
  learning.gapsSeen += 1;
  const weightBefore = learning.outOfRange + learning.gapBins.reduce((a, b) => a + b, 0);
  if (weightBefore > HISTOGRAM_HALVING_WEIGHT) {
    learning.gapBins = learning.gapBins.map((w) => w / 2);
    learning.outOfRange /= 2;
  }
  // Only an adaptive pool needs its windows now (a view computes them on demand). Choosing prices a few
  // thousand windows: after the first gaps, it is done again every ~2 % of new ones.
  if (config.keepAlive?.mode !== 'adaptive') {
    learning.windows = undefined;
    return;
  }
  const minSamples = config.keepAlive?.minSamples ?? DEFAULT_MIN_SAMPLES;
  const every = Math.max(1, Math.floor(learning.gapsSeen / 50));
  if (learning.gapsSeen <= 2 * minSamples || learning.gapsSeen % every === 0 || !learning.windows) {
    learning.windows = chooseWindows(learning, config);
  }
}

/** Surplus nodes of an adaptive pool stay this many boots after the pool last needed them (see scaleInWindowMs). */
export const SCALE_IN_BOOTS = 4;
/** Adaptive burst sizing counts the queued jobs the fleet finishes within this horizon (see the pool machine). */
export const DRAIN_HORIZON_MS = 2000;

/**
 * How long a node above the need is kept before it retires: idleTimeoutSeconds; an adaptive pool that knows its
 * boot keeps it SCALE_IN_BOOTS boots at most (rent-or-buy: a node kept a few boots past its last use pays at
 * most a few times what booting it again would cost, and demand that returns within that finds it).
 */
export function scaleInWindowMs(config: PoolConfig, learning: KeepAliveLearning | undefined): number {
  const fixedMs = config.idleTimeoutSeconds * 1000;
  const boot = learning ? bootEstimateMs(learning) : undefined;
  if (config.keepAlive?.mode !== 'adaptive' || boot === undefined) return fixedMs;
  return Math.min(fixedMs, Math.max(1000, SCALE_IN_BOOTS * boot));
}

/** Adds one job's run time (mutates `learning`). */
export function recordRunTime(learning: KeepAliveLearning, runMs: number): void {
  const value = Math.max(0, runMs);
  learning.runMsAverage = learning.runMsAverage === undefined ? value : learning.runMsAverage + (value - learning.runMsAverage) / 20;
}

/** Adds one measured boot (mutates `learning`). */
export function recordBoot(learning: KeepAliveLearning, bootMs: number, config: PoolConfig): void {
  learning.bootsMs = [...learning.bootsMs, Math.max(0, Math.round(bootMs))].slice(-BOOTS_REMEMBERED);
  learning.windows = config.keepAlive?.mode === 'adaptive' ? chooseWindows(learning, config) : undefined;
}

/** Adds one measured wake from stopped (mutates `learning`). */
export function recordWake(learning: KeepAliveLearning, wakeMs: number, config: PoolConfig): void {
  learning.wakesMs = [...(learning.wakesMs ?? []), Math.max(0, Math.round(wakeMs))].slice(-BOOTS_REMEMBERED);
  learning.windows = config.keepAlive?.mode === 'adaptive' ? chooseWindows(learning, config) : undefined;
}

/** Adds one measured wake from sleep (mutates `learning`). */
export function recordSleepWake(learning: KeepAliveLearning, wakeMs: number, config: PoolConfig): void {
  learning.sleepWakesMs = [...(learning.sleepWakesMs ?? []), Math.max(0, Math.round(wakeMs))].slice(-BOOTS_REMEMBERED);
  learning.windows = config.keepAlive?.mode === 'adaptive' ? chooseWindows(learning, config) : undefined;
}

/** Until a wake from sleep is seen: vLLM's level-1 sleep reloads the weights from host memory, seconds for most models. */
export const DEFAULT_SLEEP_WAKE_MS = 5000;

/** The wake from sleep the policy plans with: the longest recent one, else DEFAULT_SLEEP_WAKE_MS (never above a boot). */
export function sleepWakeEstimateMs(learning: KeepAliveLearning): number {
  if (learning.sleepWakesMs?.length) return Math.max(...learning.sleepWakesMs);
  const boot = bootEstimateMs(learning);
  return boot === undefined ? DEFAULT_SLEEP_WAKE_MS : Math.min(DEFAULT_SLEEP_WAKE_MS, boot);
}

/**
 * The wake from stopped the policy plans with: the longest recent one; until one is seen, a third of the boot
 * (a stopped node keeps its image and weights: 20 s against a 60 s boot is the evaluator's default).
 */
export function wakeEstimateMs(learning: KeepAliveLearning): number | undefined {
  if (learning.wakesMs?.length) return Math.max(...learning.wakesMs);
  const boot = bootEstimateMs(learning);
  return boot === undefined ? undefined : Math.round(boot / 3);
}

/** The boot time the policy plans with: the longest recent boot. */
export function bootEstimateMs(learning: KeepAliveLearning): number | undefined {
  return learning.bootsMs.length > 0 ? Math.max(...learning.bootsMs) : undefined;
}

/** Windows in force for a pool: fixed unless it asked for `adaptive` and the histogram is representative. */
export function windowsInForce(config: PoolConfig, learning: KeepAliveLearning | undefined): KeepAliveWindows {
  if (config.keepAlive?.mode !== 'adaptive' || !learning)
    return fixedWindows(config, 'keepAlive.mode is fixed (new pools are adaptive unless created fixed; PATCH keepAlive to change)');
  return learning.windows ?? chooseWindows(learning, config);
}

function fixedWindows(config: PoolConfig, reason: string): KeepAliveWindows {
  return { mode: 'fixed', keepAliveMs: config.idleTimeoutSeconds * 1000, reason };
}

/** Per-gap outcome of one policy on a gap of `gapS` seconds, per node: node-seconds paid and whether it cold-started. */
export interface GapOutcome {
  costSeconds: number;
  cold: boolean;
}

/**
 * The cost model both the policy and its unit tests use. Times in seconds; grace = teardownGraceSeconds (an
 * arrival inside it cancels the teardown), boot = node boot (billed).
 * - keep K: an arrival by K + grace finds the node (pays the gap); later, the node left at K + grace and boots again.
 * - prewarm W, keep K: the node leaves after grace, is back at W, stays until K + grace.
 */
export function gapOutcome(gapS: number, policy: { keepAliveS: number; prewarmS?: number }, bootS: number, graceS: number): GapOutcome {
  const keepEnd = policy.keepAliveS + graceS;
  if (policy.prewarmS === undefined) {
    return gapS <= keepEnd ? { costSeconds: gapS, cold: false } : { costSeconds: keepEnd + bootS, cold: true };
  }
  const w = policy.prewarmS;
  if (gapS <= graceS) return { costSeconds: gapS, cold: false };
  if (gapS < w) return { costSeconds: graceS + bootS, cold: true };
  if (gapS <= keepEnd) return { costSeconds: graceS + bootS + (gapS - w), cold: false };
  return { costSeconds: graceS + bootS + (keepEnd - w) + bootS, cold: true };
}

interface WindowTerms {
  graceS: number;
  bootMs: number | undefined;
  fixedK: number;
  slack: number;
  prewarm: boolean;
}

interface WindowChoice {
  policy: { keepAliveS: number; prewarmS?: number };
  cost: number;
  cold: number;
}

/** The best window on a gap histogram (see the file comment), and the fixed timeout's figures on the same gaps. */
function bestWindow(bins: number[], outOfRange: number, terms: WindowTerms): { best: WindowChoice; fixed: { cost: number; cold: number } } {
  const { graceS, bootMs, fixedK, slack } = terms;
  const bootS = (bootMs ?? 0) / 1000;
  const total = bins.reduce((a, b) => a + b, 0) + outOfRange;
  // Gaps as (value, weight); the out-of-range ones are longer than any window (a value past every edge).
  const gaps: Array<[number, number]> = [];
  bins.forEach((w, bin) => {
    if (w > 0) gaps.push([binValueSeconds(bin), w]);
  });
  if (outOfRange > 0) gaps.push([GAP_BIN_EDGES_S[GAP_BIN_COUNT] * 2, outOfRange]);
  // Prefix sums over the gaps (sorted by value) price any window in O(log bins); gapOutcome is the same model per gap.
  const values = gaps.map((g) => g[0]);
  const weightUpTo = [0];
  const sumUpTo = [0];
  for (const [value, weight] of gaps) {
    weightUpTo.push(weightUpTo[weightUpTo.length - 1] + weight);
    sumUpTo.push(sumUpTo[sumUpTo.length - 1] + weight * value);
  }
  // Number of gaps with value ≤ x (strict: < x).
  const countAtMost = (x: number, strict = false) => {
    let lo = 0;
    let hi = values.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (strict ? values[mid] < x : values[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const weightIn = (from: number, to: number) => weightUpTo[to] - weightUpTo[from];
  const sumIn = (from: number, to: number) => sumUpTo[to] - sumUpTo[from];
  const n = values.length;
  const evaluate = (policy: { keepAliveS: number; prewarmS?: number }) => {
    const keepEnd = policy.keepAliveS + graceS;
    const covered = countAtMost(keepEnd);
    let cost: number;
    let cold: number;
    if (policy.prewarmS === undefined) {
      cost = sumIn(0, covered) + weightIn(covered, n) * (keepEnd + bootS);
      cold = weightIn(covered, n);
    } else {
      const w = policy.prewarmS;
      const inGrace = countAtMost(graceS);
      const early = Math.max(inGrace, countAtMost(w, true));
      const late = Math.max(early, covered);
      cost =
        sumIn(0, inGrace) +
        weightIn(inGrace, early) * (graceS + bootS) +
        sumIn(early, late) +
        weightIn(early, late) * (graceS + bootS - w) +
        weightIn(late, n) * (graceS + bootS + (keepEnd - w) + bootS);
      cold = weightIn(inGrace, early) + weightIn(late, n);
    }
    return { cost: cost / total, cold: cold / total };
  };
  const fixed = evaluate({ keepAliveS: fixedK });
  // Candidate windows: bin edges (a window that ends on an edge covers that whole bin).
  const keepCandidates = [0, ...GAP_BIN_EDGES_S.slice(1), fixedK];
  let best = { policy: { keepAliveS: fixedK } as { keepAliveS: number; prewarmS?: number }, ...fixed };
  // What avoiding a cold start is worth, in node-seconds: the fixed timeout says it (a pool that keeps a node
  // idleTimeoutSeconds pays up to that to avoid one), and never less than a boot (someone waits that long).
  const coldWorthS = Math.max(bootS, fixedK);
  const score = (c: { cost: number; cold: number }) => c.cost + c.cold * coldWorthS;
  const better = (c: { cost: number; cold: number }) =>
    c.cold <= fixed.cold + slack + 1e-9 &&
    (score(c) < score(best) - 1e-9 || (Math.abs(score(c) - score(best)) <= 1e-9 && c.cold < best.cold));
  for (const k of keepCandidates) {
    const outcome = evaluate({ keepAliveS: k });
    if (better(outcome)) best = { policy: { keepAliveS: k }, ...outcome };
  }
  // Pre-warming needs a known boot, and a gap long enough to tear down and boot again after the grace period.
  if (terms.prewarm && bootMs !== undefined) {
    for (const w of GAP_BIN_EDGES_S) {
      if (w < graceS + bootS || w <= 0) continue;
      for (const k of keepCandidates) {
        // The pre-warmed nodes stay at least until they are due.
        if (k < w) continue;
        const outcome = evaluate({ keepAliveS: k, prewarmS: w });
        if (better(outcome)) best = { policy: { keepAliveS: k, prewarmS: w }, ...outcome };
      }
    }
  }
  return { best, fixed };
}

/** Chooses the cheapest windows whose cold-start rate is no worse than the fixed timeout's (see the file comment). */
export function chooseWindows(learning: KeepAliveLearning, config: PoolConfig): KeepAliveWindows {
  const minSamples = config.keepAlive?.minSamples ?? DEFAULT_MIN_SAMPLES;
  if (learning.gapsSeen < minSamples) {
    return fixedWindows(config, `learning: ${learning.gapsSeen} of ${minSamples} idle gaps seen`);
  }
  const inRange = learning.gapBins.reduce((a, b) => a + b, 0);
  const total = inRange + learning.outOfRange;
  if (inRange < total / 2) return fixedWindows(config, 'most idle gaps are longer than 4 h: the histogram says little');
  const bootMs = bootEstimateMs(learning);
  const fixedK = config.idleTimeoutSeconds;
  const lane = config.lanes[0];
  const offersSleep = lane?.sleepingPricePerHour !== undefined && lane.sleepingPricePerHour < lane.pricePerHour;
  if ((lane?.stoppedPricePerHour !== undefined || offersSleep) && bootMs !== undefined) return ladderWindows(learning, config, bootMs);
  const { best, fixed } = bestWindow(learning.gapBins, learning.outOfRange, {
    graceS: config.teardownGraceSeconds,
    bootMs,
    fixedK,
    slack: config.keepAlive?.extraColdStartRate ?? 0,
    prewarm: true,
  });
  const common = {
    ...(bootMs !== undefined ? { bootMs } : {}),
    expectedColdRate: round(best.cold),
    fixedColdRate: round(fixed.cold),
    expectedCostSeconds: round(best.cost),
    fixedCostSeconds: round(fixed.cost),
  };
  const saving = fixed.cost > 0 ? Math.round((1 - best.cost / fixed.cost) * 100) : 0;
  const versus = `${saving >= 0 ? `${saving}% fewer` : `${-saving}% more`} node-seconds per gap than the fixed ${fmt(fixedK)}, cold starts ${pct(best.cold)} of gaps vs ${pct(fixed.cold)}`;
  if (best.policy.prewarmS !== undefined) {
    return {
      mode: 'prewarm',
      keepAliveMs: Math.round(best.policy.keepAliveS * 1000),
      prewarmMs: Math.round(best.policy.prewarmS * 1000),
      ...common,
      reason: `${learning.gapsSeen} idle gaps: arrivals rarely come before ${fmt(best.policy.prewarmS)}, so nodes leave at once and are back by then, staying until ${fmt(best.policy.keepAliveS)}; ${versus}`,
    };
  }
  return {
    mode: 'keep',
    keepAliveMs: Math.round(best.policy.keepAliveS * 1000),
    ...common,
    reason: `${learning.gapsSeen} idle gaps: nodes stay ${fmt(best.policy.keepAliveS)} after the pool goes idle; ${versus}`,
  };
}

/**
 * The adaptive windows of a pool whose first lane can stop its nodes or put them to sleep: the warm-state
 * ladder's chooser (warm-ladder.ts) picks, on the same histogram and under the same cold-start cap, between going
 * down to terminated, stopped or sleeping, each with keep and pre-warm plans. Costs are turned into running
 * node-seconds so the view reads as the two-state one does.
 */
function ladderWindows(learning: KeepAliveLearning, config: PoolConfig, bootMs: number): KeepAliveWindows {
  const lane = config.lanes[0]!;
  const wakeMs = wakeEstimateMs(learning) ?? Math.round(bootMs / 3);
  const sleepWakeMs = sleepWakeEstimateMs(learning);
  const ladder: Ladder = {
    runPerHour: lane.pricePerHour,
    bootS: bootMs / 1000,
    down: {
      ...(lane.stoppedPricePerHour !== undefined ? { stopped: { perHour: lane.stoppedPricePerHour, wakeS: wakeMs / 1000 } } : {}),
      ...(lane.sleepingPricePerHour !== undefined ? { sleeping: { perHour: lane.sleepingPricePerHour, wakeS: sleepWakeMs / 1000 } } : {}),
    },
    maxStoppedS: config.maxStoppedSeconds ?? 24 * 3600,
  };
  const choice = chooseLadderPlan(learning.gapBins, learning.outOfRange, ladder, {
    graceS: config.teardownGraceSeconds,
    fixedKeepS: config.idleTimeoutSeconds,
    slack: config.keepAlive?.extraColdStartRate ?? 0,
  });
  const asSeconds = (usd: number) => (lane.pricePerHour > 0 ? (usd * 3600) / lane.pricePerHour : 0);
  const rungs: NonNullable<KeepAliveWindows['rungs']> = {};
  for (const [down, best] of Object.entries(choice.perRung) as Array<[DownRung, NonNullable<(typeof choice.perRung)[DownRung]>]>) {
    rungs[down] = {
      keepAliveMs: Math.round(best.plan.keepS * 1000),
      ...(best.plan.prewarmS !== undefined ? { prewarmMs: Math.round(best.plan.prewarmS * 1000) } : {}),
      expectedCostUsd: round(best.expected.costUsd * 1000) / 1000,
      coldRate: round(best.expected.coldRate),
      waitS: round(best.expected.waitS),
    };
  }
  const { plan } = choice;
  return {
    mode: plan.prewarmS !== undefined ? 'prewarm' : 'keep',
    keepAliveMs: Math.round(plan.keepS * 1000),
    ...(plan.prewarmS !== undefined ? { prewarmMs: Math.round(plan.prewarmS * 1000) } : {}),
    bootMs,
    wakeMs,
    ...(ladder.down.sleeping ? { sleepWakeMs } : {}),
    down: plan.down,
    expectedColdRate: round(choice.expected.coldRate),
    fixedColdRate: round(choice.fixed.coldRate),
    expectedCostSeconds: round(asSeconds(choice.expected.costUsd)),
    fixedCostSeconds: round(asSeconds(choice.fixed.costUsd)),
    rungs,
    reason: `${learning.gapsSeen} idle gaps, with the ${Object.keys(ladder.down).join(' and ')} rung${Object.keys(ladder.down).length > 1 ? 's' : ''}: ${choice.reason}`,
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function pct(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}

function fmt(seconds: number): string {
  return seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`;
}
