/** Preemption policy: which running job makes room for which queued one, and why (or why not). Pure. */
import { basePriority, isEligible } from './placement';
import { activeNodes, availableLanes } from './scaling';
import { jobSlots } from './slot-leases';
import type { Placement, PoolState, QueuedJob } from './types';

/** Priority gap that allows a preemption when a pool does not set one. */
export const DEFAULT_PREEMPT_PRIORITY_GAP = 2;
/**
 * A running job on a later attempt than this is not preempted again: a low-priority job resumed after a
 * preemption is the newest placement, so without this cap it would be the next victim every time.
 */
export const MAX_PREEMPTIBLE_ATTEMPT = 3;

/** One planned preemption. */
export interface PreemptionChoice {
  victim: Placement;
  /** The queued job the freed slot is meant for. */
  preemptor: QueuedJob;
}

/** What the pool would do now, with the reason when it would do nothing. */
export interface PreemptionPlan {
  choices: PreemptionChoice[];
  /** Why nothing (more) is preempted; empty when every waiting candidate got a victim. */
  reasons: string[];
}

/**
 * Preempts only when a queued job cannot get capacity any other way: no free slot on a ready node, no
 * node on its way, and the pool already at maxNodes or every lane short (no VRAM on the local GPUs, no cloud
 * capacity). Then the highest-priority waiting jobs are paired with
 * the lowest-priority running jobs (the most recently placed among equals: the least work thrown away)
 * while the running job's priority number exceeds the waiting one's by at least the gap. Priorities are
 * compared before aging, so a job that aged up never preempts. A preemption already under way serves the
 * top waiting job, so asking twice does not stop two jobs for one.
 */
export function planPreemptions(state: PoolState, now: number): PreemptionPlan {
  const gap = state.config.preemptPriorityGap ?? DEFAULT_PREEMPT_PRIORITY_GAP;
  const waiting = state.queue.filter((job) => isEligible(job, now));
  if (waiting.length === 0) return { choices: [], reasons: ['no job is waiting'] };
  const active = activeNodes(state);
  // A node between lane rounds (laneIndex -1) is on its way only if some lane is open to it; with every lane
  // short (no VRAM on the local GPUs, no cloud capacity) it is not, and preemption is the way to run now.
  const lanesOpen = availableLanes(state.config, state.laneCooldownUntil, now).length > 0;
  if (active.some((n) => n.state === 'provisioning' && (n.laneIndex >= 0 || lanesOpen))) {
    return { choices: [], reasons: ['a node is on its way: waiting jobs will run there'] };
  }
  if (active.length < state.config.maxNodes && lanesOpen) {
    return { choices: [], reasons: [`the pool can still add nodes (${active.length} of ${state.config.maxNodes})`] };
  }
  if (active.some((n) => n.state === 'ready' && !n.suspect && jobSlots(n) < n.slots.length)) {
    return { choices: [], reasons: ['a slot is free: waiting jobs are placed without preemption'] };
  }

  const pending = state.running.filter((p) => p.preempting).length;
  const candidates = [...waiting].sort((a, b) => basePriority(a) - basePriority(b) || a.enqueuedAt - b.enqueuedAt).slice(pending);
  const victims = state.running
    .filter((p) => !p.preempting && p.attempt <= MAX_PREEMPTIBLE_ATTEMPT)
    .sort((a, b) => basePriority(b) - basePriority(a) || b.placedAt - a.placedAt);

  const choices: PreemptionChoice[] = [];
  const reasons: string[] = [];
  for (const preemptor of candidates) {
    const victim = victims[choices.length];
    if (!victim) {
      const shielded = state.running.filter((p) => !p.preempting && p.attempt > MAX_PREEMPTIBLE_ATTEMPT).length;
      reasons.push(
        `no running job left to preempt for ${preemptor.jobId}` +
          (shielded > 0 ? ` (${shielded} on attempt ${MAX_PREEMPTIBLE_ATTEMPT + 1} or later are not preempted again)` : ''),
      );
      break;
    }
    const difference = basePriority(victim) - basePriority(preemptor);
    if (difference < gap) {
      reasons.push(
        `job ${preemptor.jobId} (priority ${basePriority(preemptor)}) does not outrank the lowest running job ` +
          `${victim.jobId} (priority ${basePriority(victim)}) by the gap of ${gap}`,
      );
      break;
    }
    choices.push({ victim, preemptor });
  }
  if (candidates.length === 0 && pending > 0) reasons.push(`${pending} preemption(s) already under way`);
  return { choices, reasons };
}

/** The answer of the preemption check and trigger (operators and the API). */
export interface PreemptionCheck {
  mode: 'auto' | 'manual';
  gap: number;
  /** Preemptions this round makes (check: would make). */
  preemptions: Array<{ victim: string; victimPriority: number; nodeId: string; preemptor: string; preemptorPriority: number }>;
  reasons: string[];
}

/** Describes a plan for operators. */
export function describePlan(state: PoolState, plan: PreemptionPlan): PreemptionCheck {
  return {
    mode: state.config.preemption ?? 'auto',
    gap: state.config.preemptPriorityGap ?? DEFAULT_PREEMPT_PRIORITY_GAP,
    preemptions: plan.choices.map(({ victim, preemptor }) => ({
      victim: victim.jobId,
      victimPriority: basePriority(victim),
      nodeId: victim.nodeId,
      preemptor: preemptor.jobId,
      preemptorPriority: basePriority(preemptor),
    })),
    reasons: plan.reasons,
  };
}
