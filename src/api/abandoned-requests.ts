/**
 * Parked front-door requests whose clients left, ended cheaply: their pool is told in batches (one
 * `jobsWithdrawn` signal per pool per short window, not one signal and workflow task per request), and their
 * workflows are terminated a few at a time (a termination takes no workflow task, and a bounded number in flight
 * keeps the Temporal server answering everyone else, pool views included, while a flood is worked off).
 *
 * Failure model: a lost batch (the API process dies, the pool workflow is unreachable) costs no slot for long:
 * when the pool places a request whose workflow is gone its message fails and the pool releases the slot (pool
 * machine, `tellJob` failed). A termination that fails is reported to the caller, which falls back to telling
 * the workflow to end (see FrontDoor.abandonParked).
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Logger } from 'pino';
import { type PoolKey, poolWorkflowId } from '../ids';
import { jobsWithdrawnSignal } from '../workflows/messages';

export interface AbandonedRequestsOptions {
  /** A pool's batch goes this long after its first id… */
  maxDelayMs: number;
  /** …or at this many ids. */
  maxIds: number;
  /** Terminations in flight at once. */
  maxTerminating: number;
}

const DEFAULTS: AbandonedRequestsOptions = { maxDelayMs: 50, maxIds: 500, maxTerminating: 8 };

export class AbandonedRequests {
  private readonly pending = new Map<PoolKey, string[]>();
  private readonly timers = new Map<PoolKey, NodeJS.Timeout>();
  private readonly sending = new Set<Promise<void>>();
  private readonly waitingToTerminate: Array<() => void> = [];
  private terminating = 0;
  private readonly options: AbandonedRequestsOptions;

  constructor(
    private readonly client: Client,
    private readonly log: Logger,
    options: Partial<AbandonedRequestsOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Takes the request out of its pool (in the pool's next batch). */
  withdraw(poolKey: PoolKey, jobId: string): void {
    const ids = this.pending.get(poolKey) ?? [];
    ids.push(jobId);
    this.pending.set(poolKey, ids);
    if (ids.length >= this.options.maxIds) this.flush(poolKey);
    else if (!this.timers.has(poolKey)) {
      this.timers.set(
        poolKey,
        setTimeout(() => this.flush(poolKey), this.options.maxDelayMs),
      );
    }
  }

  /**
   * Terminates the request's workflow once a place among the terminations in flight is free, if `stillDue()`
   * holds then (it may have waited behind a flood): `false` when it did not. Throws as terminate does.
   */
  async terminate(handle: WorkflowHandle, reason: string, stillDue: () => boolean): Promise<boolean> {
    if (this.terminating >= this.options.maxTerminating) await new Promise<void>((resolve) => this.waitingToTerminate.push(resolve));
    this.terminating += 1;
    try {
      if (!stillDue()) return false;
      await handle.terminate(reason);
      return true;
    } finally {
      this.terminating -= 1;
      this.waitingToTerminate.shift()?.();
    }
  }

  /** Sends every pool's batch now and waits for the sends (at shutdown). */
  async close(): Promise<void> {
    for (const poolKey of [...this.pending.keys()]) this.flush(poolKey);
    await Promise.all(this.sending);
  }

  private flush(poolKey: PoolKey): void {
    clearTimeout(this.timers.get(poolKey));
    this.timers.delete(poolKey);
    const jobIds = this.pending.get(poolKey);
    this.pending.delete(poolKey);
    if (!jobIds?.length) return;
    const send = this.client.workflow
      .getHandle(poolWorkflowId(poolKey))
      .signal(jobsWithdrawnSignal, { jobIds })
      .catch((err) => this.log.warn({ poolId: poolKey, requests: jobIds.length, err: String(err) }, 'withdrawals not told to the pool'))
      .finally(() => this.sending.delete(send));
    this.sending.add(send);
  }
}
