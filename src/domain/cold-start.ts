/**
 * A job's cold start, split into phases: what it waited for, so a slow start says whose it was (finding a lane
 * with capacity, the provider's create or start call, or the node booting to a healthy model server). Pure.
 */
import type { ColdStartPhases, NodeRecord } from './types';

/**
 * The phases of the wait of a job enqueued at `enqueuedAt` for `node`, which became ready after it. Each phase
 * counts only the part the job was there for, so they sum to its cold start (readyAt − enqueuedAt).
 */
export function coldStartPhases(node: NodeRecord, enqueuedAt: number): ColdStartPhases | undefined {
  const ready = node.readyAt;
  if (ready === undefined || ready <= enqueuedAt) return undefined;
  const clamp = (t: number | undefined, floor: number) => Math.min(ready, Math.max(floor, t ?? floor));
  const called = clamp(node.calledAt, enqueuedAt);
  const accepted = clamp(node.acceptedAt, called);
  return {
    rung: node.wokeFrom ?? (node.stops ? 'stopped' : 'cold'),
    capacityMs: called - enqueuedAt,
    providerMs: accepted - called,
    bootMs: ready - accepted,
  };
}
