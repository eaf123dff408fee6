/**
 * The API process's side of slot leases (src/domain/slot-leases.ts): the leases it holds per pool, which
 * slot a warm request takes (in memory, no Temporal call), and the exchange with each pool workflow every
 * LEASE_RENEW_MS that renews them, gives back revoked ones once their requests are done, asks for more, and
 * reports what was served (the pool's idle timer sees it).
 * A lease is used only until (time the exchange was sent) + ttl − LEASE_SAFETY_MS, so this process stops
 * before the pool counts it expired, and stops altogether when the process dies.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { LEASE_RENEW_MS, LEASE_SAFETY_MS, type LeaseAnswer, type LeaseExchange, type LeaseGrant } from '../domain/slot-leases';
import type { PoolConfig } from '../domain/types';
import { poolWorkflowId, type PoolKey } from '../ids';
import { exchangeLeasesUpdate } from '../workflows/messages';
import { withTimeout } from './query';

/** Leases unused this long are given back. */
const RELEASE_UNUSED_MS = 60_000;
/** After a failed exchange (pool not running, Temporal unreachable), the next waits this long. */
const EXCHANGE_BACKOFF_MS = 1000;
/** Exchanges asked for by demand are at least this far apart (overflow must not flood the pool workflow). */
const MIN_EXCHANGE_GAP_MS = 250;
/**
 * How long `close` waits for the pools to take their leases back. A pool whose worker is gone never answers; its
 * leases lapse at their TTL anyway, and the process still has its last ledger rows to write.
 */
const CLOSE_WAIT_MS = 5000;

interface HeldLease {
  grant: LeaseGrant;
  inFlight: number;
  usableUntil: number;
  revoked: boolean;
}

interface PoolBook {
  key: PoolKey;
  leases: Map<string, HeldLease>;
  /** Requests started on leases since the last exchange. */
  served: number;
  /** Slots to ask for when none is free. */
  want: number;
  lastUsedAt: number;
  exchanging: boolean;
  again: boolean;
  notBefore: number;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
}

/** A slot taken on a lease: call `done` exactly once when the request is over. */
export interface LeasedSlot {
  leaseId: string;
  nodeId: string;
  nodeUrl: string;
  /** The request is over; `nodeFailed`: the node failed it, so this process stops using that lease. */
  done(nodeFailed?: boolean): void;
}

export class LeaseBook {
  readonly holder = `api-${hostname()}-${randomUUID().slice(0, 8)}`;
  private readonly books = new Map<string, PoolBook>();
  private closed = false;

  constructor(
    private readonly client: Client,
    private readonly log: Logger,
  ) {}

  /** A free leased slot of the pool, taken now; undefined sends the request the workflow way (and asks for leases). */
  take(key: PoolKey, config: Pick<PoolConfig, 'slotsPerNode' | 'maxNodes'>): LeasedSlot | undefined {
    if (this.closed) return undefined;
    const book = this.book(key);
    const now = Date.now();
    book.lastUsedAt = now;
    book.want = Math.min(10_000, config.slotsPerNode * config.maxNodes);
    let best: HeldLease | undefined;
    for (const lease of book.leases.values()) {
      if (lease.revoked || now >= lease.usableUntil || lease.inFlight >= lease.grant.slots) continue;
      if (!best || lease.inFlight / lease.grant.slots < best.inFlight / best.grant.slots) best = lease;
    }
    if (!best) {
      this.exchangeSoon(book);
      return undefined;
    }
    const lease = best;
    lease.inFlight += 1;
    book.served += 1;
    let over = false;
    return {
      leaseId: lease.grant.leaseId,
      nodeId: lease.grant.nodeId,
      nodeUrl: lease.grant.nodeUrl,
      done: (nodeFailed = false) => {
        if (over) return;
        over = true;
        lease.inFlight -= 1;
        if (nodeFailed) lease.revoked = true;
        if (lease.revoked && lease.inFlight === 0) this.exchangeSoon(book);
      },
    };
  }

  /** Slots this process holds on a pool now (usable ones). */
  heldSlots(key: PoolKey): number {
    const now = Date.now();
    let slots = 0;
    for (const lease of this.books.get(key)?.leases.values() ?? [])
      if (!lease.revoked && now < lease.usableUntil) slots += lease.grant.slots;
    return slots;
  }

