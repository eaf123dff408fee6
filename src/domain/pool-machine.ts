/**
 * The pool as a pure state machine: `stepPool(state, event, now) → { state, commands, wakeAt }`.
 * Every pool rule lives here: placement, scale-up, lane fallback, preemption, the idle timer and teardown,
 * a burst cancelling a teardown, health loss, operator stop/drain/warm, and what follows a failed command.
 * The pool workflow only turns signals, updates, timers and command results into events and runs the
 * commands; the offline evaluator can drive the same function in virtual time.
 */
import { onDemandReferencePrice } from './money';
import { sleptMsUpTo, stoppedMsUpTo } from './node-billing';
import { jsonCopy } from './plain-json';
import { coldStartPhases } from './cold-start';
import { basePriority, enqueueJob, nextRetryAt, placeQueuedJobs, releasePlacement, requeueJobsOfNode } from './placement';
import type { JobMessage, LedgerRowRequest, PoolCommand, PoolEvent, PoolReply, StepResult } from './pool-protocol';
import { describePlan, planPreemptions, type PreemptionCheck } from './preemption';
import { lanesForNewNode, planLaneMove, retiredNodes } from './lane-moves';
import { newPoolState } from './pool-view';
import {
  activeNodes,
  allLanesShortBackoffMs,
  busySlots,
  availableLanes,
  baseline,
  isIdle,
  nextLaneAvailableAt,
  nodesToAdd,
  teardownCandidates,
} from './scaling';
import {
  bootEstimateMs,
  chooseWindows,
  DRAIN_HORIZON_MS,
  newKeepAliveLearning,
  recordBoot,
  recordIdleGap,
  recordRunTime,
  scaleInWindowMs,
  recordSleepWake,
  sleepWakeEstimateMs,
  recordWake,
  wakeEstimateMs,
  windowsInForce,
} from './keep-alive';
import { exchangeLeases, nextLeaseExpiry, nodeHasLeases, settleLeases } from './slot-leases';
import { type DownRung, teardownRung } from './warm-ladder';
import type { NodeCommand, NodeRecord, NodeState, Placement, PoolState } from './types';
import type { PoolKey } from '../ids';

/** How many finished job ids the pool remembers to ignore late duplicate arrivals. */
export const RECENTLY_DONE_LIMIT = 500;
/** maxStoppedSeconds of pools created before it (the schema's default). */
export const DEFAULT_MAX_STOPPED_SECONDS = 24 * 3600;
/** Consecutive failed health checks after which a ready node counts as lost. */
export const HEALTH_FAILURES_TO_LOSE = 3;
/** How often a pool that does not say looks for nodes its provider holds that it does not know (and heals lost ledger rows). */
export const DEFAULT_RECONCILE_INTERVAL_SECONDS = 600;
/** Wait before retrying a failed reconciliation. */
export const RECONCILE_RETRY_MS = 60_000;

/** Wait before the next terminate call after `failures` failed ones: 5 s doubling, at most 5 minutes. */
export function terminateRetryMs(failures: number): number {
  return Math.min(300_000, 5_000 * 2 ** Math.max(0, failures - 1));
}

/** A new pool's state (ids given by the caller: the pool key and a node-id maker). */
export { newPoolState };

/** Makes a node id from the pool key and a sequence number (ids.ts nodeId; injected to keep this file pure). */
export type NodeIdMaker = (poolKey: PoolKey, sequence: number, incarnation?: string) => string;

/** Applies one event; returns the new state, the commands to run, when to wake, and a reply for updates. */
export function stepPool(previous: PoolState, event: PoolEvent, now: number, makeNodeId: NodeIdMaker): StepResult {
  const m = new Step(jsonCopy(previous), now, makeNodeId);
  const reply = m.apply(event);
  m.drive();
  return { state: m.state, commands: m.commands, wakeAt: m.wakeAt(), ...(reply ? { reply } : {}) };
}

/**
 * stepPool without the copy of the state: for a caller that owns `state` and keeps no earlier version of it
 * (the offline evaluator, which runs millions of steps). Same rules, same results.
 */
export function stepPoolInPlace(state: PoolState, event: PoolEvent, now: number, makeNodeId: NodeIdMaker): StepResult {
  const m = new Step(state, now, makeNodeId);
  const reply = m.apply(event);
  m.drive();
  return { state: m.state, commands: m.commands, wakeAt: m.wakeAt(), ...(reply ? { reply } : {}) };
}

/** One step's working copy: the rules mutate it; nothing outside sees it until the step returns. */
class Step {
  readonly commands: PoolCommand[] = [];

  constructor(
    readonly state: PoolState,
    readonly now: number,
    readonly makeNodeId: NodeIdMaker,
  ) {}

  private get poolId(): PoolKey {
    return this.state.poolId;
  }

  // ---- events -------------------------------------------------------------------------------------------

