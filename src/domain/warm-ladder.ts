/**
 * The warm-state ladder: what a node may do over an idle gap besides running at full price or being destroyed.
 * Pure functions; money in USD, times in seconds.
 *
 * Rungs, from warmest:
 * - `running`: full price, no wait;
 * - `sleeping`: the model server asleep (vLLM `POST /sleep`), VRAM freed, the node still billed; wakes in seconds;
 * - `stopped`: compute released, disk kept (RunPod stop, Hyperstack hibernate, EC2 stop, a stopped container);
 *   bills storage only; wakes faster than a boot (no image pull, no weight download), and is terminated after
 *   `maxStoppedS` so it never bills storage for ever;
 * - `terminated`: costs nothing; a full cold boot to come back.
 * A wake is billed at the running price (the machine runs while it wakes), as a boot is.
 *
 * A **plan** says what a node does after its pool goes idle: keep running `keepS` (plus the teardown grace),
 * then go `down` to a rung; or, with `prewarmS`, go down right after the grace, be running again by `prewarmS`,
 * run until `keepS`, then go down again. An arrival while the node is down waits that rung's wake.
 *
 * The chooser (chooseLadderPlan) prices every plan on the pool's idle-gap histogram (keep-alive.ts) and takes
 * the cheapest whose cold-start rate (gaps where somebody waits at all) is no higher than the fixed timeout's,
 * as the two-state policy does. Each expected wait costs what the fixed timeout says a cold start is worth
 * (idleTimeoutSeconds of running, at least a boot), in proportion to its length: a 20 s wake from `stopped`
 * counts a third of a 60 s boot.
 */
import { binValueSeconds, GAP_BIN_COUNT, GAP_BIN_EDGES_S } from './gap-histogram';
import type { Lane } from './pool-config';

export type DownRung = 'sleeping' | 'stopped' | 'terminated';
export type RungName = 'running' | DownRung;

/** Prices and wake times of the rungs one lane offers (a rung absent from `down` is not offered). */
export interface Ladder {
  /** USD per hour while running (the lane's price). */
  runPerHour: number;
  /** A fresh node's boot, request to ready (seconds). */
  bootS: number;
  /** The rungs a node may go down to: `terminated` always; `stopped` and `sleeping` where provider and model server can. */
  down: Partial<Record<'sleeping' | 'stopped', { perHour: number; wakeS: number }>>;
  /** A node stopped this long is terminated. */
  maxStoppedS: number;
}

/** A node's course over an idle gap (see the file comment). */
export interface LadderPlan {
  keepS: number;
  down: DownRung;
  prewarmS?: number;
}

/** One gap under one plan, per node. `waitS` > 0: the arrival that ended the gap waited (a cold start). */
export interface LadderGapOutcome {
  costUsd: number;
  waitS: number;
  /** The rung the waiting arrival found the node on (absent without a wait). */
  wokeFrom?: DownRung;
}

const perS = (perHour: number) => perHour / 3600;

/** Price per second and wake of a down rung (terminated: free, a boot). */
function rung(ladder: Ladder, down: DownRung): { perS: number; wakeS: number } {
  if (down === 'terminated') return { perS: 0, wakeS: ladder.bootS };
  const r = ladder.down[down];
  if (!r) throw new Error(`the ladder offers no ${down} rung`);
  return { perS: perS(r.perHour), wakeS: r.wakeS };
}

/**
 * A node down on `down` for `forS` seconds: what it cost, which rung it is on at the end, and that rung's wake.
 * A stopped or sleeping node past maxStoppedS has been terminated (it then needs a boot).
 */
function downFor(ladder: Ladder, down: DownRung, forS: number): { costUsd: number; endsOn: DownRung; wakeS: number } {
  const r = rung(ladder, down);
  if (down !== 'terminated' && forS > ladder.maxStoppedS) {
    return { costUsd: r.perS * ladder.maxStoppedS, endsOn: 'terminated', wakeS: ladder.bootS };
  }
  return { costUsd: r.perS * Math.max(0, forS), endsOn: down, wakeS: r.wakeS };
}

