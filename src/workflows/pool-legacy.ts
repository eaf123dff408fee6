/**
 * The first pool workflow (type `poolWorkflow`), frozen: it stays only so that runs started before the state
 * machine replay, and so that such a run moves itself to `poolWorkflowV2` (pool.ts) at its next wake-up,
 * carrying its state. New pools start as `poolWorkflowV2`. Do not change the behaviour of this file.
 */
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  makeContinueAsNewFunc,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PoolWorkflowInput } from './pool';
import { BOOKKEEPING_ACTIVITY, BOOT_WAIT_ACTIVITY, PROVIDER_CALL_ACTIVITY } from './activity-options';
import type { LedgerEvent, LedgerEventType } from '../domain/ledger-events';
import { jobWorkflowId, nodeId as makeNodeId } from '../ids';
import { basePriority, enqueueJob, nextRetryAt, placeQueuedJobs, releasePlacement, requeueJobsOfNode } from '../domain/placement';
import { describePlan, planPreemptions, type PreemptionCheck } from '../domain/preemption';
import { onDemandReferencePrice } from '../domain/money';
import { newPoolState, toPoolView } from '../domain/pool-view';
import { validatePoolConfig } from '../domain/pool-config-check';
import {
  activeNodes,
  allLanesShortBackoffMs,
  availableLanes,
  baseline,
  isIdle,
  nextLaneAvailableAt,
  nodesToAdd,
  teardownCandidates,
} from '../domain/scaling';
import type { NodeRecord, Placement, PlacementGrant, PoolState, PoolStop } from '../domain/types';
import {
  drainPoolUpdate,
  jobArrivedSignal,
  jobFinishedSignal,
  jobPlacedSignal,
  jobPreemptSignal,
  jobRevokedSignal,
  jobWithdrawnSignal,
  poolStateQuery,
  preemptionCheckQuery,
  preemptNowUpdate,
  resumePoolUpdate,
  scaleToZeroUpdate,
  stopPoolUpdate,
  updatePoolConfigUpdate,
  warmPoolUpdate,
} from './messages';

/** Patch marking the move of a running pool to the state-machine workflow. */
export const MOVE_TO_POOL_WORKFLOW_V2 = 'move-to-pool-workflow-v2';

const provisioning = proxyActivities<Activities>(PROVIDER_CALL_ACTIVITY);
const booting = proxyActivities<Activities>(BOOT_WAIT_ACTIVITY);
const bookkeeping = proxyActivities<Activities>(BOOKKEEPING_ACTIVITY);

/** How many finished job ids the pool remembers to ignore late duplicate arrivals. */
const RECENTLY_DONE_LIMIT = 500;

/** Consecutive failed health checks after which a ready node counts as lost. */
const HEALTH_FAILURES_TO_LOSE = 3;

