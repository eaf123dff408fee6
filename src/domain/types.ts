/** Types shared by workflows, activities and the API. Plain JSON only: they cross Temporal boundaries. */
import type { PoolKey } from '../ids';
import type { KeepAliveLearning, KeepAliveView } from './keep-alive';

export type { KeepAliveView } from './keep-alive';
import type { Lane, PoolConfig } from './pool-config';
import type { ServiceCall, TokenUsage } from './inference-request';

export type { TokenUsage } from './inference-request';

/** Capacity market of a lane. */
export type Market = 'spot' | 'on-demand';

/** A lane (one way to get a node: provider, market, GPU type, price) and the pool config: inferred from the zod schema. */
export type { Lane, PoolConfig };

/**
 * Lifecycle of a node as the pool sees it. `terminate_failed`: the provider refused or could not be reached
 * for the terminate call; the pool keeps retrying with backoff and the node bills until the call succeeds.
 * `stopping` / `stopped`: the warm-state ladder's stopped rung (compute released, disk kept, billed at the lane's
 * `stoppedPricePerHour`); a stopped node woken for new work is `provisioning` again (with `waking`) until ready.
 * `sleeping`: the sleeping rung (model server asleep, VRAM freed, the machine kept at the lane's
 * `sleepingPricePerHour`), from its sleep call on; woken, it is `provisioning` (with `wakingFromSleep`) until awake.
 */
export type NodeState = 'provisioning' | 'ready' | 'terminating' | 'terminate_failed' | 'stopping' | 'stopped' | 'sleeping';

/** The provider call a node is waiting on (at most one at a time; cleared when a new workflow run starts). */
export type NodeCommand = 'provision' | 'boot' | 'terminate' | 'stop' | 'start' | 'sleep' | 'wake';

/** A node the pool owns (or is acquiring). */
export interface NodeRecord {
  id: string;
  /** Index into config.lanes of the lane it runs on; -1 while no lane has capacity. */
  laneIndex: number;
  lane?: Lane;
  state: NodeState;
  url?: string;
  /** Workflow time (ms) at which the provider accepted it; billing starts here. */
  billedFrom?: number;
  /** Workflow time (ms) of the latest create or start call (lane search and backoff before it; the provider's time after). */
  calledAt?: number;
  /** Workflow time (ms) the provider accepted its latest create or start (a cold start's provider phase ends here). */
  acceptedAt?: number;
  readyAt?: number;
  requestedAt: number;
  /** Jobs on this node, one entry per slot (null = free). */
  slots: (string | null)[];
  /** A job reported this node unreachable: no placements until a health check clears it. */
  suspect?: boolean;
  /** Consecutive failed health checks. */
  healthFailures?: number;
  /** Lane attempts made for this node. */
  provisioningAttempts: number;
  /** Rounds in which every lane was short (the wait before the next round backs off on this). */
  laneRounds?: number;
  /** The provider call in flight for this node, if any. */
  inFlight?: NodeCommand;
  /** Workflow time (ms) before which no new call is made for this node (lane backoff, terminate retry). */
  nextAttemptAt?: number;
  /** A teardown's grace period: no terminate call before this workflow time (ms); a burst before it keeps the node. */
  terminateAfter?: number;
  /** Why the node is being terminated (written on its node_terminated row). */
  terminateReason?: string;
  /** Workflow time (ms) of the first terminate call: from then on nothing brings the node back. */
  terminateCalledAt?: number;
  /** Terminate calls that failed so far. */
  terminateFailures?: number;
  /** The last provider error seen for this node. */
  lastError?: string;
  /** Started to take this node's place on a preferred lane (make-before-break); cleared once it is ready. */
  replaces?: string;
  /** Why it replaces that node: its preferred lane has capacity again, or the on-demand floor needs it. */
  moveReason?: LaneMoveReason;
  /** Replaced: no new placements; terminated once its running jobs are done. */
  retiring?: boolean;
  /** Retiring because the pool needed fewer nodes for a whole keep-alive window (undone if demand comes back first). */
  scaledIn?: boolean;
  /** This teardown stops the node (disk kept) instead of terminating it: its lane has a stopped price. */
  stopOnTeardown?: boolean;
  /** Workflow time (ms) the provider confirmed the stop; set while the node is stopped (or its wake is under way). */
  stoppedAt?: number;
  /** Stops so far (each stop and start has its own ledger row). */
  stops?: number;
  /** Milliseconds spent stopped in earlier stops (billed at the stopped price, not the GPU's). */
  stoppedMs?: number;
  /** Being woken from stopped: the start call, then the readiness wait, as for a new node. */
  waking?: boolean;
  /** This teardown puts the node's model server to sleep instead of terminating it (the sleeping rung). */
  sleepOnTeardown?: boolean;
  /** Workflow time (ms) the model server confirmed its sleep; set while it sleeps. */
  sleptAt?: number;
  /** Sleeps so far (each sleep and wake has its own ledger row). */
  sleeps?: number;
  /** Milliseconds spent asleep in earlier sleeps (billed at the sleeping price, not the GPU's). */
  sleptMs?: number;
  /** Being woken from sleep: the wake call (`POST /wake_up`) answers once the model is back. */
  wakingFromSleep?: boolean;
  /** The rung its latest wake came from (a cold start's rung); absent: from stopped if it ever stopped, else cold. */
  wokeFrom?: 'stopped' | 'sleeping';
}