/** The first moment a plan has its node down (seconds after the pool went idle). */
function firstDownAt(plan: LadderPlan, graceS: number): number {
  return plan.prewarmS === undefined ? plan.keepS + graceS : graceS;
}

/** Whether a plan is one a node can follow: a pre-warm leaves time to go down and wake, and keeps until it is due. */
export function planIsFeasible(plan: LadderPlan, ladder: Ladder, graceS: number): boolean {
  if (plan.down !== 'terminated' && !ladder.down[plan.down]) return false;
  if (plan.prewarmS === undefined) return plan.keepS >= 0;
  return plan.prewarmS >= graceS + rung(ladder, plan.down).wakeS && plan.keepS >= plan.prewarmS;
}

/** One gap of `gapS` under `plan`, per node (see the file comment). */
export function ladderGapOutcome(gapS: number, plan: LadderPlan, ladder: Ladder, graceS: number): LadderGapOutcome {
  const run = perS(ladder.runPerHour);
  const keepEnd = plan.keepS + graceS;
  const cold = (upCostUsd: number, downFromS: number): LadderGapOutcome => {
    const d = downFor(ladder, plan.down, gapS - downFromS);
    return { costUsd: upCostUsd + d.costUsd + run * d.wakeS, waitS: d.wakeS, wokeFrom: d.endsOn };
  };
  if (plan.prewarmS === undefined) {
    if (gapS <= keepEnd) return { costUsd: run * gapS, waitS: 0 };
    return cold(run * keepEnd, keepEnd);
  }
  const w = plan.prewarmS;
  if (gapS <= graceS) return { costUsd: run * gapS, waitS: 0 };
  // An arrival before the node is due back waits a whole wake (the pre-warm is cancelled for it).
  if (gapS < w) return cold(run * graceS, graceS);
  const wake = rung(ladder, plan.down).wakeS;
  const before = downFor(ladder, plan.down, w - wake - graceS);
  const prewarmed = run * graceS + before.costUsd + run * wake;
  if (gapS <= keepEnd) return { costUsd: prewarmed + run * (gapS - w), waitS: 0 };
  return cold(prewarmed + run * (keepEnd - w), keepEnd);
}

/** A node left idle `forS` seconds with no arrival (the end of a trace): what the plan costs over it. */
export function ladderTailCost(forS: number, plan: LadderPlan, ladder: Ladder, graceS: number): number {
  const run = perS(ladder.runPerHour);
  const downAt = firstDownAt(plan, graceS);
  if (forS <= downAt) return run * forS;
  if (plan.prewarmS === undefined) return run * downAt + downFor(ladder, plan.down, forS - downAt).costUsd;
  const wake = rung(ladder, plan.down).wakeS;
  const upAt = plan.prewarmS - wake;
  if (forS <= upAt) return run * graceS + downFor(ladder, plan.down, forS - graceS).costUsd;
  const keepEnd = plan.keepS + graceS;
  const up = run * graceS + downFor(ladder, plan.down, upAt - graceS).costUsd + run * (Math.min(forS, keepEnd) - upAt);
  return forS <= keepEnd ? up : up + downFor(ladder, plan.down, forS - keepEnd).costUsd;
}

/**
 * The per-node bound with the ladder: over a gap, a node that knows the next arrival takes the cheapest rung
 * it can be back from in time (down at once, awake exactly at the arrival; no one waits):
 *     min( run × g,  min over down rungs r with wake_r ≤ g of  price_r × (g − wake_r) + run × wake_r )
 * (a stopped node only while g − wake ≤ maxStoppedS). With only `terminated` this is run × min(g, boot): the
 * two-state oracle.
 */