  apply(event: PoolEvent): PoolReply | undefined {
    const s = this.state;
    switch (event.type) {
      case 'started':
        // Calls in flight in the previous run died with it; each is asked again (all are idempotent by node id).
        for (const node of s.nodes) node.inFlight = undefined;
        s.healthInFlight = false;
        s.reconcileInFlight = false;
        s.ledgerInFlight = 0;
        s.reconcileDueAt = this.now;
        if (event.laneMoves) s.laneMoves = true;
        if (event.scaleIn) s.scaleIn = true;
        return undefined;
      case 'timerFired':
        return undefined;
      case 'jobArrived':
        this.jobArrived(event.arrival);
        return undefined;
      case 'jobFinished': {
        const placement = s.running.find((p) => p.jobId === event.jobId);
        if (placement && placement.attempt === event.attempt) {
          s.keepAlive ??= newKeepAliveLearning();
          recordRunTime(s.keepAlive, this.now - placement.placedAt);
          releasePlacement(s, event.jobId);
          this.markDone(event.jobId);
        }
        return undefined;
      }
      case 'jobWithdrawn':
        s.queue = s.queue.filter((q) => q.jobId !== event.jobId);
        releasePlacement(s, event.jobId);
        this.markDone(event.jobId);
        return undefined;
      case 'jobsWithdrawn': {
        // Many at once (abandoned parked requests): one pass over the queue, not one step per job.
        const leaving = new Set(event.jobIds);
        s.queue = s.queue.filter((q) => !leaving.has(q.jobId));
        for (const jobId of leaving) {
          releasePlacement(s, jobId);
          this.markDone(jobId);
        }
        return undefined;
      }
      case 'configChanged':
        s.config = event.config;
        if (s.keepAlive) s.keepAlive.windows = s.config.keepAlive?.mode === 'adaptive' ? chooseWindows(s.keepAlive, s.config) : undefined;
        return undefined;
      case 'drainRequested':
        s.draining = true;
        return undefined;
      case 'resumeRequested':
        s.draining = false;
        s.baselineSuspended = false;
        return undefined;
      case 'scaleToZeroRequested':
        s.warmNodes = 0;
        s.baselineSuspended = true;
        s.forceTeardown = true;
        return undefined;
      case 'warmRequested':
        if (s.stopping) s.stopping.then = 'warm';
        else {
          s.warmNodes = Math.min(event.nodes, s.config.maxNodes);
          s.baselineSuspended = false;
          // The idle timer counts from the start, so a started service with no jobs stops after idleTimeoutSeconds.
          s.idleSince = undefined;
          this.cancelTeardown();
        }
        return undefined;
      case 'stopRequested': {
        // The idle check and the stop are one step: no job can arrive between them (VRAM admission relies on it).
        if (event.onlyIfIdle && (s.queue.length > 0 || s.running.length > 0))
          return { stopRefused: `the pool has ${s.queue.length} queued and ${s.running.length} running job(s)` };
        const deadline = this.now + event.drainTimeoutSeconds * 1000;
        // Asking again keeps the earlier deadline: a second stop never gives running jobs more time.
        s.stopping = {
          deadline: Math.min(deadline, s.stopping?.deadline ?? deadline),
          then: event.then,
          since: s.stopping?.since ?? this.now,
        };
        s.warmNodes = 0;
        return undefined;
      }
      case 'preemptRequested':
        return this.preempt('operator');
      case 'leasesExchanged': {
        const { answer, active, newWork } = exchangeLeases(s, event.exchange, this.now, () => {
          s.leaseSequence = (s.leaseSequence ?? 0) + 1;
          return `L${s.leaseSequence}`;
        });
        // Requests on the fast path are work: the idle timer starts again; new ones stop a teardown in its grace.
        if (active) this.workArrived();
        if (newWork) {
          s.baselineSuspended = false;
          if (!s.stopping) this.cancelTeardown();
        }
        return answer;
      }
      case 'nodeProvisioned':
        this.nodeProvisioned(event);
        return undefined;
      case 'nodeReady':
        this.nodeReady(event);
        return undefined;
      case 'nodeTerminated':
        this.nodeTerminated(event.command.nodeId, event.command);
        return undefined;
      case 'nodeStopped':
        this.nodeStopped(event.command.nodeId);
        return undefined;
      case 'nodeStarted':
        this.nodeStarted(event.command.nodeId, event.url);
        return undefined;
      case 'nodeSlept':
        this.nodeSlept(event.command.nodeId);
        return undefined;
      case 'nodeWoke':
        this.nodeWoke(event.command.nodeId);
        return undefined;
      case 'healthChecked':
        this.healthChecked(event.statuses);
        return undefined;
      case 'reconciled':
        s.reconcileInFlight = false;
        s.reconcileDueAt = this.now + (s.config.reconcileIntervalSeconds ?? DEFAULT_RECONCILE_INTERVAL_SECONDS) * 1000;
        if (event.removed.length > 0) this.log('warn', 'orphaned nodes terminated', { nodeIds: event.removed });
        return undefined;
      case 'jobTold':
        return undefined;
      case 'ledgerRecorded':
        s.ledgerInFlight = Math.max(0, (s.ledgerInFlight ?? 0) - 1);
        return undefined;
      case 'commandFailed':
        this.commandFailed(event.command, event.error);
        return undefined;
    }
  }

  private jobArrived(arrival: Extract<PoolEvent, { type: 'jobArrived' }>['arrival']): void {
    const s = this.state;
    // A job re-announces itself when its first arrival may have been lost; once it is done, that is noise.
    if (s.recentlyDone?.includes(arrival.jobId)) return;
    const failedNode = arrival.failedNodeId ? s.nodes.find((n) => n.id === arrival.failedNodeId && n.state === 'ready') : undefined;
    if (failedNode) {
      // Stop placing there and look now rather than at the next periodic check.
      failedNode.suspect = true;
      s.healthDueAt = this.now;
    }
    const job = {
      jobId: arrival.jobId,
      attempt: arrival.attempt,
      enqueuedAt: this.now,
      ...(arrival.priority !== undefined ? { priority: arrival.priority } : {}),
      ...(arrival.notBefore !== undefined ? { notBefore: arrival.notBefore } : {}),
    };
    if (!enqueueJob(s, job, arrival.front)) return;
    this.workArrived();
    s.baselineSuspended = false;
    // A stop's teardown goes on: the new job waits and starts the pool again once the stop is done.
    if (!s.stopping) this.cancelTeardown();
  }

  /** Work came: an idle gap (if the pool was idle) ends here and is learned from; the idle timer stops. */
  private workArrived(): void {
    const s = this.state;
    // Only a gap that followed work is learned from (a new pool is idle before its first job too).
    if (s.idleSince !== undefined && s.keepAlive?.gapOpen) {
      recordIdleGap(s.keepAlive, this.now - s.idleSince, s.config);
    }
    if (s.keepAlive) s.keepAlive.gapOpen = false;
    s.idleSince = undefined;
  }

  private markDone(jobId: string): void {
    this.state.recentlyDone = [...(this.state.recentlyDone ?? []).slice(-(RECENTLY_DONE_LIMIT - 1)), jobId];
  }

  private nodeProvisioned(event: Extract<PoolEvent, { type: 'nodeProvisioned' }>): void {
    const node = this.node(event.command.nodeId);
    if (!node) {
      // The pool let go of this node while the provider was creating it: the provider must let go too.
      this.commands.push({ type: 'terminate', nodeId: event.command.nodeId, lane: event.command.lane, reason: 'not needed' });
      return;
    }
    // A late answer to a call this node no longer waits on (provision is idempotent: it is the same node).
    if (node.inFlight !== 'provision') return;
    node.inFlight = undefined;
    node.laneIndex = event.laneIndex;
    const lane = this.state.config.lanes[event.laneIndex] ?? event.command.lane;
    // What the node really costs: the provider's stated price where it gave one (every later row carries it).
    node.lane = event.price ? { ...lane, pricePerHour: event.price.perHour } : lane;
    node.url = event.url;
    node.lastError = undefined;
    node.acceptedAt = this.now;
    if (node.billedFrom === undefined) {
      node.billedFrom = this.now;
      // The always-on counterfactual is priced from this row, so analytics needs no outside figure.
      this.ledger({
        key: `${node.id}:provisioning`,
        eventType: 'node_provisioning',
        ...this.laneFields(node),
        details: {
          laneIndex: node.laneIndex,
          referencePricePerHour: onDemandReferencePrice(this.state.config),
          priceSource: event.price?.source ?? 'lane',
          ...(event.price ? { lanePricePerHour: lane.pricePerHour } : {}),
          ...(node.replaces ? { replaces: node.replaces, moveReason: node.moveReason } : {}),
        },
      });
    }
  }

