/**
 * Replays one app's arrivals through the pool machine (`stepPoolInPlace`, the rules the pool workflow runs) in
 * virtual time. The evaluator plays the workflow's part: it turns arrivals, finished requests and timers into
 * events and answers the machine's commands as a provider would, after the configured delays:
 * provision at once, ready `coldStartS` later (billed from provision, as every provider bills), terminate
 * at once; for a ladder policy, stop at once (the node then bills `stopPricePerHour`), start at once and ready
 * `stopWakeS` later (billed as running from the start call); with a sleeping price (`sleepPricePerHour`), sleep at
 * once (the node then bills that price) and wake `sleepWakeS` later (billed as running from the wake call). Health checks and reconciliation answer "all well". Nothing else is simulated: every decision
 * (placement, scale-up, the idle timer, teardown and its grace, the adaptive windows) is the machine's.
 * The oracle is not simulated: oracle.ts computes its bound.
 */
import { type NodeIdMaker, stepPoolInPlace } from '../domain/pool-machine';
import { poolConfigSchema } from '../domain/pool-config';
import type { PoolCommand, PoolEvent } from '../domain/pool-protocol';
import { newPoolState } from '../domain/pool-view';
import { busySlots, isIdle } from '../domain/scaling';
import type { PoolState } from '../domain/types';
import type { PoolKey } from '../ids';
import type { Policy } from './policies';
import type { TraceApp } from './trace';

export interface SimulationKnobs {
  /** Seconds from provision to ready (billed). */
  coldStartS: number;
  pricePerHour: number;
  slotsPerNode: number;
  maxNodes: number;
  /** Run time of a request: prompt / prefill rate + output / decode rate. */
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  teardownGraceS: number;
  /** The stopped rung (ladder policies): what a stopped node costs, and its wake (start call → ready). */
  stopPricePerHour: number;
  stopWakeS: number;
  /** The sleeping rung (ladder policies, only where given: a cloud GPU bills a sleeping node in full). */
  sleepPricePerHour?: number;
  sleepWakeS: number;
}

export const DEFAULT_KNOBS: SimulationKnobs = {
  coldStartS: 60,
  pricePerHour: 2,
  slotsPerNode: 8,
  maxNodes: 100,
  prefillTokensPerS: 5000,
  decodeTokensPerS: 50,
  teardownGraceS: 10,
  stopPricePerHour: 0.0274,
  stopWakeS: 20,
  sleepWakeS: 3,
};

/** What one policy did with one app. Money in USD; times in seconds unless the name says ms. */
export interface AppResult {
  app: string;
  policy: string;
  requests: number;
  costUsd: number;
  /** Cost of node time with no request running (booting, idle, in teardown grace). */
  idleCostUsd: number;
  nodeSeconds: number;
  /** Node boots that at least one request waited for (wakes from stopped included). */
  coldStarts: number;
  /** Of them, wakes from stopped (ladder policies). */
  wakesWaited?: number;
  /** Cost of stopped and asleep node time (in costUsd too). */
  stoppedCostUsd?: number;
  /** Requests placed on a node that became ready after they arrived. */
  coldWaitedRequests: number;
  /** Requests that waited at all (queue or boot), and their waits. Requests not in it waited 0 ms. */
  waitsMs: number[];
  /** Node boots in all (pre-warms included). */
  boots: number;
  /** Times the pool went from billed nodes to none (scale to zero) inside the trace's span. */
  scaledToZero: number;
  /** The adaptive windows at the end (adaptive policy only). */
  finalWindows?: unknown;
  /** Points for the timeline picture: [time s, nodes billed, requests running]. */
  timeline?: Array<[number, number, number]>;
}

export function runMs(arrival: { promptTokens: number; outputTokens: number }, knobs: SimulationKnobs): number {
  return Math.max(1, Math.round(1000 * (arrival.promptTokens / knobs.prefillTokensPerS + arrival.outputTokens / knobs.decodeTokensPerS)));
}

interface Scheduled {
  at: number;
  seq: number;
  event: PoolEvent;
}

