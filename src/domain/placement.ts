/** Placement rules: which queued job goes to which free slot, by priority then age. Pure functions. */
import type { NodeRecord, Placement, PoolConfig, PoolState, QueuedJob } from './types';
import { busySlots } from './scaling';

/** Priority of a job that did not say (and of jobs queued before priorities existed). */
export const DEFAULT_PRIORITY = 3;
/** Seconds of waiting that raise a queued job by one priority level, unless the pool says otherwise. */
export const DEFAULT_AGING_SECONDS = 300;

/** A decision to put a queued job on a node slot. */
export interface PlacementDecision {
  job: QueuedJob;
  node: NodeRecord;
  slot: number;
}

/** A queued job's own priority. */
export function basePriority(job: { priority?: number }): number {
  return job.priority ?? DEFAULT_PRIORITY;
}

/**
 * The aging rule: a queued job rises one priority level for every `agingSeconds` it has waited, up to 1.
 * With the default 300 s a priority-5 job competes as priority 1 after 20 minutes, and from then on it is
 * ahead of every priority-1 job that arrived after it: no job waits forever behind newer arrivals.
 */
export function effectivePriority(job: QueuedJob, now: number, config: Pick<PoolConfig, 'agingSeconds'>): number {
  const step = (config.agingSeconds ?? DEFAULT_AGING_SECONDS) * 1000;
  const levels = step > 0 ? Math.floor(Math.max(0, now - job.enqueuedAt) / step) : 0;
  return Math.max(1, basePriority(job) - levels);
}

/** Whether a job may be placed now (not in a retry backoff). */
export function isEligible(job: QueuedJob, now: number): boolean {
  return job.notBefore === undefined || job.notBefore <= now;
}

/**
 * Queued jobs in placement order: aged priority, then jobs requeued from a lost node, then age, then
 * arrival order. Returns a sorted copy; the queue itself keeps arrival order.
 */
export function queueOrder(state: Pick<PoolState, 'queue' | 'config'>, now: number): QueuedJob[] {
  const keyed = state.queue.map((job, index) => ({ job, index, priority: effectivePriority(job, now, state.config) }));
  keyed.sort(
    (a, b) =>
      a.priority - b.priority ||
      Number(b.job.front ?? false) - Number(a.job.front ?? false) ||
      a.job.enqueuedAt - b.job.enqueuedAt ||
      a.index - b.index,
  );
  return keyed.map((k) => k.job);
}

/**
 * Places eligible queued jobs in queue order onto free slots of ready nodes, least-loaded node first so a
 * request does not share a node while another stands idle. Terminating, provisioning and suspect nodes
 * never receive jobs; retiring ones only when no other node has room. Mutates state; returns what it placed.
 */
export function placeQueuedJobs(state: PoolState, now: number): PlacementDecision[] {
  const decisions: PlacementDecision[] = [];
  if (state.queue.length === 0) return decisions;
  for (const job of queueOrder(state, now)) {
    if (!isEligible(job, now)) continue;
    const node = leastLoadedReadyNode(state.nodes);
    if (!node) break;
    const slot = node.slots.indexOf(null);
    node.slots[slot] = job.jobId;
    const placement: Placement = {
      jobId: job.jobId,
      attempt: job.attempt,
      nodeId: node.id,
      slot,
      placedAt: now,
      priority: basePriority(job),
    };
    state.running.push(placement);
    state.placedTotal += 1;
    decisions.push({ job, node, slot });
  }
  // One pass over the queue for the whole batch, not a search per placed job.
  if (decisions.length > 0) {
    const placed = new Set(decisions.map((d) => d.job));
    state.queue = state.queue.filter((job) => !placed.has(job));
  }
  return decisions;
}

/** A retiring node (replaced on a preferred lane) takes work only when no other ready node has room. */
function leastLoadedReadyNode(nodes: NodeRecord[]): NodeRecord | undefined {
  return leastLoaded(nodes, false) ?? leastLoaded(nodes, true);
}

function leastLoaded(nodes: NodeRecord[], retiring: boolean): NodeRecord | undefined {
  let best: NodeRecord | undefined;
  for (const node of nodes) {
    if (node.state !== 'ready' || node.suspect || (node.retiring ?? false) !== retiring) continue;
    const busy = busySlots(node);
    if (busy >= node.slots.length) continue;
    if (!best || busy < busySlots(best)) best = node;
  }
  return best;
}

/** Earliest retry time among queued jobs still in backoff (undefined when none is). */
export function nextRetryAt(state: PoolState, now: number): number | undefined {
  let earliest: number | undefined;
  for (const job of state.queue) {
    if (job.notBefore !== undefined && job.notBefore > now && (earliest === undefined || job.notBefore < earliest))
      earliest = job.notBefore;
  }
  return earliest;
}

/** Frees the slot a placement holds and removes it. Returns the removed placement, if any. */
export function releasePlacement(state: PoolState, jobId: string): Placement | undefined {
  const index = state.running.findIndex((p) => p.jobId === jobId);
  if (index < 0) return undefined;
  const [placement] = state.running.splice(index, 1);
  const node = state.nodes.find((n) => n.id === placement.nodeId);
  if (node && node.slots[placement.slot] === jobId) node.slots[placement.slot] = null;
  return placement;
}

/**
 * Adds a job to the queue, or ignores a stale or duplicate arrival. A newer attempt of a running job
 * (the job saw its node fail, or it stopped for a preemption) frees the old slot first.
 * Returns true when the queue changed.
 */
export function enqueueJob(state: PoolState, job: QueuedJob, front: boolean): boolean {
  const queued = state.queue.find((q) => q.jobId === job.jobId);
  if (queued) {
    if (job.attempt > queued.attempt) queued.attempt = job.attempt;
    return false;
  }
  const running = state.running.find((p) => p.jobId === job.jobId);
  if (running) {
    if (job.attempt <= running.attempt) return false;
    releasePlacement(state, job.jobId);
  }
  const entry: QueuedJob = { ...job };
  if (front) entry.front = true;
  if (front) state.queue.unshift(entry);
  else state.queue.push(entry);
  return true;
}

/**
 * Takes every job off a lost node and puts them back in the queue ahead of jobs of the same priority,
 * keeping their order and priority, each with the next attempt number. Returns the requeued jobs.
 */
export function requeueJobsOfNode(state: PoolState, nodeIdLost: string, now: number): QueuedJob[] {
  const victims = state.running.filter((p) => p.nodeId === nodeIdLost).sort((a, b) => a.placedAt - b.placedAt);
  const requeued: QueuedJob[] = victims.map((p) => ({
    jobId: p.jobId,
    attempt: p.attempt + 1,
    enqueuedAt: now,
    front: true,
    ...(p.priority !== undefined ? { priority: p.priority } : {}),
  }));
  state.running = state.running.filter((p) => p.nodeId !== nodeIdLost);
  state.queue.unshift(...requeued);
  return requeued;
}
