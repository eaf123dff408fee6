/** Placement rules: which queued job goes to which free slot. Pure functions. */
import type { NodeRecord, Placement, PoolState, QueuedJob } from './types';
import { busySlots } from './scaling';

/** A decision to put a queued job on a node slot. */
export interface PlacementDecision {
  job: QueuedJob;
  node: NodeRecord;
  slot: number;
}

/**
 * Places queued jobs in queue order (requeued jobs sit at the front) onto free slots of ready nodes,
 * least-loaded node first so a request does not share a node while another stands idle.
 * Terminating, provisioning and suspect nodes never receive jobs. Mutates state; returns what it placed.
 */
export function placeQueuedJobs(state: PoolState, now: number): PlacementDecision[] {
  const decisions: PlacementDecision[] = [];
  while (state.queue.length > 0) {
    const node = leastLoadedReadyNode(state.nodes);
    if (!node) break;
    const slot = node.slots.indexOf(null);
    const job = state.queue.shift()!;
    node.slots[slot] = job.jobId;
    const placement: Placement = { jobId: job.jobId, attempt: job.attempt, nodeId: node.id, slot, placedAt: now };
    state.running.push(placement);
    state.placedTotal += 1;
    decisions.push({ job, node, slot });
  }
  return decisions;
}

function leastLoadedReadyNode(nodes: NodeRecord[]): NodeRecord | undefined {
  let best: NodeRecord | undefined;
  for (const node of nodes) {
    if (node.state !== 'ready' || node.suspect) continue;
    const busy = busySlots(node);
    if (busy >= node.slots.length) continue;
    if (!best || busy < busySlots(best)) best = node;
  }
  return best;
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
 * (the job saw its node fail) frees the old slot first. Requeued jobs go to the front.
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
  if (front) state.queue.unshift(job);
  else state.queue.push(job);
  return true;
}

/**
 * Takes every job off a lost node and puts them at the front of the queue, keeping their order,
 * each with the next attempt number. Returns the requeued jobs.
 */
export function requeueJobsOfNode(state: PoolState, nodeIdLost: string, now: number): QueuedJob[] {
  const victims = state.running.filter((p) => p.nodeId === nodeIdLost).sort((a, b) => a.placedAt - b.placedAt);
  const requeued = victims.map((p) => ({ jobId: p.jobId, attempt: p.attempt + 1, enqueuedAt: now }));
  state.running = state.running.filter((p) => p.nodeId !== nodeIdLost);
  state.queue.unshift(...requeued);
  return requeued;
}