/** Why the pool moves a node to another lane. */
export type LaneMoveReason = 'preferred-lane' | 'on-demand-floor';

/** Job priority: 1 is the highest, 5 the lowest. */
export type Priority = 1 | 2 | 3 | 4 | 5;

/** A job waiting in a pool's queue. */
export interface QueuedJob {
  jobId: string;
  attempt: number;
  /** Workflow time (ms) it entered the queue (this time): cold-start time and aging count from here. */
  enqueuedAt: number;
  /** Absent in jobs queued before priorities existed: 3. */
  priority?: number;
  /** Requeued because its node was lost: ahead of jobs of the same effective priority. */
  front?: boolean;
  /** Retry backoff: not placed before this workflow time (ms). */
  notBefore?: number;
}

/** A job placed on a node slot. */
export interface Placement {
  jobId: string;
  attempt: number;
  nodeId: string;
  slot: number;
  placedAt: number;
  priority?: number;
  /** The pool asked the job to stop for a higher-priority one; the slot stays taken until the job confirms. */
  preempting?: boolean;
}

/** Phase of a pool, for humans and dashboards. */
export type PoolPhase = 'idle' | 'scaling_up' | 'active' | 'waiting_idle' | 'tearing_down' | 'draining' | 'drained' | 'stopping';

/** Everything a pool workflow carries across continue-as-new. */
export interface PoolState {
  /** The pool key. */
  poolId: PoolKey;
  config: PoolConfig;
  nodes: NodeRecord[];
  queue: QueuedJob[];
  running: Placement[];
  /** lane index (as string key) -> workflow time (ms) until which the lane is skipped. */
  laneCooldownUntil: Record<string, number>;
  nodeSequence: number;
  draining: boolean;
  /** Set by "scale to zero now": the warm baseline is not rebuilt until the next job arrives. */
  baselineSuspended: boolean;
  /** Placements made over the pool's life (carried across continue-as-new). */
  placedTotal: number;
  /** Workflow time (ms) when the pool last became idle: the durable idle timer counts from here. */
  idleSince?: number;
  /** Jobs that left for good, newest last (bounded): a late duplicate arrival of one of them is ignored. */
  recentlyDone?: string[];
  /** Teardowns started so far (gives each one a stable ledger key). */
  teardownSequence?: number;
  /** Preemptions made over the pool's life. */
  preemptedTotal?: number;
  /** Nodes an operator asked to keep up (a service "start") until the idle timer next fires. */
  warmNodes?: number;
  /** An operator stop (or restart) under way: queued jobs wait, running ones get until `deadline`. */
  stopping?: PoolStop;
  /** An idle teardown under way (nodes marked terminating; a burst in its grace period cancels it). */
  teardown?: PoolTeardown;
  /** "Scale to zero now" was asked: tear down without grace as soon as the pool is idle. */
  forceTeardown?: boolean;
  /** Workflow time (ms) of the next health check of ready nodes (absent while none is ready). */
  healthDueAt?: number;
  /** A health check is in flight. */
  healthInFlight?: boolean;
  /** Workflow time (ms) of the next orphan reconciliation. */
  reconcileDueAt?: number;
  /** A reconciliation is in flight. */
  reconcileInFlight?: boolean;
  /** Ledger writes in flight (reconciliation waits for them: it must see every row the pool wrote). */
  ledgerInFlight?: number;
  /** Nodes whose terminate call failed at least once, over the pool's life. */
  terminateFailuresTotal?: number;
  /** Lane moves are on (set by a run started with them; see the `started` event). */
  laneMoves?: boolean;
  /**
   * Which life of the pool this is (from its first run's id): part of every node id, so a pool deleted and
   * created again under the same name never reuses an earlier life's node ids or ledger keys. Absent in pools
   * created before it (their node ids stay as they were).
   */
  incarnation?: string;
  /** Slots lent to API processes for the front door's fast path (see slot-leases.ts). */
  leases?: SlotLease[];
  /** Leases granted over the pool's life (gives each a unique id). */
  leaseSequence?: number;
  /** Scale-in is on (set by a run started with it; see the `started` event). */
  scaleIn?: boolean;
  /**
   * Index k-1: the last time the pool needed at least k nodes (⌈(running + queued) / slotsPerNode⌉); nodes
   * above what the last keep-alive window needed retire (scale-in).
   */
  demandSeenAt?: number[];
  /** Idle gaps and boot times the pool has seen, and the keep-alive windows chosen from them (keep-alive.ts). */
  keepAlive?: KeepAliveLearning;
}