export function ladderOracleGapCost(
  gapS: number,
  ladder: Ladder,
  rungs: 'ladder' | 'two-state' = 'ladder',
): { costUsd: number; rung: RungName } {
  const run = perS(ladder.runPerHour);
  let best: { costUsd: number; rung: RungName } = { costUsd: run * gapS, rung: 'running' };
  const consider = (name: DownRung, pricePerS: number, wakeS: number) => {
    if (gapS < wakeS) return;
    const cost = pricePerS * (gapS - wakeS) + run * wakeS;
    if (cost < best.costUsd) best = { costUsd: cost, rung: name };
  };
  consider('terminated', 0, ladder.bootS);
  if (rungs === 'ladder') {
    const stopped = ladder.down.stopped;
    if (stopped && gapS - stopped.wakeS <= ladder.maxStoppedS) consider('stopped', perS(stopped.perHour), stopped.wakeS);
    const sleeping = ladder.down.sleeping;
    if (sleeping && gapS - sleeping.wakeS <= ladder.maxStoppedS) consider('sleeping', perS(sleeping.perHour), sleeping.wakeS);
  }
  return best;
}

/** Expected figures of a plan per idle gap. */
export interface PlanFigures {
  costUsd: number;
  /** Share of gaps that end in a wait. */
  coldRate: number;
  waitS: number;
}

/** The plan chosen, its figures, the fixed timeout's on the same gaps, and the best plan per rung (for the view). */
export interface LadderChoice {
  plan: LadderPlan;
  expected: PlanFigures;
  fixed: PlanFigures;
  perRung: Partial<Record<DownRung, { plan: LadderPlan; expected: PlanFigures }>>;
  reason: string;
}

/** A histogram's gaps as (seconds, weight): each bin at its value, gaps past the last edge past every window. */
export function histogramGaps(bins: number[], outOfRange: number): Array<[number, number]> {
  const gaps: Array<[number, number]> = [];
  for (let bin = 0; bin < GAP_BIN_COUNT; bin++) if (bins[bin] > 0) gaps.push([binValueSeconds(bin), bins[bin]]);
  if (outOfRange > 0) gaps.push([GAP_BIN_EDGES_S[GAP_BIN_COUNT] * 2, outOfRange]);
  return gaps;
}

/** Prices a plan on weighted gaps (histogramGaps). */
export function planFigures(gaps: Array<[number, number]>, plan: LadderPlan, ladder: Ladder, graceS: number): PlanFigures {
  let total = 0;
  let cost = 0;
  let cold = 0;
  let wait = 0;
  for (const [gapS, weight] of gaps) {
    const o = ladderGapOutcome(gapS, plan, ladder, graceS);
    total += weight;
    cost += weight * o.costUsd;
    wait += weight * o.waitS;
    if (o.waitS > 0) cold += weight;
  }
  return total === 0 ? { costUsd: 0, coldRate: 0, waitS: 0 } : { costUsd: cost / total, coldRate: cold / total, waitS: wait / total };
}

/**
 * The cheapest plan on the histogram whose cold-start rate is at most the fixed timeout's (+ `slack`), scored as
 * the file comment says. `fixedKeepS` is idleTimeoutSeconds; the fixed timeout is { keepS: fixedKeepS, down: terminated }.
 * Candidates sit on the edges of bins that hold gaps (a window between two such edges only costs more): keeps
 * end on a bin's upper edge (the whole bin covered), pre-warms are due by a bin's lower edge (the whole bin served).
 */