  private nodeReady(event: Extract<PoolEvent, { type: 'nodeReady' }>): void {
    const s = this.state;
    const node = this.node(event.command.nodeId);
    if (node?.inFlight !== 'boot') return;
    node.inFlight = undefined;
    if (node.state !== 'provisioning') return;
    node.state = 'ready';
    node.url = event.url;
    node.readyAt = this.now;
    if (node.stops) {
      // Back from stopped: a wake, not a boot (its node_started row was written when the start call returned).
      this.log('info', 'node woke from stopped', { nodeId: node.id, wakeMs: this.now - node.requestedAt });
      s.keepAlive ??= newKeepAliveLearning();
      recordWake(s.keepAlive, this.now - node.requestedAt, s.config);
      return;
    }
    s.keepAlive ??= newKeepAliveLearning();
    recordBoot(s.keepAlive, node.readyAt - node.requestedAt, s.config);
    if (node.replaces) this.completeMove(node);
    this.ledger({
      key: `${node.id}:ready`,
      eventType: 'node_ready',
      ...this.laneFields(node),
      details: { laneIndex: node.laneIndex, bootSeconds: (node.readyAt - (node.billedFrom ?? node.readyAt)) / 1000 },
    });
  }

  /** The provider no longer holds the node: billing ends now, with exactly one node_terminated row. */
  private nodeTerminated(nodeId: string, command: Extract<PoolCommand, { type: 'terminate' }>): void {
    const s = this.state;
    const node = this.node(nodeId);
    if (!node) return;
    s.nodes = s.nodes.filter((n) => n.id !== nodeId);
    if (node.billedFrom !== undefined) {
      // Time stopped bills the disk, not the GPU: billedSeconds is the GPU's part, stoppedSeconds the rest.
      const stoppedMs = stoppedMsUpTo(node, this.now);
      const sleptMs = sleptMsUpTo(node, this.now);
      this.ledger({
        key: `${node.id}:terminated`,
        eventType: 'node_terminated',
        ...this.laneFields(node),
        details: {
          laneIndex: node.laneIndex,
          reason: node.terminateReason ?? command.reason,
          billedSeconds: (this.now - node.billedFrom - stoppedMs - sleptMs) / 1000,
          ...(node.stops
            ? {
                stoppedSeconds: stoppedMs / 1000,
                storageUsd: (stoppedMs / 3_600_000) * (node.lane?.stoppedPricePerHour ?? 0),
              }
            : {}),
          ...(node.sleeps
            ? { sleptSeconds: sleptMs / 1000, sleepingUsd: (sleptMs / 3_600_000) * (node.lane?.sleepingPricePerHour ?? 0) }
            : {}),
          ...(node.terminateFailures ? { terminateFailures: node.terminateFailures } : {}),
        },
      });
    }
    this.settleTeardown();
  }

  /** A teardown is over once none of its nodes is still on its way down (terminated, or stopped). */
  private settleTeardown(): void {
    const s = this.state;
    const going: NodeState[] = ['terminating', 'terminate_failed', 'stopping'];
    const goingDown = (n: NodeRecord) => going.includes(n.state) || n.inFlight === 'sleep';
    if (s.teardown && !s.nodes.some((n) => s.teardown!.nodeIds.includes(n.id) && goingDown(n))) s.teardown = undefined;
  }

  /** The provider stopped the node (disk kept): GPU billing ends, its disk bills at the lane's stopped price. */
  private nodeStopped(nodeId: string): void {
    const node = this.node(nodeId);
    if (node?.inFlight !== 'stop') return;
    node.state = 'stopped';
    node.stoppedAt = this.now;
    node.stops = (node.stops ?? 0) + 1;
    node.url = undefined;
    this.wentDown(node, 'node_stopped', `${node.id}:stopped:${node.stops}`, { stoppedPricePerHour: node.lane?.stoppedPricePerHour ?? 0 });
  }

  /** The model server is asleep (VRAM freed): the node bills at the lane's sleeping price until it wakes or goes. */
  private nodeSlept(nodeId: string): void {
    const node = this.node(nodeId);
    if (node?.inFlight !== 'sleep') return;
    node.sleptAt = this.now;
    node.sleeps = (node.sleeps ?? 0) + 1;
    this.wentDown(node, 'node_slept', `${node.id}:slept:${node.sleeps}`, { sleepingPricePerHour: node.lane?.sleepingPricePerHour ?? 0 });
  }

  /** A node reached a rung below running (stopped, or asleep; its url kept where a wake needs it): the teardown's part is done. */
  private wentDown(node: NodeRecord, eventType: 'node_stopped' | 'node_slept', key: string, price: Record<string, number>): void {
    node.inFlight = undefined;
    node.stopOnTeardown = undefined;
    node.sleepOnTeardown = undefined;
    node.readyAt = undefined;
    node.suspect = false;
    node.healthFailures = 0;
    node.terminateAfter = undefined;
    node.terminateCalledAt = undefined;
    const reason = node.terminateReason;
    node.terminateReason = undefined;
    this.ledger({
      key,
      eventType,
      ...this.laneFields(node),
      details: {
        laneIndex: node.laneIndex,
        ...price,
        reason: reason ?? 'idle teardown',
        maxStoppedSeconds: this.state.config.maxStoppedSeconds ?? DEFAULT_MAX_STOPPED_SECONDS,
      },
    });
    this.settleTeardown();
  }

  /** The model server answered its wake: the node serves again (its GPU price resumed when the wake was asked). */
  private nodeWoke(nodeId: string): void {
    const s = this.state;
    const node = this.node(nodeId);
    if (node?.inFlight !== 'wake') return;
    node.inFlight = undefined;
    node.wakingFromSleep = undefined;
    if (node.state !== 'provisioning') return;
    node.state = 'ready';
    node.readyAt = this.now;
    this.log('info', 'node woke from sleep', { nodeId: node.id, wakeMs: this.now - node.requestedAt });
    s.keepAlive ??= newKeepAliveLearning();
    recordSleepWake(s.keepAlive, this.now - node.requestedAt, s.config);
  }

  /** Asks a sleeping model server to wake: from now the node bills at the GPU's price again (a wake runs the GPU). */
  private wakeFromSleep(node: NodeRecord): void {
    const sleptMs = node.sleptAt !== undefined ? this.now - node.sleptAt : 0;
    node.sleptMs = (node.sleptMs ?? 0) + sleptMs;
    node.sleptAt = undefined;
    node.inFlight = 'wake';
    node.calledAt = this.now;
    node.acceptedAt = this.now;
    this.commands.push({ type: 'wake', nodeId: node.id, lane: node.lane!, url: node.url! });
    this.ledger({
      key: `${node.id}:woke:${node.sleeps ?? 0}`,
      eventType: 'node_woke',
      ...this.laneFields(node),
      details: { laneIndex: node.laneIndex, sleptSeconds: sleptMs / 1000 },
    });
  }

