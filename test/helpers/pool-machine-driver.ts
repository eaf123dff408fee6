/** The pool machine driven by hand for unit tests: events in, commands out, the clock moved by the test. */
import assert from 'node:assert/strict';
import { asPoolKey, nodeId } from '../../src/ids';
import { newPoolState, stepPool } from '../../src/domain/pool-machine';
import type { PoolCommand, PoolEvent } from '../../src/domain/pool-protocol';
import type { Lane, PoolConfig, PoolState } from '../../src/domain/types';
import { poolConfig } from './stack';

export type Of<T extends PoolCommand['type']> = Extract<PoolCommand, { type: T }>;

/** The warm-state ladder tests' pool: one-slot nodes on `lane`, a 600 s idle timeout, a 30 s grace. */
export function ladderPoolConfig(lane: Lane, overrides: Partial<PoolConfig> = {}): PoolConfig {
  return poolConfig({
    slotsPerNode: 1,
    maxNodes: 2,
    idleTimeoutSeconds: 600,
    teardownGraceSeconds: 30,
    healthCheckIntervalSeconds: 15,
    lanes: [lane],
    ...overrides,
  });
}

/** Drives the pure machine by hand: events in, commands out, the clock moved by the test. */
export class Machine {
  state: PoolState;
  now = 1_000_000;
  wakeAt?: number;
  /** Commands of the last step (log lines left out). */
  last: PoolCommand[] = [];
  /** Every command so far. */
  all: PoolCommand[] = [];

  constructor(config: PoolConfig, start = true) {
    this.state = newPoolState(asPoolKey('p'), config);
    if (start) {
      this.send({ type: 'started', laneMoves: true });
      this.settleReconcile();
    }
  }

  send(event: PoolEvent): PoolCommand[] {
    const before = JSON.stringify(this.state);
    const result = stepPool(this.state, event, this.now, nodeId);
    assert.equal(JSON.stringify(this.state), before, 'the step never changes the state it was given');
    this.state = result.state;
    this.wakeAt = result.wakeAt;
    const commands: PoolCommand[] = result.commands.filter((c) => c.type !== 'log');
    this.all.push(...commands);
    // Ledger writes succeed at once (their acknowledgements are events too, and may release a reconciliation).
    for (const c of commands) if (c.type === 'recordLedger') commands.push(...this.send({ type: 'ledgerRecorded', key: c.row.key }));
    this.last = commands;
    return commands;
  }

  /** Moves the clock to the wake-up time the machine asked for and fires the timer. */
  fire(): PoolCommand[] {
    assert.ok(this.wakeAt !== undefined, 'the machine asked for a wake-up');
    this.now = this.wakeAt;
    return this.send({ type: 'timerFired' });
  }

  /** Fires timers (answering health checks and reconciliations as healthy and clean) until the machine asks for `type`. */
  fireUntil<T extends PoolCommand['type']>(type: T): Of<T> {
    for (let i = 0; i < 200; i++) {
      const commands = this.fire();
      const check = this.find('checkHealth', commands);
      if (check)
        this.send({ type: 'healthChecked', statuses: check.nodes.map((n) => ({ nodeId: n.nodeId, exists: true, healthy: true })) });
      if (this.find('reconcile', commands)) this.send({ type: 'reconciled', removed: [] });
      const found = this.find(type, commands);
      if (found) return found;
    }
    throw new Error(`no ${type} command`);
  }

  /** Runs job `j1` on a fresh node until it finishes a second later: the pool is idle, its idle timer running. */
  ranOneJob(): this {
    this.arrive('j1');
    this.bringUp();
    this.now += 1000;
    this.send({ type: 'jobFinished', jobId: 'j1', attempt: 1 });
    return this;
  }

  at(ms: number): this {
    this.now = ms;
    return this;
  }

  settleReconcile(): void {
    const reconcile = this.find('reconcile');
    if (reconcile) this.send({ type: 'reconciled', removed: [] });
  }

  find<T extends PoolCommand['type']>(type: T, commands = this.last): Of<T> | undefined {
    return commands.find((c): c is Of<T> => c.type === type);
  }
  findAll<T extends PoolCommand['type']>(type: T, commands = this.last): Of<T>[] {
    return commands.filter((c): c is Of<T> => c.type === type);
  }
  ledger(eventType: string): Array<Of<'recordLedger'>['row']> {
    return this.findAll('recordLedger', this.all)
      .map((c) => c.row)
      .filter((r) => r.eventType === eventType);
  }

  arrive(jobId: string, extra: Partial<Extract<PoolEvent, { type: 'jobArrived' }>['arrival']> = {}): PoolCommand[] {
    return this.send({ type: 'jobArrived', arrival: { jobId, attempt: 1, front: false, ...extra } });
  }

  /** Provisions and boots the node the last step asked for. */
  bringUp(url = 'http://node'): PoolCommand[] {
    const waiting = (c: Of<'provision'>) => this.state.nodes.some((n) => n.id === c.nodeId && n.inFlight === 'provision');
    const provision = this.findAll('provision', this.all).find(waiting);
    assert.ok(provision, 'a provision command');
    this.send({ type: 'nodeProvisioned', command: provision, url, laneIndex: provision.laneIndex });
    const wait = this.find('waitReady');
    assert.ok(wait, 'a waitReady command after the provider accepted the node');
    return this.send({ type: 'nodeReady', command: wait, url });
  }
}