export function chooseLadderPlan(
  bins: number[],
  outOfRange: number,
  ladder: Ladder,
  terms: { graceS: number; fixedKeepS: number; slack?: number },
): LadderChoice {
  const { graceS, fixedKeepS } = terms;
  const slack = terms.slack ?? 0;
  const gaps = histogramGaps(bins, outOfRange);
  const fixedPlan: LadderPlan = { keepS: fixedKeepS, down: 'terminated' };
  const fixed = planFigures(gaps, fixedPlan, ladder, graceS);
  const run = perS(ladder.runPerHour);
  const waitWorthUsdPerS = (run * Math.max(ladder.bootS, fixedKeepS)) / Math.max(ladder.bootS, 1e-9);
  const score = (f: PlanFigures) => f.costUsd + f.waitS * waitWorthUsdPerS;
  // A rung priced at or above running only adds waits: never cheaper, so not a candidate.
  const downs: DownRung[] = [
    'terminated',
    ...(['stopped', 'sleeping'] as const).filter((r) => (ladder.down[r]?.perHour ?? Number.POSITIVE_INFINITY) < ladder.runPerHour),
  ];
  const held = bins.flatMap((w, bin) => (w > 0 ? [bin] : []));
  const keeps = [...new Set([0, fixedKeepS, ...held.map((bin) => GAP_BIN_EDGES_S[bin + 1])])];
  const dues = [...new Set(held.map((bin) => GAP_BIN_EDGES_S[bin]))].filter((w) => w > 0);
  let best = { plan: fixedPlan, expected: fixed };
  const perRung: LadderChoice['perRung'] = {};
  const consider = (plan: LadderPlan) => {
    if (!planIsFeasible(plan, ladder, graceS)) return;
    const f = planFigures(gaps, plan, ladder, graceS);
    if (f.coldRate > fixed.coldRate + slack + 1e-9) return;
    const current = perRung[plan.down];
    if (!current || score(f) < score(current.expected) - 1e-12) perRung[plan.down] = { plan, expected: f };
    if (score(f) < score(best.expected) - 1e-12) best = { plan, expected: f };
  };
  for (const down of downs) {
    for (const keepS of keeps) consider({ keepS, down });
    for (const prewarmS of dues) for (const keepS of keeps) if (keepS >= prewarmS) consider({ keepS, down, prewarmS });
  }
  return { plan: best.plan, expected: best.expected, fixed, perRung, reason: describePlan(best.plan, best.expected, fixed, fixedKeepS) };
}

function describePlan(plan: LadderPlan, expected: PlanFigures, fixed: PlanFigures, fixedKeepS: number): string {
  const saving = fixed.costUsd > 0 ? Math.round((1 - expected.costUsd / fixed.costUsd) * 100) : 0;
  const versus = `${saving >= 0 ? `${saving}% less` : `${-saving}% more`} per gap than the fixed ${fmt(fixedKeepS)}, cold starts ${pct(expected.coldRate)} of gaps vs ${pct(fixed.coldRate)}`;
  const course =
    plan.prewarmS === undefined
      ? `run ${fmt(plan.keepS)} after the pool goes idle, then ${plan.down}`
      : `${plan.down} right after the grace period, running again by ${fmt(plan.prewarmS)}, until ${fmt(plan.keepS)}, then ${plan.down}`;
  return `${course}; ${versus}`;
}

function pct(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}

function fmt(seconds: number): string {
  return seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`;
}

/**
 * The rung an idle node of `lane` goes down to when the pool's windows chose `down` (absent: windows that chose
 * none, fixed or two-state, take the cheapest rung the lane offers, as the fixed timeout always has). A rung the
 * lane does not price is not offered there: the node is terminated. Sleeping is offered only below the lane's price.
 */
export function teardownRung(lane: Lane, down: DownRung | undefined): DownRung {
  const stops = lane.stoppedPricePerHour !== undefined;
  const sleeps = lane.sleepingPricePerHour !== undefined && lane.sleepingPricePerHour < lane.pricePerHour;
  if (down === 'stopped') return stops ? 'stopped' : 'terminated';
  if (down === 'sleeping') return sleeps ? 'sleeping' : 'terminated';
  if (down === 'terminated') return 'terminated';
  return stops ? 'stopped' : sleeps ? 'sleeping' : 'terminated';
}