  /** The provider started a stopped node again: GPU billing resumes; it boots from its disk (waitReady next). */
  private nodeStarted(nodeId: string, url: string): void {
    const node = this.node(nodeId);
    if (node?.inFlight !== 'start') return;
    node.inFlight = undefined;
    node.waking = undefined;
    node.url = url;
    node.acceptedAt = this.now;
    const stoppedMs = node.stoppedAt !== undefined ? this.now - node.stoppedAt : 0;
    node.stoppedMs = (node.stoppedMs ?? 0) + stoppedMs;
    node.stoppedAt = undefined;
    this.ledger({
      key: `${node.id}:started:${node.stops ?? 0}`,
      eventType: 'node_started',
      ...this.laneFields(node),
      details: { laneIndex: node.laneIndex, stoppedSeconds: stoppedMs / 1000 },
    });
  }

  private healthChecked(statuses: Array<{ nodeId: string; exists: boolean; healthy: boolean; reason?: string }>): void {
    const s = this.state;
    s.healthInFlight = false;
    s.healthDueAt = this.now + s.config.healthCheckIntervalSeconds * 1000;
    for (const status of statuses) {
      const node = this.node(status.nodeId);
      if (node?.state !== 'ready') continue;
      node.healthFailures = status.healthy ? 0 : (node.healthFailures ?? 0) + 1;
      if (status.healthy) node.suspect = false;
      if (!status.exists || node.healthFailures >= HEALTH_FAILURES_TO_LOSE) this.nodeLost(node, status.reason ?? 'failed health checks');
    }
  }

  /** A ready node is gone (spot interruption, crash): its jobs go back to the front, the node is released. */
  private nodeLost(node: NodeRecord, reason: string): void {
    this.log('warn', 'node lost; requeueing its jobs', { nodeId: node.id, reason });
    this.ledger({
      key: `${node.id}:lost`,
      eventType: 'node_lost',
      ...this.laneFields(node),
      details: { laneIndex: node.laneIndex, reason },
    });
    for (const job of requeueJobsOfNode(this.state, node.id, this.now)) {
      this.tell(job.jobId, { kind: 'revoked', attempt: job.attempt, reason: `node ${node.id} lost: ${reason}` });
    }
    this.beginTermination(node, `lost: ${reason}`);
  }

  private commandFailed(command: PoolCommand, error: string): void {
    const s = this.state;
    switch (command.type) {
      case 'provision': {
        const node = this.node(command.nodeId);
        s.laneCooldownUntil[String(command.laneIndex)] = this.now + s.config.laneCooldownSeconds * 1000;
        this.log('warn', 'lane unavailable; trying the next', { nodeId: command.nodeId, lane: command.laneIndex, reason: error });
        if (node?.inFlight !== 'provision') return;
        if (node.replaces) {
          // A move tries its target lane only: still short there, the node it would replace stays.
          s.nodes = s.nodes.filter((n) => n.id !== node.id);
          this.log('info', 'lane move abandoned: the lane is still short', { nodeId: node.replaces, lane: command.laneIndex });
          return;
        }
        node.inFlight = undefined;
        node.lastError = error;
        // The next drive picks the next lane that is not cooling down.
        node.laneIndex = -1;
        node.lane = undefined;
        return;
      }
      case 'waitReady': {
        const node = this.failedCall(command.nodeId, 'boot', error);
        if (!node) return;
        this.log('warn', 'node failed to boot; replacing it', { nodeId: node.id, error });
        this.beginTermination(node, 'boot failed');
        return;
      }
      case 'terminate': {
        const node = this.failedCall(command.nodeId, 'terminate', error);
        if (!node) return;
        node.state = 'terminate_failed';
        node.terminateFailures = (node.terminateFailures ?? 0) + 1;
        if (node.terminateFailures === 1) s.terminateFailuresTotal = (s.terminateFailuresTotal ?? 0) + 1;
        node.nextAttemptAt = this.now + terminateRetryMs(node.terminateFailures);
        this.log('error', 'terminate failed; the node bills until a retry succeeds', {
          nodeId: node.id,
          failures: node.terminateFailures,
          retryInMs: node.nextAttemptAt - this.now,
          error,
        });
        return;
      }
      case 'stop':
      case 'sleep': {
        // A provider that cannot stop, or a model server that cannot sleep (no sleep mode, or busy): the node goes
        // the ordinary way, terminated.
        const node = this.failedCall(command.nodeId, command.type, error);
        if (!node) return;
        node.stopOnTeardown = undefined;
        node.sleepOnTeardown = undefined;
        node.state = 'terminating';
        this.log('warn', `${command.type} failed; terminating the node instead`, { nodeId: node.id, error });
        return;
      }
      case 'start':
      case 'wake': {
        // Wake failed (the host's GPU taken, capacity gone, the node dead while asleep): never left billing its disk
        // or its GPU; new work gets a fresh node.
        const node = this.failedCall(command.nodeId, command.type, error);
        if (!node) return;
        const from = command.type === 'start' ? 'stopped' : 'sleep';
        this.log('warn', `wake from ${from} failed; terminating it and starting a fresh node`, { nodeId: node.id, error });
        this.beginTermination(node, `wake failed: ${error}`);
        return;
      }
      case 'checkHealth':
        s.healthInFlight = false;
        s.healthDueAt = this.now + s.config.healthCheckIntervalSeconds * 1000;
        this.log('warn', 'health check failed to run', { error });
        return;
      case 'reconcile':
        s.reconcileInFlight = false;
        s.reconcileDueAt = this.now + RECONCILE_RETRY_MS;
        this.log('warn', 'reconciliation failed; retrying later', { error });
        return;
      case 'tellJob':
        // The job is gone (finished or terminated): its slot must not stay taken.
        this.log('warn', 'job unreachable; releasing its slot', { jobId: command.jobId, error });
        s.queue = s.queue.filter((q) => q.jobId !== command.jobId);
        releasePlacement(s, command.jobId);
        return;
      case 'recordLedger':
        s.ledgerInFlight = Math.max(0, (s.ledgerInFlight ?? 0) - 1);
        this.log('error', 'ledger write failed', { key: command.row.key, error });
        return;
      case 'log':
        return;
    }
  }

  /** The node whose `kind` call just failed, its call cleared and the error kept; undefined for a late answer. */
  private failedCall(nodeId: string, kind: NodeCommand, error: string): NodeRecord | undefined {
    const node = this.node(nodeId);
    if (node?.inFlight !== kind) return undefined;
    node.inFlight = undefined;
    node.lastError = error;
    return node;
  }