/** The pool workflow. */
export async function poolWorkflow(input: PoolWorkflowInput): Promise<void> {
  const state: PoolState = input.state ?? newPoolState(input.poolId, input.config);
  const poolId = state.poolId;
  let wake = true;
  let teardownRun: { scope: CancellationScope; pending: NodeRecord[]; current?: NodeRecord; key: string } | undefined;
  let forceTeardown = false;
  let healthCheckRequested = false;
  const lifecycles: Record<string, true> = {};

  const now = () => Date.now();
  const touch = () => {
    wake = true;
  };

  // Ledger writes run in the background, but continue-as-new waits for them: a run that closes drops the
  // activities it still has pending, and a lost row is lost money.
  let pendingLedgerWrites = 0;
  // Runs recorded before this rule continued-as-new without waiting; they must replay as they ran.
  const ledgerBeforeContinueAsNew = patched('ledger-writes-before-continue-as-new');
  const ledger = (eventType: LedgerEventType, key: string, extra: Partial<LedgerEvent> = {}) => {
    pendingLedgerWrites += 1;
    void bookkeeping
      .recordLedgerEvent({ eventKey: `${poolId}:${key}`, eventType, occurredAt: now(), poolId, ...extra })
      .catch((err) => log.error('ledger write failed', { poolId, key, error: String(err) }))
      .finally(() => {
        pendingLedgerWrites -= 1;
        touch();
      });
  };

  const noteWorkArrived = () => {
    state.idleSince = undefined;
    state.baselineSuspended = false;
    // A stop's teardown goes on: the new job waits and starts the pool again once the stop is done.
    if (!state.stopping) cancelTeardown();
  };

  /** A burst during teardown keeps every node whose terminate call has not gone out. */
  function cancelTeardown(): void {
    if (!teardownRun) return;
    const run = teardownRun;
    run.scope.cancel();
    const kept = run.pending.filter((n) => n !== run.current && state.nodes.includes(n));
    run.pending = run.current ? [run.current] : [];
    for (const node of kept) node.state = 'ready';
    if (kept.length > 0) {
      ledger('teardown_cancelled', `${run.key}:cancelled`, { details: { kept: kept.map((n) => n.id) } });
      log.info('teardown cancelled by new work', { poolId, kept: kept.map((n) => n.id) });
    }
    touch();
  }

  const markDone = (jobId: string) => {
    state.recentlyDone = [...(state.recentlyDone ?? []).slice(-(RECENTLY_DONE_LIMIT - 1)), jobId];
  };

  setHandler(jobArrivedSignal, ({ jobId, attempt, front, failedNodeId, priority, notBefore }) => {
    // A job re-announces itself when its first arrival may have been lost; once it is done, that is noise.
    if (state.recentlyDone?.includes(jobId)) return;
    const failedNode = failedNodeId ? state.nodes.find((n) => n.id === failedNodeId && n.state === 'ready') : undefined;
    if (failedNode) {
      // Stop placing there and look now rather than at the next periodic check.
      failedNode.suspect = true;
      healthCheckRequested = true;
    }
    const job = {
      jobId,
      attempt,
      enqueuedAt: now(),
      ...(priority !== undefined ? { priority } : {}),
      ...(notBefore !== undefined ? { notBefore } : {}),
    };
    if (enqueueJob(state, job, front)) {
      noteWorkArrived();
      touch();
    }
  });
  setHandler(jobFinishedSignal, ({ jobId, attempt }) => {
    const placement = state.running.find((p) => p.jobId === jobId);
    if (placement && placement.attempt === attempt) {
      releasePlacement(state, jobId);
      markDone(jobId);
      touch();
    }
  });
  setHandler(jobWithdrawnSignal, ({ jobId }) => {
    state.queue = state.queue.filter((q) => q.jobId !== jobId);
    releasePlacement(state, jobId);
    markDone(jobId);
    touch();
  });
  setHandler(poolStateQuery, () => toPoolView(state, teardownRun !== undefined, now()));
  setHandler(
    updatePoolConfigUpdate,
    (config) => {
      state.config = config;
      touch();
      return toPoolView(state, teardownRun !== undefined, now());
    },
    { validator: (config) => validatePoolConfig(config, state.config) },
  );
  setHandler(drainPoolUpdate, () => {
    state.draining = true;
    touch();
    return toPoolView(state, teardownRun !== undefined, now());
  });
  setHandler(resumePoolUpdate, () => {
    state.draining = false;
    state.baselineSuspended = false;
    touch();
    return toPoolView(state, teardownRun !== undefined, now());
  });
  setHandler(preemptionCheckQuery, () => describePlan(state, planPreemptions(state, now())));
  setHandler(preemptNowUpdate, () => preempt('operator'));
  setHandler(
    warmPoolUpdate,
    ({ nodes }) => {
      if (state.stopping) state.stopping.then = 'warm';
      else {
        state.warmNodes = Math.min(nodes, state.config.maxNodes);
        state.baselineSuspended = false;
        // The idle timer counts from the start, so a started service with no jobs stops after idleTimeoutSeconds.
        state.idleSince = undefined;
        cancelTeardown();
      }
      touch();
      return toPoolView(state, teardownRun !== undefined, now());
    },
    {
      validator: ({ nodes }) => {
        if (!Number.isInteger(nodes) || nodes < 1) throw new Error('nodes must be a positive integer');
        if (state.draining) throw new Error('the pool is draining: resume it first');
      },
    },
  );
  setHandler(
    stopPoolUpdate,
    ({ drainTimeoutSeconds, then }) => {
      const deadline = now() + drainTimeoutSeconds * 1000;
      // Asking again keeps the earlier deadline: a second stop never gives running jobs more time.
      state.stopping = { deadline: Math.min(deadline, state.stopping?.deadline ?? deadline), then, since: state.stopping?.since ?? now() };
      state.warmNodes = 0;
      touch();
      return toPoolView(state, teardownRun !== undefined, now());
    },
    {
      validator: ({ drainTimeoutSeconds, then }) => {
        if (!(drainTimeoutSeconds >= 0 && drainTimeoutSeconds <= 24 * 3600))
          throw new Error('drainTimeoutSeconds must be between 0 and 86400');
        if (then !== 'idle' && then !== 'warm') throw new Error('then must be idle or warm');
      },
    },
  );
  setHandler(scaleToZeroUpdate, () => {
    state.warmNodes = 0;
    state.baselineSuspended = true;
    forceTeardown = true;
    touch();
    return toPoolView(state, teardownRun !== undefined, now());
  });

  async function signalJob(jobId: string, kind: 'place', grant: PlacementGrant): Promise<void>;
  async function signalJob(jobId: string, kind: 'revoke', body: { attempt: number; reason: string }): Promise<void>;
  async function signalJob(jobId: string, kind: 'preempt', body: { attempt: number; reason: string; byJobId: string }): Promise<void>;
  async function signalJob(jobId: string, kind: 'place' | 'revoke' | 'preempt', body: unknown): Promise<void> {
    const handle = getExternalWorkflowHandle(jobWorkflowId(jobId));
    try {
      if (kind === 'place') await handle.signal(jobPlacedSignal, body as PlacementGrant);
      else if (kind === 'preempt') await handle.signal(jobPreemptSignal, body as { attempt: number; reason: string; byJobId: string });
      else await handle.signal(jobRevokedSignal, body as { attempt: number; reason: string });
    } catch (err) {
      // The job is gone (finished or terminated): its slot must not stay taken.
      log.warn('job unreachable; releasing its slot', { poolId, jobId, error: String(err) });
      state.queue = state.queue.filter((q) => q.jobId !== jobId);
      releasePlacement(state, jobId);
      touch();
    }
  }

  function removeNode(node: NodeRecord): void {
    state.nodes = state.nodes.filter((n) => n.id !== node.id);
    touch();
  }

  function laneDetails(node: NodeRecord): Partial<LedgerEvent> {
    return { nodeId: node.id, lane: node.lane, details: { laneIndex: node.laneIndex } };
  }

  async function terminate(node: NodeRecord, reason: string): Promise<void> {
    if (node.lane) {
      await CancellationScope.nonCancellable(() => provisioning.terminateNode({ poolId, nodeId: node.id, lane: node.lane! }));
      if (node.billedFrom !== undefined) {
        ledger('node_terminated', `${node.id}:terminated`, {
          ...laneDetails(node),
          details: { laneIndex: node.laneIndex, reason, billedSeconds: (now() - node.billedFrom) / 1000 },
        });
      }
    }
    removeNode(node);
  }

  /** Acquires a lane for a node; false when the node is no longer needed. */
  async function acquireLane(node: NodeRecord): Promise<boolean> {
    let round = 0;
    const stillNeeded = () => state.nodes.includes(node) && !(isIdle(state) && activeNodes(state).length - 1 >= baseline(state));
    for (;;) {
      if (!stillNeeded()) return false;
      for (const index of availableLanes(state.config, state.laneCooldownUntil, now())) {
        const lane = state.config.lanes[index];
        node.laneIndex = index;
        node.lane = lane;
        node.provisioningAttempts += 1;
        try {
          const result = await provisioning.provisionNode({ poolId, nodeId: node.id, lane, laneIndex: index, model: state.config.model });
          node.laneIndex = result.laneIndex;
          node.lane = state.config.lanes[result.laneIndex] ?? lane;
          node.url = result.url;
          node.billedFrom = now();
          // The always-on counterfactual is priced from this row, so analytics needs no outside figure.
          ledger('node_provisioning', `${node.id}:provisioning`, {
            ...laneDetails(node),
            details: { laneIndex: node.laneIndex, referencePricePerHour: onDemandReferencePrice(state.config) },
          });
          return true;
        } catch (err) {
          const reason = String((err as Error).cause ?? err);
          state.laneCooldownUntil[String(index)] = now() + state.config.laneCooldownSeconds * 1000;
          log.warn('lane unavailable; trying the next', { poolId, nodeId: node.id, lane: index, reason });
        }
      }
      node.laneIndex = -1;
      node.lane = undefined;
      round += 1;
      const untilLane = nextLaneAvailableAt(state.laneCooldownUntil) - now();
      const wait = Math.max(1000, Math.min(allLanesShortBackoffMs(round), untilLane));
      await condition(() => !stillNeeded(), wait);
    }
  }

  /** Drives one node from wherever it is (provisioning, ready, terminating) to its end. */
  async function runNodeLifecycle(node: NodeRecord): Promise<void> {
    if (lifecycles[node.id]) return;
    lifecycles[node.id] = true;
    try {
      if (node.state === 'provisioning') {
        const acquired = node.billedFrom !== undefined && node.lane ? await reprovision(node) : await acquireLane(node);
        if (!acquired) {
          removeNode(node);
          return;
        }
        try {
          const ready = await booting.waitNodeReady({ poolId, nodeId: node.id, lane: node.lane! });
          node.url = ready.url;
        } catch (err) {
          log.warn('node failed to boot; replacing it', { poolId, nodeId: node.id, error: String(err) });
          await terminate(node, 'boot failed');
          return;
        }
        if (!state.nodes.includes(node)) return;
        node.state = 'ready';
        node.readyAt = now();
        ledger('node_ready', `${node.id}:ready`, {
          ...laneDetails(node),
          details: { laneIndex: node.laneIndex, bootSeconds: (node.readyAt - (node.billedFrom ?? node.readyAt)) / 1000 },
        });
        touch();
      }
      if (node.state === 'terminating' && state.nodes.includes(node) && !teardownRun) {
        await terminate(node, 'teardown');
      }
    } finally {
      delete lifecycles[node.id];
      touch();
    }
  }

  /** After continue-as-new or a crash: the provider already accepted the node, ask again (idempotent). */
  async function reprovision(node: NodeRecord): Promise<boolean> {
    try {
      const result = await provisioning.provisionNode({
        poolId,
        nodeId: node.id,
        lane: node.lane!,
        laneIndex: node.laneIndex,
        model: state.config.model,
      });
      node.url = result.url;
      return true;
    } catch {
      return acquireLane(node);
    }
  }

  async function handleNodeLost(node: NodeRecord, reason: string): Promise<void> {
    log.warn('node lost; requeueing its jobs', { poolId, nodeId: node.id, reason });
    ledger('node_lost', `${node.id}:lost`, { ...laneDetails(node), details: { laneIndex: node.laneIndex, reason } });
    const requeued = requeueJobsOfNode(state, node.id, now());
    node.state = 'terminating';
    for (const job of requeued) void signalJob(job.jobId, 'revoke', { attempt: job.attempt, reason: `node ${node.id} lost: ${reason}` });
    touch();
    await terminate(node, `lost: ${reason}`);
  }

  /**
   * Checks ready nodes every healthCheckIntervalSeconds with one short activity (not a long-running
   * watch: that would hold a worker slot per node and stop time skipping in tests). No nodes, no events.
   */
  async function healthLoop(): Promise<void> {
    for (;;) {
      await condition(() => state.nodes.some((n) => n.state === 'ready'));
      await condition(() => healthCheckRequested, state.config.healthCheckIntervalSeconds * 1000);
      healthCheckRequested = false;
      const ready = state.nodes.filter((n) => n.state === 'ready' && n.lane);
      if (ready.length === 0) continue;
      const statuses = await bookkeeping.checkNodes({ poolId, nodes: ready.map((n) => ({ nodeId: n.id, lane: n.lane! })) });
      for (const status of statuses) {
        const node = state.nodes.find((n) => n.id === status.nodeId);
        if (!node || node.state !== 'ready') continue;
        node.healthFailures = status.healthy ? 0 : (node.healthFailures ?? 0) + 1;
        if (status.healthy && node.suspect) {
          node.suspect = false;
          touch();
        }
        if (!status.exists || (node.healthFailures ?? 0) >= HEALTH_FAILURES_TO_LOSE) {
          void handleNodeLost(node, status.reason ?? 'failed health checks');
        }
      }
    }
  }

  function startNodes(count: number): void {
    for (let i = 0; i < count; i++) {
      state.nodeSequence += 1;
      const node: NodeRecord = {
        id: makeNodeId(poolId, state.nodeSequence),
        laneIndex: -1,
        state: 'provisioning',
        requestedAt: now(),
        slots: Array.from({ length: state.config.slotsPerNode }, () => null),
        provisioningAttempts: 0,
      };
      state.nodes.push(node);
      void runNodeLifecycle(node);
    }
  }

  function dispatchPlacements(): void {
    const decisions = placeQueuedJobs(state, now());
    for (const { job, node, slot } of decisions) {
      const coldStartMs = Math.max(0, (node.readyAt ?? 0) - job.enqueuedAt);
      void signalJob(job.jobId, 'place', { attempt: job.attempt, nodeId: node.id, nodeUrl: node.url!, slot, coldStartMs });
    }
  }

  /**
   * Asks the chosen running jobs to stop for higher-priority waiting ones. The victim's slot stays taken
   * until the victim's job confirms (by queueing its next attempt) that its request ended at the node, so
   * the preemptor never shares the slot with it.
   */
  function preempt(by: 'pool' | 'operator'): PreemptionCheck {
    const plan = planPreemptions(state, now());
    for (const { victim, preemptor } of plan.choices) {
      const reason = `preempted for job ${preemptor.jobId} (priority ${basePriority(preemptor)}) by the ${by}`;
      preemptOne(victim, reason, preemptor.jobId, by, basePriority(preemptor));
    }
    if (plan.choices.length > 0) touch();
    return describePlan(state, plan);
  }

  /** Asks one running job to stop (its slot stays taken until it confirms by queueing its next attempt). */
  function preemptOne(victim: Placement, reason: string, by: string, trigger: string, byPriority?: number): void {
    victim.preempting = true;
    state.preemptedTotal = (state.preemptedTotal ?? 0) + 1;
    log.info('preempting job', { poolId, jobId: victim.jobId, nodeId: victim.nodeId, for: by });
    ledger('job_preempted', `${victim.jobId}:preempted:${victim.attempt}`, {
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
    void signalJob(victim.jobId, 'preempt', { attempt: victim.attempt, reason, byJobId: by });
  }

  /**
   * One step of an operator stop: wait for running jobs until the deadline, then preempt the rest (their
   * progress is kept and they run again later), then release every node; done, the pool takes work again.
   */
  async function advanceStop(stop: PoolStop): Promise<void> {
    const unfinished = state.running.filter((p) => !p.preempting);
    if (unfinished.length > 0 && now() < stop.deadline) {
      await condition(() => wake || readyToContinueAsNew(), stop.deadline - now());
      return;
    }
    for (const victim of unfinished) preemptOne(victim, 'the pool is stopping (drain timeout passed)', 'stop', 'stop');
    if (unfinished.length > 0) touch();
    const ready = state.nodes.filter((n) => n.state === 'ready');
    if (state.running.length === 0 && ready.length > 0 && !teardownRun) {
      void teardown(ready, 0);
      return;
    }
    if (state.running.length > 0 || state.nodes.length > 0 || teardownRun) {
      await condition(() => wake || readyToContinueAsNew());
      return;
    }
    state.stopping = undefined;
    state.warmNodes = stop.then === 'warm' ? 1 : 0;
    state.idleSince = undefined;
    log.info('pool stopped', { poolId, then: stop.then, queued: state.queue.length });
    touch();
  }

  /** Tears down idle nodes above the baseline; a job arriving before a node's terminate call keeps it. */
  async function teardown(candidates: NodeRecord[], graceSeconds: number): Promise<void> {
    state.teardownSequence = (state.teardownSequence ?? 0) + 1;
    const key = `teardown:${state.teardownSequence}`;
    for (const node of candidates) node.state = 'terminating';
    ledger('teardown_started', `${key}:started`, { details: { nodes: candidates.map((n) => n.id), graceSeconds } });
    const run = { scope: new CancellationScope(), pending: [...candidates], current: undefined as NodeRecord | undefined, key };
    teardownRun = run;
    try {
      await run.scope.run(async () => {
        if (graceSeconds > 0) await sleep(graceSeconds * 1000);
        while (run.pending.length > 0 && !run.scope.consideredCancelled) {
          run.current = run.pending[0];
          await terminate(run.current, 'idle teardown');
          run.pending.shift();
          run.current = undefined;
        }
      });
    } catch (err) {
      if (!isCancellation(err)) throw err;
    } finally {
      // A node whose terminate call was already under way when the teardown was cancelled is finished off.
      for (const node of run.pending)
        if (state.nodes.includes(node) && node.state === 'terminating') await terminate(node, 'idle teardown');
      teardownRun = undefined;
      touch();
    }
  }

  // Resume whatever the previous run (or a crash) left in flight, after removing orphans.
  const providersInUse = [...new Set(state.config.lanes.map((l) => l.provider))];
  await bookkeeping.reconcileNodes({ poolId, providers: providersInUse, knownNodeIds: state.nodes.map((n) => n.id) });
  for (const node of state.nodes) if (node.state !== 'ready') void runNodeLifecycle(node);
  void healthLoop();

  // Continue-as-new waits for a running teardown and for ledger writes: waking on the suggestion alone
  // would spin the loop.
  const readyToContinueAsNew = () =>
    workflowInfo().continueAsNewSuggested && !teardownRun && (pendingLedgerWrites === 0 || !ledgerBeforeContinueAsNew);

  for (;;) {
    // A running pool moves to the state machine once nothing here is half done that the new run could not
    // redo: node calls are idempotent by node id and resume there; a teardown or a ledger write would be lost.
    if (!teardownRun && pendingLedgerWrites === 0 && patched(MOVE_TO_POOL_WORKFLOW_V2)) {
      await condition(allHandlersFinished);
      await makeContinueAsNewFunc<(input: PoolWorkflowInput) => Promise<void>>({ workflowType: 'poolWorkflowV2' })({
        poolId,
        config: state.config,
        state,
      });
    }
    wake = false;
    if (state.stopping) {
      await advanceStop(state.stopping);
    } else {
      dispatchPlacements();
      if (!state.draining || !isIdle(state)) startNodes(nodesToAdd(state));
      if (state.config.preemption !== 'manual' && state.queue.length > 0) preempt('pool');

      if (isIdle(state)) {
        if (state.idleSince === undefined) state.idleSince = now();
        const idleDeadline = state.idleSince + state.config.idleTimeoutSeconds * 1000;
        // A start keeps its nodes warm until the idle timer first fires; then they go like any idle node.
        if (state.warmNodes && now() >= idleDeadline) state.warmNodes = 0;
        const candidates = state.draining ? activeNodes(state).filter((n) => n.state === 'ready') : teardownCandidates(state);
        const readyCandidates = candidates.filter((n) => n.state === 'ready');
        if (readyCandidates.length > 0 && !teardownRun && (forceTeardown || state.draining || now() >= idleDeadline)) {
          const grace = forceTeardown || state.draining ? 0 : state.config.teardownGraceSeconds;
          forceTeardown = false;
          void teardown(readyCandidates, grace);
          continue;
        }
        forceTeardown = false;
        if ((readyCandidates.length > 0 || state.warmNodes) && !teardownRun) {
          await condition(() => wake || readyToContinueAsNew(), idleDeadline - now());
        } else {
          await condition(() => wake || readyToContinueAsNew());
        }
      } else {
        state.idleSince = undefined;
        // A job in retry backoff becomes placeable by the clock alone.
        const retryAt = nextRetryAt(state, now());
        if (retryAt !== undefined) await condition(() => wake || readyToContinueAsNew(), retryAt - now());
        else await condition(() => wake || readyToContinueAsNew());
      }
    }

    if (readyToContinueAsNew()) {
      await condition(allHandlersFinished);
      // In-flight node work resumes in the next run: every provider call is idempotent by node id.
      await continueAsNew<typeof poolWorkflow>({ poolId, config: state.config, state });
    }
  }
}