/** An idle teardown: which nodes, and when their terminate calls go out. */
export interface PoolTeardown {
  /** Stable ledger key of this teardown (`teardown:<n>`). */
  key: string;
  nodeIds: string[];
  /** Workflow time (ms) after the grace period. */
  terminateAt: number;
}

/** A stop in progress: let running jobs finish until the deadline, preempt the rest, release every node. */
export interface PoolStop {
  /** Workflow time (ms) after which running jobs are preempted (their progress kept, requeued). */
  deadline: number;
  /** After the nodes are gone: `idle` (jobs that arrive start it again) or `warm` (start one node: a restart). */
  then: 'idle' | 'warm';
  /** When the stop was asked for. */
  since: number;
}

/** Snapshot answered by the pool state query and the API. */
export interface PoolView {
  /** The pool key (the API answers with the pool's name in its place). */
  poolId: PoolKey;
  phase: PoolPhase;
  config: PoolConfig;
  nodes: Array<
    Pick<
      NodeRecord,
      'id' | 'state' | 'laneIndex' | 'lane' | 'url' | 'readyAt' | 'inFlight' | 'terminateFailures' | 'lastError' | 'replaces' | 'retiring'
    > & {
      busySlots: number;
      /** Seconds the node has billed at its GPU price so far (since the provider accepted it, less time stopped). */
      billedSeconds?: number;
      /** Seconds spent stopped so far (billed at the lane's stoppedPricePerHour). */
      stoppedSeconds?: number;
      /** Workflow time (ms) it stopped, while stopped. */
      stoppedAt?: number;
      /** Being woken from stopped. */
      waking?: boolean;
      /** Seconds spent asleep so far (billed at the lane's sleepingPricePerHour). */
      sleptSeconds?: number;
      /** Being woken from sleep. */
      wakingFromSleep?: boolean;
      /** Workflow time (ms) a provisioning node was asked for (or its wake): where its boot or wake counts from. */
      requestedAt?: number;
    }
  >;
  queued: number;
  running: number;
  queuedJobIds: string[];
  laneCooldownUntil: Record<string, number>;
  draining: boolean;
  placedTotal: number;
  preemptedTotal: number;
  /** Queued jobs in placement order, with their base and aged priority. */
  queue: Array<{ jobId: string; priority: number; effectivePriority: number; waitingMs: number; retryAt?: number }>;
  /** Running jobs with their priority; `preempting` while the pool waits for one to stop. */
  placements: Array<{ jobId: string; nodeId: string; slot: number; priority: number; preempting: boolean }>;
  /** What the keep-alive policy learned and the windows in force (see keep-alive.ts). */
  keepAlive: KeepAliveView;
}

/** Terminal and live states of a job. */
export type JobStatus = 'queued' | 'provisioning' | 'running' | 'completed' | 'failed' | 'expired' | 'cancelled';

/** Terminal job states: every accepted job ends in exactly one of these. */
export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'expired', 'cancelled'];