  // ---- the drive: what the pool does next, given where it is ---------------------------------------------

  drive(): void {
    const s = this.state;
    if (s.stopping) this.advanceStop();
    // Not `else`: a stop that just finished lets the work that waited for it start in this same step.
    if (!s.stopping) {
      this.prewarm();
      if (s.scaleIn) this.scaleIn();
      this.place();
      if (!s.draining || !isIdle(s)) this.addNodes(nodesToAdd(s, this.drainEstimate()));
      if (s.config.preemption !== 'manual' && s.queue.length > 0) this.preempt('pool');
      if (s.laneMoves) this.moveLanes();
      for (const node of retiredNodes(s)) this.beginTermination(node, node.terminateReason ?? 'replaced on another lane');
      this.checkIdle();
    }
    const revoked = settleLeases(s, this.now);
    if (revoked.length > 0) this.log('info', 'slot leases revoked', { leaseIds: revoked });
    this.driveNodes();
    this.driveHealth();
    this.driveReconcile();
  }

  private place(): void {
    for (const { job, node, slot } of placeQueuedJobs(this.state, this.now)) {
      const coldStartMs = Math.max(0, (node.readyAt ?? 0) - job.enqueuedAt);
      const coldStart = coldStartPhases(node, job.enqueuedAt);
      this.tell(job.jobId, {
        kind: 'placed',
        grant: { attempt: job.attempt, nodeId: node.id, nodeUrl: node.url!, slot, coldStartMs, ...(coldStart ? { coldStart } : {}) },
      });
    }
  }

  private addNodes(count: number): void {
    const s = this.state;
    // Sleeping nodes first (a wake of seconds), then stopped ones: either is quicker than a cold boot (the warm-state
    // ladder). A node whose sleep call is still out counts as one: it is woken as soon as the call answers.
    count -= Math.min(count, s.nodes.filter((n) => n.state === 'sleeping' && n.inFlight === 'sleep').length);
    const sleeping = s.nodes.filter((n) => n.state === 'sleeping' && !n.inFlight);
    const stopped = s.nodes
      .filter((n) => n.state === 'stopped' && !n.inFlight && (s.laneCooldownUntil[String(n.laneIndex)] ?? 0) <= this.now)
      .sort((a, b) => a.laneIndex - b.laneIndex || (b.stoppedAt ?? 0) - (a.stoppedAt ?? 0));
    for (const node of [...sleeping, ...stopped].slice(0, count)) {
      node.wokeFrom = node.state === 'sleeping' ? 'sleeping' : 'stopped';
      if (node.wokeFrom === 'sleeping') node.wakingFromSleep = true;
      else node.waking = true;
      node.state = 'provisioning';
      node.requestedAt = this.now;
      node.lastError = undefined;
      count -= 1;
    }
    for (let i = 0; i < count; i++) {
      s.nodeSequence += 1;
      s.nodes.push({
        id: this.makeNodeId(this.poolId, s.nodeSequence, s.incarnation),
        laneIndex: -1,
        state: 'provisioning',
        requestedAt: this.now,
        slots: Array.from({ length: s.config.slotsPerNode }, () => null),
        provisioningAttempts: 0,
      });
    }
  }

  /**
   * Scale-in while the pool is busy: nodes above what the last keep-alive window needed retire (no new work,
   * they go when their requests are done), fewest busy slots first. Demand that comes back first keeps them.
   * The whole-pool idle case is the idle timer's (checkIdle).
   */
  private scaleIn(): void {
    const s = this.state;
    const slots = s.config.slotsPerNode;
    const needNow = Math.min(s.config.maxNodes, Math.ceil((s.running.length + s.queue.length) / slots));
    s.demandSeenAt ??= [];
    const seen = s.demandSeenAt;
    for (let k = 0; k < needNow; k++) seen[k] = this.now;
    if (seen.length > s.config.maxNodes) seen.length = s.config.maxNodes;
    if (isIdle(s) || s.draining) return;
    const windowMs = scaleInWindowMs(s.config, s.keepAlive);
    let needed = 0;
    while (needed < seen.length && (seen[needed] ?? -Infinity) >= this.now - windowMs) needed += 1;
    const target = Math.max(needed, needNow, baseline(s));
    const serving = activeNodes(s).filter((n) => !n.retiring);
    const scaledIn = s.nodes.filter((n) => n.scaledIn && n.retiring && n.state === 'ready');
    if (serving.length < target) {
      // Demand came back before they drained: they serve again.
      for (const node of scaledIn.slice(0, target - serving.length)) {
        node.retiring = false;
        node.scaledIn = undefined;
        node.terminateReason = undefined;
      }
      return;
    }
    const excess = serving.length - target;
    if (excess <= 0) return;
    const candidates = serving
      .filter((n) => n.state === 'ready' && !n.replaces)
      .sort(
        (a, b) => busySlots(a) - busySlots(b) || (b.lane?.pricePerHour ?? 0) - (a.lane?.pricePerHour ?? 0) || b.requestedAt - a.requestedAt,
      )
      .slice(0, excess);
    for (const node of candidates) {
      node.retiring = true;
      node.scaledIn = true;
      node.terminateReason = `scaled in: ${target} node(s) covered the last ${Math.round(windowMs / 1000)} s`;
    }
    if (candidates.length > 0) this.log('info', 'scaling in', { nodeIds: candidates.map((n) => n.id), keep: target });
  }

  /**
   * Adaptive pools only: how many queued jobs the nodes there (or booting) will finish within DRAIN_HORIZON_MS
   * (and before a node asked for now could be ready), from the learned boot and run times. Burst nodes are sized
   * past that, so a queue the fleet drains in a moment does not start nodes that would come after it is gone.
   */
  private drainEstimate(): ((node: NodeRecord) => number) | undefined {
    const s = this.state;
    if (s.config.keepAlive?.mode !== 'adaptive' || !s.keepAlive) return undefined;
    const bootMs = bootEstimateMs(s.keepAlive);
    const runMs = s.keepAlive.runMsAverage;
    if (bootMs === undefined || runMs === undefined || runMs <= 0) return undefined;
    const now = this.now;
    return (node) => {
      // A booting node serves from when it should be ready until a new one would be.
      const horizon = Math.min(bootMs, DRAIN_HORIZON_MS);
      const servingMs = node.state === 'ready' ? horizon : Math.min(horizon, Math.max(0, now - node.requestedAt));
      return Math.floor((node.slots.length * servingMs) / runMs);
    };
  }