/** A binary heap of events ordered by (time, sequence). */
class EventQueue {
  private readonly items: Scheduled[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  peek(): Scheduled | undefined {
    return this.items[0];
  }

  push(at: number, event: PoolEvent): void {
    const item = { at, seq: this.seq++, event };
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }

  pop(): Scheduled | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A node billed at its GPU price now (a stopped node bills only its disk, a sleeping one the sleeping price). */
const gpuBilled = (node: PoolState['nodes'][number]) =>
  node.billedFrom !== undefined && node.stoppedAt === undefined && node.sleptAt === undefined;

const makeNodeId: NodeIdMaker = (_pool, sequence) => `n${sequence}`;

/** Runs one policy over one app's arrivals, billing node time from 0 to the end of the trace (`spanMs`). */
export function simulateApp(
  app: TraceApp,
  policy: Policy,
  knobs: SimulationKnobs,
  spanMs: number,
  options: { timeline?: boolean } = {},
): AppResult {
  const config = poolConfigSchema.parse({
    model: 'evaluated-model',
    minNodes: policy.minNodes,
    maxNodes: knobs.maxNodes,
    slotsPerNode: knobs.slotsPerNode,
    idleTimeoutSeconds: policy.idleTimeoutSeconds,
    teardownGraceSeconds: knobs.teardownGraceS,
    // Nothing fails in the evaluator: rare checks keep the step count down without changing a decision.
    healthCheckIntervalSeconds: 3600,
    reconcileIntervalSeconds: 24 * 3600,
    keepAlive: { mode: policy.adaptive ? 'adaptive' : 'fixed' },
    lanes: [
      {
        provider: 'mock',
        market: 'on-demand',
        gpu: 'evaluated-gpu',
        pricePerHour: knobs.pricePerHour,
        ...(policy.ladder ? { stoppedPricePerHour: knobs.stopPricePerHour } : {}),
        ...(policy.ladder && knobs.sleepPricePerHour !== undefined ? { sleepingPricePerHour: knobs.sleepPricePerHour } : {}),
      },
    ],
  });
  const state: PoolState = newPoolState('evaluated' as PoolKey, config);
  const coldStartMs = knobs.coldStartS * 1000;
  const arrivals = app.arrivals;
  const queue = new EventQueue();
  const result: AppResult = {
    app: app.app,
    policy: policy.name,
    requests: arrivals.length,
    costUsd: 0,
    idleCostUsd: 0,
    nodeSeconds: 0,
    coldStarts: 0,
    coldWaitedRequests: 0,
    waitsMs: [],
    boots: 0,
    scaledToZero: 0,
    ...(options.timeline ? { timeline: [] } : {}),
  };
  /** Boots waited for: a node id, and for a wake which of its wakes. */
  const coldNodes = new Set<string>();
  let wakesWaited = 0;
  let stoppedMs = 0;
  let sleptMs = 0;
  let nodeMs = 0;
  let idleNodeMs = 0;
  let clock = -(coldStartMs + 1000);
  let wakeAt: number | undefined;
  let next = 0;

  // Node time between two steps, clipped to the billed window [0, spanMs].
  const account = (until: number) => {
    const from = Math.max(0, clock);
    const to = Math.min(until, spanMs);
    if (to > from) {
      for (const node of state.nodes) {
        if (node.billedFrom === undefined) continue;
        if (node.stoppedAt !== undefined) {
          stoppedMs += to - from;
          continue;
        }
        if (node.sleptAt !== undefined) {
          sleptMs += to - from;
          continue;
        }
        nodeMs += to - from;
        if (busySlots(node) === 0) idleNodeMs += to - from;
      }
    }
  };

  const step = (event: PoolEvent, now: number) => {
    account(now);
    clock = now;
    const billedBefore = state.nodes.some(gpuBilled);
    const out = stepPoolInPlace(state, event, now, makeNodeId);
    wakeAt = out.wakeAt;
    if (billedBefore && !state.nodes.some(gpuBilled) && now < spanMs) result.scaledToZero += 1;
    for (const command of out.commands) answer(command, now);
    if (result.timeline) {
      const billed = state.nodes.filter(gpuBilled).length;
      const last = result.timeline[result.timeline.length - 1];
      const point: [number, number, number] = [now / 1000, billed, state.running.length];
      if (!last || last[1] !== point[1] || last[2] !== point[2]) result.timeline.push(point);
    }
  };

  const answer = (command: PoolCommand, now: number) => {
    switch (command.type) {
      case 'provision':
        result.boots += 1;
        queue.push(now, { type: 'nodeProvisioned', command, laneIndex: command.laneIndex, url: `sim://${command.nodeId}` });
        return;
      case 'waitReady':
        queue.push(now + (command.rung === 'stopped' ? knobs.stopWakeS * 1000 : coldStartMs), {
          type: 'nodeReady',
          command,
          url: `sim://${command.nodeId}`,
        });
        return;
      case 'stop':
        queue.push(now, { type: 'nodeStopped', command });
        return;
      case 'start':
        queue.push(now, { type: 'nodeStarted', command, url: `sim://${command.nodeId}` });
        return;
      case 'sleep':
        queue.push(now, { type: 'nodeSlept', command });
        return;
      case 'wake':
        queue.push(now + knobs.sleepWakeS * 1000, { type: 'nodeWoke', command });
        return;
      case 'terminate':
        queue.push(now, { type: 'nodeTerminated', command });
        return;
      case 'checkHealth':
        queue.push(now, {
          type: 'healthChecked',
          statuses: command.nodes.map((n) => ({ nodeId: n.nodeId, exists: true, healthy: true })),
        });
        return;
      case 'reconcile':
        queue.push(now, { type: 'reconciled', removed: [] });
        return;
      case 'recordLedger':
        queue.push(now, { type: 'ledgerRecorded', key: command.row.key });
        return;
      case 'tellJob': {
        // The machine does nothing on `jobTold`, so it is not sent back (it would double the steps).
        if (command.message.kind !== 'placed') return;
        const index = Number(command.jobId);
        const arrival = arrivals[index];
        const waited = now - arrival.atMs;
        if (waited > 0) result.waitsMs.push(waited);
        const { grant } = command.message;
        if (grant.coldStartMs > 0) {
          result.coldWaitedRequests += 1;
          // A node woken again is a new wait: keyed by how many times it was stopped or put to sleep.
          const node = state.nodes.find((n) => n.id === grant.nodeId);
          const downs = (node?.stops ?? 0) + (node?.sleeps ?? 0);
          const key = `${grant.nodeId}#${downs}`;
          if (!coldNodes.has(key) && downs > 0) wakesWaited += 1;
          coldNodes.add(key);
        }
        queue.push(now + runMs(arrival, knobs), { type: 'jobFinished', jobId: command.jobId, attempt: command.message.grant.attempt });
        return;
      }
      case 'log':
        return;
    }
  };

  // One lane: lane moves have nothing to do (and cost a look per step).
  step({ type: 'started', scaleIn: true }, clock);
  for (;;) {
    const arrivalAt = next < arrivals.length ? arrivals[next].atMs : Infinity;
    const eventAt = queue.peek()?.at ?? Infinity;
    const timerAt = wakeAt ?? Infinity;
    const at = Math.min(arrivalAt, eventAt, timerAt);
    const done = next >= arrivals.length && isIdle(state);
    if (at === Infinity || (done && at > spanMs)) break;
    if (eventAt === at) {
      step(queue.pop()!.event, at);
    } else if (arrivalAt === at) {
      const jobId = String(next);
      next += 1;
      step({ type: 'jobArrived', arrival: { jobId, attempt: 1, front: false } }, at);
    } else {
      wakeAt = undefined;
      step({ type: 'timerFired' }, at);
    }
  }
  account(spanMs);
  result.coldStarts = coldNodes.size;
  result.nodeSeconds = nodeMs / 1000;
  const stoppedCostUsd = (stoppedMs / 3_600_000) * knobs.stopPricePerHour + (sleptMs / 3_600_000) * (knobs.sleepPricePerHour ?? 0);
  result.costUsd = (nodeMs / 3_600_000) * knobs.pricePerHour + (policy.ladder ? stoppedCostUsd : 0);
  if (policy.ladder) {
    result.wakesWaited = wakesWaited;
    result.stoppedCostUsd = stoppedCostUsd;
  }
  result.idleCostUsd = (idleNodeMs / 3_600_000) * knobs.pricePerHour;
  if (policy.adaptive) result.finalWindows = state.keepAlive?.windows;
  return result;
}
