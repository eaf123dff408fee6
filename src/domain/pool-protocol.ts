/**
 * What goes into the pool state machine (events) and what comes out (commands). Plain JSON: events are
 * built from signals, updates, timers and command results; commands are run by the pool workflow.
 */
import type { PoolLedgerEventType } from './ledger-events';
import type { PreemptionCheck } from './preemption';
import type { LeaseAnswer, LeaseExchange } from './slot-leases';
import type { Lane, PlacementGrant, PoolConfig, PoolState } from './types';

/** What a job tells its pool when it asks for a slot. */
export interface JobArrival {
  jobId: string;
  attempt: number;
  /** Requeued after its node failed it: ahead of jobs of its priority. */
  front: boolean;
  /** The node that failed the previous attempt (the pool stops placing there until a health check clears it). */
  failedNodeId?: string;
  /** 1 (highest) to 5 (lowest); absent: 3. */
  priority?: number;
  /** Retry backoff: the pool holds the job's place but does not place it before this workflow time (ms). */
  notBefore?: number;
}

/** A provider's answer about one node (the same shape as the providers' NodeStatus). */
export interface NodeHealth {
  nodeId: string;
  exists: boolean;
  healthy: boolean;
  url?: string;
  reason?: string;
}

/** What the pool tells a job. */
export type JobMessage =
  | { kind: 'placed'; grant: PlacementGrant }
  | { kind: 'revoked'; attempt: number; reason: string }
  | { kind: 'preempt'; attempt: number; reason: string; byJobId: string };

/** A price a provider's API stated, and which of its APIs said so (e.g. `ec2:spot-price-history`). */
export interface ProviderPrice {
  perHour: number;
  source: string;
}

/** A ledger row the pool asks to be written (the workflow prefixes the key with the pool key). */
export interface LedgerRowRequest {
  key: string;
  eventType: PoolLedgerEventType;
  occurredAt: number;
  nodeId?: string;
  jobId?: string;
  lane?: Lane;
  details?: Record<string, unknown>;
}

/** A side effect the pool workflow runs; each one reports back as an event, success or failure. */
export type PoolCommand =
  | { type: 'provision'; nodeId: string; lane: Lane; laneIndex: number; model: string }
  /** `rung`: the node boots from the stopped rung (a wake), for the boot-phase metrics. */
  | { type: 'waitReady'; nodeId: string; lane: Lane; rung?: 'stopped' }
  | { type: 'terminate'; nodeId: string; lane: Lane; reason: string }
  /** The stopped rung: release the node's compute, keep its disk. */
  | { type: 'stop'; nodeId: string; lane: Lane }
  /** Start a stopped node again (it then boots as a new one would, from its kept disk). */
  | { type: 'start'; nodeId: string; lane: Lane }
  /** The sleeping rung: put the node's model server to sleep (`POST /sleep`: VRAM freed, the machine kept). */
  | { type: 'sleep'; nodeId: string; lane: Lane; url: string }
  /** Wake a sleeping model server (`POST /wake_up`); answers once it serves again. */
  | { type: 'wake'; nodeId: string; lane: Lane; url: string }
  | { type: 'checkHealth'; nodes: Array<{ nodeId: string; lane: Lane }> }
  | { type: 'reconcile'; providers: string[]; knownNodeIds: string[] }
  | { type: 'tellJob'; jobId: string; message: JobMessage }
  | { type: 'recordLedger'; row: LedgerRowRequest }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields?: Record<string, unknown> };

/** Something that happened to the pool. */
export type PoolEvent =
  /** A workflow run begins (first run, or after continue-as-new): calls in flight in the last run are gone. */
  /**
   * A workflow run starts. `laneMoves`: this run may move nodes between lanes (back to a preferred lane, the
   * on-demand floor); the workflow turns it on behind a patch, so runs recorded before it replay unchanged.
   */
  | { type: 'started'; laneMoves?: boolean; scaleIn?: boolean }
  /** The clock reached the wake-up time the machine asked for. */
  | { type: 'timerFired' }
  | { type: 'jobArrived'; arrival: JobArrival }
  | { type: 'jobFinished'; jobId: string; attempt: number }
  | { type: 'jobWithdrawn'; jobId: string }
  /** Many jobs left at once (the front door's batch of abandoned parked requests): as many jobWithdrawn, in one step. */
  | { type: 'jobsWithdrawn'; jobIds: string[] }
  | { type: 'configChanged'; config: PoolConfig }
  | { type: 'drainRequested' }
  | { type: 'resumeRequested' }
  | { type: 'scaleToZeroRequested' }
  | { type: 'warmRequested'; nodes: number }
  /** `onlyIfIdle`: stop only if no job is queued or running when the machine takes the event (else refused). */
  | { type: 'stopRequested'; drainTimeoutSeconds: number; then: 'idle' | 'warm'; onlyIfIdle?: boolean }
  | { type: 'preemptRequested' }
  /** An API process renews, releases and asks for slot leases (the front door's fast path; see slot-leases.ts). */
  | { type: 'leasesExchanged'; exchange: LeaseExchange }
  | {
      type: 'nodeProvisioned';
      command: Extract<PoolCommand, { type: 'provision' }>;
      url: string;
      laneIndex: number;
      /** The price the provider's own API states for what it started (absent: the lane's declared price applies). */
      price?: ProviderPrice;
    }
  | { type: 'nodeReady'; command: Extract<PoolCommand, { type: 'waitReady' }>; url: string }
  | { type: 'nodeTerminated'; command: Extract<PoolCommand, { type: 'terminate' }> }
  | { type: 'nodeStopped'; command: Extract<PoolCommand, { type: 'stop' }> }
  | { type: 'nodeStarted'; command: Extract<PoolCommand, { type: 'start' }>; url: string }
  | { type: 'nodeSlept'; command: Extract<PoolCommand, { type: 'sleep' }> }
  | { type: 'nodeWoke'; command: Extract<PoolCommand, { type: 'wake' }> }
  | { type: 'healthChecked'; statuses: NodeHealth[] }
  | { type: 'reconciled'; removed: string[] }
  | { type: 'jobTold'; jobId: string }
  | { type: 'ledgerRecorded'; key: string }
  /** Any command failed (after its own retries): the machine decides what follows. */
  | { type: 'commandFailed'; command: PoolCommand; error: string };

/** What one step answers to the caller that sent the event, beyond the pool's view: the plan of an operator's preemption, or a lease exchange's answer. */
export type PoolReply = PreemptionCheck | LeaseAnswer | StopRefused;

/** A stop `onlyIfIdle` found work: nothing was stopped. */
export interface StopRefused {
  stopRefused: string;
}

/** The result of one step. */
export interface StepResult {
  state: PoolState;
  commands: PoolCommand[];
  /** Workflow time (ms) at which the machine wants a `timerFired` event; absent: only events wake it. */
  wakeAt?: number;
  reply?: PoolReply;
}

/** What a booting node's wait reports as it goes (the heartbeat of waitNodeReady): the provider's status. */
export interface BootProgress {
  nodeId: string;
  reason?: string;
}