  /** When the next node above the current need has gone a whole keep-alive window unneeded (scale-in looks again then). */
  private nextScaleInAt(): number | undefined {
    const s = this.state;
    if (!s.scaleIn || !s.demandSeenAt) return undefined;
    const serving = activeNodes(s).filter((n) => !n.retiring).length;
    const windowMs = scaleInWindowMs(s.config, s.keepAlive);
    const times = s.demandSeenAt
      .slice(0, serving)
      .map((t) => (t ?? -Infinity) + windowMs)
      .filter((t) => t > this.now);
    return times.length > 0 ? Math.min(...times) : undefined;
  }

  /** The durable idle timer: idle nodes above the baseline go once the pool has been idle for idleTimeout. */
  private checkIdle(): void {
    const s = this.state;
    if (!isIdle(s)) {
      s.idleSince = undefined;
      return;
    }
    if (s.idleSince === undefined) {
      s.idleSince = this.now;
      s.keepAlive ??= newKeepAliveLearning();
      s.keepAlive.nodesWhenIdle = activeNodes(s).length;
      s.keepAlive.gapOpen = s.placedTotal > 0;
    }
    const deadline = this.idleDeadline()!;
    // A start keeps its nodes warm until the idle timer first fires; then they go like any idle node.
    if (s.warmNodes && this.now >= deadline) s.warmNodes = 0;
    const candidates = (s.draining ? activeNodes(s) : teardownCandidates(s)).filter((n) => n.state === 'ready');
    if (candidates.length > 0 && !s.teardown && (s.forceTeardown || s.draining || this.now >= deadline)) {
      const forced = s.forceTeardown || s.draining;
      // The idle timer takes each node down to the rung the windows chose (or the cheapest its lane offers); a
      // scale-to-zero or a drain releases everything.
      const down = forced ? 'terminated' : windowsInForce(s.config, s.keepAlive).down;
      this.startTeardown(candidates, forced ? 0 : s.config.teardownGraceSeconds, down);
    }
    if (s.forceTeardown || s.draining) this.releaseStopped(s.draining ? 'pool draining' : 'scale to zero');
    s.forceTeardown = false;
  }

  /** When the idle timer fires: the fixed idleTimeoutSeconds, or the adaptive windows (a pre-warming pool leaves at once). */
  private idleDeadline(): number | undefined {
    const s = this.state;
    if (s.idleSince === undefined) return undefined;
    const windows = windowsInForce(s.config, s.keepAlive);
    if (windows.mode === 'prewarm' && s.keepAlive?.prewarmedFor !== s.idleSince) return s.idleSince;
    return s.idleSince + windows.keepAliveMs;
  }

  /** When a pre-warming pool boots its nodes again in this idle period (so they are ready when work is due). */
  private prewarmAt(): number | undefined {
    const s = this.state;
    if (s.idleSince === undefined || s.draining || s.baselineSuspended || s.keepAlive?.prewarmedFor === s.idleSince) return undefined;
    const windows = windowsInForce(s.config, s.keepAlive);
    if (windows.mode !== 'prewarm' || windows.prewarmMs === undefined) return undefined;
    // Back by the due time: from stopped a wake, else a boot.
    const upMs =
      windows.down === 'stopped'
        ? wakeEstimateMs(s.keepAlive!)
        : windows.down === 'sleeping'
          ? sleepWakeEstimateMs(s.keepAlive!)
          : bootEstimateMs(s.keepAlive!);
    return s.idleSince + windows.prewarmMs - (upMs ?? 0);
  }

  /** The pre-warm: as many nodes as the pool had when it went idle come back, kept until the keep-alive window ends. */
  private prewarm(): void {
    const s = this.state;
    const at = this.prewarmAt();
    if (at === undefined || this.now < at || !isIdle(s)) return;
    const learning = s.keepAlive!;
    learning.prewarmedFor = s.idleSince;
    const nodes = Math.min(Math.max(1, learning.nodesWhenIdle ?? 1), s.config.maxNodes);
    s.warmNodes = Math.max(s.warmNodes ?? 0, nodes);
    this.log('info', 'pre-warming before the expected next arrival', {
      nodes,
      idleForMs: this.now - s.idleSince!,
      readyBy: s.idleSince! + (learning.windows?.prewarmMs ?? 0),
    });
  }

  /** Marks nodes for teardown; their terminate calls go out together when the grace period ends. */
  private startTeardown(nodes: NodeRecord[], graceSeconds: number, down: DownRung | undefined): void {
    const s = this.state;
    s.teardownSequence = (s.teardownSequence ?? 0) + 1;
    const key = `teardown:${s.teardownSequence}`;
    const terminateAt = this.now + graceSeconds * 1000;
    s.teardown = { key, nodeIds: nodes.map((n) => n.id), terminateAt };
    for (const node of nodes) {
      this.beginTermination(node, 'idle teardown', terminateAt);
      const rung = node.lane ? teardownRung(node.lane, down) : 'terminated';
      if (rung === 'stopped') node.stopOnTeardown = true;
      if (rung === 'sleeping') node.sleepOnTeardown = true;
    }
    this.ledger({ key: `${key}:started`, eventType: 'teardown_started', details: { nodes: s.teardown.nodeIds, graceSeconds } });
  }

  /** New work during a teardown keeps every node whose terminate call has not gone out. */
  private cancelTeardown(): void {
    const s = this.state;
    const teardown = s.teardown;
    if (!teardown) return;
    const kept = s.nodes.filter(
      (n) => teardown.nodeIds.includes(n.id) && n.state === 'terminating' && n.terminateCalledAt === undefined && !n.inFlight,
    );
    for (const node of kept) {
      node.state = 'ready';
      node.terminateAfter = undefined;
      node.terminateReason = undefined;
      node.stopOnTeardown = undefined;
      node.sleepOnTeardown = undefined;
    }
    s.teardown = undefined;
    // The kept nodes were kept for this work: scale-in gives them a whole window again before it looks at them.
    if (s.scaleIn && kept.length > 0) {
      s.demandSeenAt ??= [];
      const serving = activeNodes(s).filter((n) => !n.retiring).length;
      for (let k = 0; k < Math.min(serving, s.config.maxNodes); k++) s.demandSeenAt[k] = this.now;
    }
    if (kept.length > 0) {
      this.ledger({ key: `${teardown.key}:cancelled`, eventType: 'teardown_cancelled', details: { kept: kept.map((n) => n.id) } });
      this.log('info', 'teardown cancelled by new work', { kept: kept.map((n) => n.id) });
    }
  }