/** Input of a job workflow. */
export interface JobInput {
  jobId: string;
  /** The pool key. */
  poolId: PoolKey;
  model: string;
  payload: Record<string, unknown>;
  /** A generic service call instead of a chat completion (then `payload` is empty). */
  service?: ServiceCall;
  ttlSeconds: number;
  maxAttempts: number;
  /** Epoch ms at which the API accepted the job (queue time is measured from here). */
  submittedAt: number;
  /** Whether custom search attributes are registered on this Temporal server. */
  indexed: boolean;
  /**
   * The API signalled the job's arrival to the pool itself (two fewer workflow tasks on the hot path).
   * The job then re-sends it only if no slot came within a few seconds, in case that signal was lost.
   */
  arrivalSignalled?: boolean;
  /** 1 (highest) to 5 (lowest); absent: 3. */
  priority?: number;
  /** Where the terminal state is POSTed (signed with the workspace's callback secret). */
  callbackUrl?: string;
  /** Send ntfy notifications for this job's events (set by the API when ntfy is configured). */
  notify?: boolean;
  /**
   * Token a node presents to POST /v1/jobs/:id/progress; the inference call hands it to the node. Only its
   * hash is stored in PostgreSQL; it is in the history, where it grants nothing that history access does not.
   */
  progressToken?: string;
  /**
   * Which interpreter runs it; a field of the input, not a `patched()` marker (the marker and the search-attribute
   * upsert that comes with it would cost two events on every job's history). Absent: a run started before the job
   * machine, which replays through the frozen body (src/workflows/job-legacy.ts). `true`: the job machine, its
   * outcome written by an activity and its slot given back by a signal of its own. `2` (every starter since
   * 2026-12-07): the outcome's write also tells the pool the slot is free (src/workflows/outcome-release.ts):
   * a completed job's history has no signal of its own, and one workflow task fewer.
   */
  machine?: true | 2;
}

/** How far a job got: the latest progress its node reported, kept across preemption and handed to the next attempt. */
export interface ProgressSnapshot {
  /** Placement attempt that produced it. */
  attempt: number;
  /** Completion tokens produced so far (across resumed attempts). */
  completionTokens: number;
  /** The completion text so far (what a resumed attempt continues from). */
  text: string;
  /** Epoch ms when it was reported. */
  at: number;
  source: 'heartbeat' | 'node';
}

/** A job's view: answered by the job query and, once terminal, stored in PostgreSQL. */
export interface JobView {
  id: string;
  /** The pool key (the API presents the pool's name). */
  pool: PoolKey;
  status: JobStatus;
  attempt: number;
  nodeId?: string;
  submittedAt: number;
  placedAt?: number;
  /** Epoch ms (worker clock) at which the request of the successful attempt reached the node. */
  startedAt?: number;
  finishedAt?: number;
  queueMs?: number;
  coldStartMs?: number;
  /** The cold start by phase: capacity search, provider call, boot (see cold-start.ts). */
  coldStartPhases?: ColdStartPhases;
  runMs?: number;
  usage?: TokenUsage;
  result?: unknown;
  error?: string;
  /** Every attempt that reached a node, in workflow time (epoch ms): analytics counts node busy time from these. */
  runs?: JobRun[];
  /** 1 (highest) to 5 (lowest). */
  priority?: number;
  /** Attempts that failed (node lost, 5xx): counted against maxAttempts. Preemptions are not. */
  failures?: number;
  /** Times the job was preempted by a higher-priority job. */
  preemptions?: number;
  /** The latest progress snapshot. */
  progress?: ProgressSnapshot;
  /** Earliest time (epoch ms, workflow clock) the job may be placed again after a failed attempt. */
  retryAt?: number;
}

/** One attempt of a job on a node slot. */
export interface JobRun {
  nodeId: string;
  attempt: number;
  startedAt: number;
  endedAt: number;
  /** How the attempt ended. */
  outcome?: 'completed' | 'failed' | 'preempted' | 'cancelled' | 'revoked';
}

/** Where the node that served a cold start came from: a fresh create, or a wake from the stopped or sleeping rung. */
export type ColdStartRung = 'cold' | 'stopped' | 'sleeping';

/** A cold start by phase (computed in cold-start.ts). */
export interface ColdStartPhases {
  rung: ColdStartRung;
  /** Finding a lane: calls refused for lack of capacity and the backoff between them, before the call that worked. */
  capacityMs: number;
  /** The provider's create (or start) call that worked, until it accepted the node. */
  providerMs: number;
  /** From accepted to the model server answering healthy. */
  bootMs: number;
}

/** What the pool tells a job when it gets a slot. */
export interface PlacementGrant {
  attempt: number;
  nodeId: string;
  nodeUrl: string;
  slot: number;
  /** ms the job waited for a node to become ready (0 if it was placed on a warm node). */
  coldStartMs: number;
  /** That wait by phase (absent for a warm node, and from pools recorded before phases). */
  coldStart?: ColdStartPhases;
}

/** One lease as the pool keeps it. */
export interface SlotLease {
  id: string;
  /** The API process holding it. */
  holder: string;
  nodeId: string;
  slots: number;
  /** Workflow time (ms) after which the slots go back unless renewed. */
  expiresAt: number;
  /** Taken back: not renewed as usable; the holder releases it once its requests there are done. */
  revoked?: boolean;
}