  /** Gives every lease back (at shutdown), waiting for nothing but the exchanges, and for them CLOSE_WAIT_MS at most. */
  async close(): Promise<void> {
    this.closed = true;
    const givenBack = Promise.all(
      [...this.books.values()].map(async (book) => {
        clearTimeout(book.timer);
        for (const lease of book.leases.values()) lease.revoked = true;
        if (book.leases.size > 0) await this.exchange(book, true).catch(() => undefined);
      }),
    );
    if (
      (await withTimeout(
        givenBack.then(() => true),
        CLOSE_WAIT_MS,
      )) === undefined
    ) {
      this.log.warn({ waitedMs: CLOSE_WAIT_MS }, 'slot leases not taken back at shutdown: the pools let them lapse');
    }
  }

  private book(key: PoolKey): PoolBook {
    let book = this.books.get(key);
    if (!book) {
      book = {
        key,
        leases: new Map(),
        served: 0,
        want: 1,
        lastUsedAt: Date.now(),
        exchanging: false,
        again: false,
        notBefore: 0,
        timer: undefined,
        timerAt: 0,
      };
      this.books.set(key, book);
    }
    return book;
  }

  private exchangeSoon(book: PoolBook): void {
    if (book.exchanging) {
      book.again = true;
      return;
    }
    const at = Math.max(Date.now(), book.notBefore);
    if (book.timer && book.timerAt <= at) return;
    this.schedule(book, at);
  }

  private schedule(book: PoolBook, at: number): void {
    clearTimeout(book.timer);
    book.timerAt = at;
    book.timer = setTimeout(() => void this.exchange(book), Math.max(0, at - Date.now()));
    book.timer.unref();
  }

  private async exchange(book: PoolBook, final = false): Promise<void> {
    if (book.exchanging) {
      book.again = true;
      return;
    }
    clearTimeout(book.timer);
    book.timer = undefined;
    book.exchanging = true;
    const sentAt = Date.now();
    const unused = sentAt - book.lastUsedAt > RELEASE_UNUSED_MS;
    const release: string[] = [];
    const held: LeaseExchange['held'] = [];
    for (const [id, lease] of book.leases) {
      if ((lease.revoked || unused || final) && lease.inFlight === 0) release.push(id);
      else held.push({ leaseId: id, inFlight: lease.inFlight });
    }
    const usable = [...book.leases.values()].some((l) => !l.revoked && sentAt < l.usableUntil && l.inFlight < l.grant.slots);
    const served = book.served;
    book.served = 0;
    const exchange: LeaseExchange = {
      holder: this.holder,
      want: final || unused || usable ? 0 : book.want,
      held,
      release,
      served,
    };
    let answer: LeaseAnswer | undefined;
    try {
      answer = await this.client.workflow.getHandle(poolWorkflowId(book.key)).executeUpdate(exchangeLeasesUpdate, { args: [exchange] });
    } catch (err) {
      book.served += served;
      book.notBefore = Date.now() + EXCHANGE_BACKOFF_MS;
      this.log.debug({ poolId: book.key, err: String(err) }, 'slot lease exchange failed');
    }
    if (answer) book.notBefore = Date.now() + MIN_EXCHANGE_GAP_MS;
    if (answer) {
      for (const id of release) book.leases.delete(id);
      const usableUntil = sentAt + answer.ttlMs - LEASE_SAFETY_MS;
      for (const id of answer.renewed) {
        const lease = book.leases.get(id);
        if (lease && !lease.revoked) lease.usableUntil = usableUntil;
      }
      for (const id of answer.revoked) {
        const lease = book.leases.get(id);
        if (!lease) continue;
        lease.revoked = true;
        if (lease.inFlight === 0) book.again = true;
      }
      for (const grant of answer.granted) book.leases.set(grant.leaseId, { grant, inFlight: 0, usableUntil, revoked: false });
      if (answer.granted.length > 0)
        this.log.info(
          { poolId: book.key, leases: answer.granted.map((g) => ({ nodeId: g.nodeId, slots: g.slots })) },
          'slot leases granted',
        );
    }
    book.exchanging = false;
    if (this.closed) return;
    if (book.again) {
      book.again = false;
      this.exchangeSoon(book);
    } else if (book.leases.size > 0 || book.served > 0) {
      this.schedule(book, Date.now() + LEASE_RENEW_MS);
    }
  }
}