  /**
   * Make-before-break: when the need is there, one node starts on the lane it belongs on (see planLaneMove);
   * the node it replaces retires once the new one is ready.
   */
  private moveLanes(): void {
    const s = this.state;
    const move = planLaneMove(s, this.now);
    if (!move) return;
    s.nodeSequence += 1;
    const id = this.makeNodeId(this.poolId, s.nodeSequence, s.incarnation);
    s.nodes.push({
      id,
      laneIndex: move.toLane,
      lane: s.config.lanes[move.toLane],
      state: 'provisioning',
      requestedAt: this.now,
      slots: Array.from({ length: s.config.slotsPerNode }, () => null),
      provisioningAttempts: 1,
      replaces: move.nodeId,
      moveReason: move.reason,
    });
    this.log('info', 'starting a node on a better lane to replace one', {
      nodeId: id,
      replaces: move.nodeId,
      lane: move.toLane,
      reason: move.reason,
    });
  }

  /** The replacement is ready: the replaced node takes no new work and goes when its jobs are done. */
  private completeMove(node: NodeRecord): void {
    const old = this.node(node.replaces!);
    if (old?.state === 'ready') {
      old.retiring = true;
      old.terminateReason = `replaced by ${node.id} on lane ${node.laneIndex} (${node.moveReason ?? 'preferred-lane'})`;
    }
    node.replaces = undefined;
    node.moveReason = undefined;
  }

  /** Stopped and sleeping nodes are terminated (a scale-to-zero, a drain or a stop wants nothing billed, disks included). */
  private releaseStopped(reason: string): void {
    for (const node of this.state.nodes) {
      if ((node.state === 'stopped' || node.state === 'sleeping') && !node.inFlight) this.beginTermination(node, reason);
    }
  }

  private beginTermination(node: NodeRecord, reason: string, terminateAfter?: number): void {
    // A replacement that will not be ready releases the move, so another can be tried.
    node.replaces = undefined;
    node.moveReason = undefined;
    node.stopOnTeardown = undefined;
    node.sleepOnTeardown = undefined;
    node.waking = undefined;
    node.wakingFromSleep = undefined;
    node.state = 'terminating';
    node.terminateReason = reason;
    node.terminateAfter = terminateAfter;
    node.nextAttemptAt = undefined;
  }

  /**
   * One step of an operator stop: wait for running jobs until the deadline, then preempt the rest (their
   * progress is kept and they run again later), then release every node; done, the pool takes work again.
   */
  private advanceStop(): void {
    const s = this.state;
    const stop = s.stopping!;
    const unfinished = s.running.filter((p) => !p.preempting);
    if (unfinished.length > 0 && this.now < stop.deadline) return;
    for (const victim of unfinished) this.preemptOne(victim, 'the pool is stopping (drain timeout passed)', 'stop', 'stop');
    this.releaseStopped('pool stopped');
    const ready = s.nodes.filter((n) => n.state === 'ready');
    if (s.running.length === 0 && ready.length > 0 && !s.teardown) {
      this.startTeardown(ready, 0, 'terminated');
      return;
    }
    if (s.running.length > 0 || s.nodes.length > 0 || s.teardown) return;
    s.stopping = undefined;
    s.warmNodes = stop.then === 'warm' ? 1 : 0;
    s.idleSince = undefined;
    this.log('info', 'pool stopped', { then: stop.then, queued: s.queue.length });
  }

  /** Preemption round: pairs waiting high-priority jobs with running low-priority ones (see planPreemptions). */
  private preempt(by: 'pool' | 'operator'): PreemptionCheck {
    const plan = planPreemptions(this.state, this.now);
    for (const { victim, preemptor } of plan.choices) {
      const reason = `preempted for job ${preemptor.jobId} (priority ${basePriority(preemptor)}) by the ${by}`;
      this.preemptOne(victim, reason, preemptor.jobId, by, basePriority(preemptor));
    }
    return describePlan(this.state, plan);
  }

  /** Asks one running job to stop; its slot stays taken until the job confirms by queueing its next attempt. */
  private preemptOne(victim: Placement, reason: string, by: string, trigger: string, byPriority?: number): void {
    victim.preempting = true;
    this.state.preemptedTotal = (this.state.preemptedTotal ?? 0) + 1;
    this.log('info', 'preempting job', { jobId: victim.jobId, nodeId: victim.nodeId, for: by });
    this.ledger({
      key: `${victim.jobId}:preempted:${victim.attempt}`,
      eventType: 'job_preempted',
      jobId: victim.jobId,
      nodeId: victim.nodeId,
      details: {
        attempt: victim.attempt,
        priority: basePriority(victim),
        by,
        ...(byPriority !== undefined ? { byPriority } : {}),
        trigger,
      },
    });
    this.tell(victim.jobId, { kind: 'preempt', attempt: victim.attempt, reason, byJobId: by });
  }

  /** Issues the one provider call each node needs next, if any. */
  private driveNodes(): void {
    const s = this.state;
    for (const node of [...s.nodes]) {
      if (node.inFlight) continue;
      if (node.state === 'provisioning') this.driveProvisioning(node);
      else if (node.state === 'terminating' || node.state === 'terminate_failed') this.driveTermination(node);
      else if (node.state === 'stopped' && this.now >= this.stoppedUntil(node)) {
        this.beginTermination(node, 'stopped too long');
        this.driveTermination(node);
      } else if (node.state === 'sleeping' && this.now >= this.asleepUntil(node)) {
        this.beginTermination(node, 'asleep too long');
        this.driveTermination(node);
      }
    }
  }

  /** When a stopped node has been stopped for maxStoppedSeconds (then it is terminated). */
  private stoppedUntil(node: NodeRecord): number {
    return (node.stoppedAt ?? this.now) + (this.state.config.maxStoppedSeconds ?? DEFAULT_MAX_STOPPED_SECONDS) * 1000;
  }

  /** When a sleeping node has slept for maxStoppedSeconds (then it is terminated: it still bills its sleeping price). */
  private asleepUntil(node: NodeRecord): number {
    return (node.sleptAt ?? this.now) + (this.state.config.maxStoppedSeconds ?? DEFAULT_MAX_STOPPED_SECONDS) * 1000;
  }

  private driveProvisioning(node: NodeRecord): void {
    const s = this.state;
    if (node.wakingFromSleep) {
      this.wakeFromSleep(node);
      return;
    }
    if (node.waking) {
      // A stopped node's wake: the start call; its readiness wait follows as for a new node.
      node.inFlight = 'start';
      node.calledAt = this.now;
      this.commands.push({ type: 'start', nodeId: node.id, lane: node.lane! });
      return;
    }
    if (node.laneIndex < 0) {
      // No provider holds anything for a node without a lane: if the work went away, so does the node.
      if (isIdle(s) && activeNodes(s).length - 1 >= baseline(s)) {
        s.nodes = s.nodes.filter((n) => n.id !== node.id);
        return;
      }
      if (node.nextAttemptAt !== undefined && this.now < node.nextAttemptAt) return;
      // Reconciliation lists the provider's nodes: a node created while it runs would look like an orphan.
      if (s.reconcileInFlight) return;
      const lanes = s.laneMoves ? lanesForNewNode(s, this.now, node.id) : availableLanes(s.config, s.laneCooldownUntil, this.now);
      if (lanes.length === 0) {
        node.laneRounds = (node.laneRounds ?? 0) + 1;
        const untilLane = nextLaneAvailableAt(s.laneCooldownUntil) - this.now;
        node.nextAttemptAt = this.now + Math.max(1000, Math.min(allLanesShortBackoffMs(node.laneRounds), untilLane));
        return;
      }
      node.nextAttemptAt = undefined;
      node.laneIndex = lanes[0];
      node.lane = s.config.lanes[lanes[0]];
      node.provisioningAttempts += 1;
    }
    if (node.billedFrom === undefined) {
      if (s.reconcileInFlight) return;
      node.inFlight = 'provision';
      node.calledAt = this.now;
      this.commands.push({ type: 'provision', nodeId: node.id, lane: node.lane!, laneIndex: node.laneIndex, model: s.config.model });
    } else {
      node.inFlight = 'boot';
      this.commands.push({ type: 'waitReady', nodeId: node.id, lane: node.lane!, ...(node.stops ? { rung: 'stopped' as const } : {}) });
    }
  }

  private driveTermination(node: NodeRecord): void {
    if (node.terminateAfter !== undefined && this.now < node.terminateAfter) return;
    // No request may reach a node after its terminate call: its leases are revoked, and released or expired first.
    if (nodeHasLeases(node)) return;
    if (node.nextAttemptAt !== undefined && this.now < node.nextAttemptAt) return;
    if (!node.lane) {
      // Never reached a provider: nothing to terminate, nothing billed.
      this.state.nodes = this.state.nodes.filter((n) => n.id !== node.id);
      return;
    }
    node.terminateCalledAt ??= this.now;
    if (node.sleepOnTeardown && node.state === 'terminating' && node.url) {
      node.inFlight = 'sleep';
      node.state = 'sleeping';
      this.commands.push({ type: 'sleep', nodeId: node.id, lane: node.lane, url: node.url });
      return;
    }
    if (node.stopOnTeardown && node.state === 'terminating') {
      node.inFlight = 'stop';
      node.state = 'stopping';
      this.commands.push({ type: 'stop', nodeId: node.id, lane: node.lane });
      return;
    }
    node.inFlight = 'terminate';
    this.commands.push({ type: 'terminate', nodeId: node.id, lane: node.lane, reason: node.terminateReason ?? 'teardown' });
  }

  /** Ready nodes are checked every healthCheckIntervalSeconds with one short activity (sooner when a job reports one). */
  private driveHealth(): void {
    const s = this.state;
    const ready = s.nodes.filter((n) => n.state === 'ready' && n.lane);
    if (ready.length === 0) {
      s.healthDueAt = undefined;
      return;
    }
    s.healthDueAt ??= this.now + s.config.healthCheckIntervalSeconds * 1000;
    if (s.healthInFlight || this.now < s.healthDueAt) return;
    s.healthInFlight = true;
    this.commands.push({ type: 'checkHealth', nodes: ready.map((n) => ({ nodeId: n.id, lane: n.lane! })) });
  }

  /**
   * Orphan reconciliation at every run's start and every reconcileIntervalSeconds: never while a provision or a
   * ledger write is in flight, so it sees every node the pool has asked for and every row it wrote.
   */
  private driveReconcile(): void {
    const s = this.state;
    if (s.reconcileInFlight || (s.reconcileDueAt ?? 0) > this.now) return;
    if (s.nodes.some((n) => n.inFlight === 'provision') || (s.ledgerInFlight ?? 0) > 0) return;
    s.reconcileInFlight = true;
    this.commands.push({
      type: 'reconcile',
      providers: [...new Set(s.config.lanes.map((l) => l.provider))],
      knownNodeIds: s.nodes.map((n) => n.id),
    });
  }

  /** The earliest time the machine needs to look again without any event. */
  wakeAt(): number | undefined {
    const s = this.state;
    const times: number[] = [];
    if (s.stopping) {
      if (s.running.some((p) => !p.preempting)) times.push(s.stopping.deadline);
    } else if (isIdle(s)) {
      const deadline = this.idleDeadline();
      const hasCandidates = teardownCandidates(s).some((n) => n.state === 'ready');
      if (deadline !== undefined && !s.teardown && (hasCandidates || s.warmNodes)) times.push(deadline);
      const prewarmAt = this.prewarmAt();
      if (prewarmAt !== undefined) times.push(Math.max(prewarmAt, this.now + 1));
    } else {
      const retryAt = nextRetryAt(s, this.now);
      if (retryAt !== undefined) times.push(retryAt);
      const scaleInAt = this.nextScaleInAt();
      if (scaleInAt !== undefined) times.push(scaleInAt);
    }
    for (const node of s.nodes) {
      if (node.inFlight) continue;
      if (node.terminateAfter !== undefined && node.terminateAfter > this.now) times.push(node.terminateAfter);
      if (node.nextAttemptAt !== undefined) times.push(node.nextAttemptAt);
      if (node.state === 'stopped') times.push(this.stoppedUntil(node));
      if (node.state === 'sleeping') times.push(this.asleepUntil(node));
    }
    if (s.healthDueAt !== undefined && !s.healthInFlight) times.push(s.healthDueAt);
    const leaseExpiry = nextLeaseExpiry(s);
    if (leaseExpiry !== undefined) times.push(leaseExpiry);
    if (s.reconcileDueAt !== undefined && !s.reconcileInFlight) times.push(s.reconcileDueAt);
    const future = times.filter((t) => t > this.now);
    return future.length > 0 ? Math.min(...future) : undefined;
  }

  // ---- helpers ------------------------------------------------------------------------------------------

  private node(id: string): NodeRecord | undefined {
    return this.state.nodes.find((n) => n.id === id);
  }

  private laneFields(node: NodeRecord): Pick<LedgerRowRequest, 'nodeId' | 'lane'> {
    return { nodeId: node.id, ...(node.lane ? { lane: node.lane } : {}) };
  }

  private ledger(row: Omit<LedgerRowRequest, 'occurredAt'>): void {
    this.state.ledgerInFlight = (this.state.ledgerInFlight ?? 0) + 1;
    this.commands.push({ type: 'recordLedger', row: { ...row, occurredAt: this.now } });
  }

  private tell(jobId: string, message: JobMessage): void {
    this.commands.push({ type: 'tellJob', jobId, message });
  }

  private log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
    this.commands.push({ type: 'log', level, message, fields });
  }
}
