/**
 * Slot leases: the warm fast path of the front door. The pool grants an API process some free slots of a ready
 * node for a short time; the process routes requests to them in memory and, every LEASE_RENEW_MS, renews them
 * in one exchange that also reports what it served (the idle timer sees it). Rules kept here, pure:
 * - a leased slot is held in `node.slots` as `lease:<id>`, so jobs are never placed on it;
 * - leases go only from spare capacity: nothing queued, the pool not stopping or draining, the node ready,
 *   healthy and not retiring, and a reserve of each node's slots (unlentReserve) kept for the workflow way;
 * - any reason to take the slots back (queued jobs, a node to terminate, retire or distrust, a stop) revokes
 *   leases; the holder stops routing at its next exchange and releases them once its requests there are done;
 * - a node is terminated only when no lease holds a slot on it (released, or expired: a holder that stopped
 *   renewing, e.g. a dead API process, loses its lease after LEASE_TTL_MS);
 * - the holder's own deadline is taken from when it sent the exchange, so it always stops using a lease
 *   before the pool counts it expired.
 */
import type { NodeRecord, PoolState, SlotLease } from './types';

export type { SlotLease } from './types';

/** How long a granted or renewed lease lasts without another renewal. */
export const LEASE_TTL_MS = 10_000;
/** How often a holder renews (and reports). */
export const LEASE_RENEW_MS = 2_000;
/** The holder stops routing this long before its lease would run out. */
export const LEASE_SAFETY_MS = 1_000;
/** At most this many leases in one pool (bounded state). */
export const MAX_LEASES = 256;

const MARK = 'lease:';

/** What an API process sends every LEASE_RENEW_MS (or sooner when it needs slots). */
export interface LeaseExchange {
  holder: string;
  /** Slots it would like on top of what it holds (0: none). */
  want: number;
  /** Leases it holds, with its requests in flight on each. */
  held: Array<{ leaseId: string; inFlight: number }>;
  /** Leases it gives back (revoked ones once idle, or no longer needed). */
  release: string[];
  /** Requests it started on its leases since its last exchange. */
  served: number;
}

/** A lease granted now. */
export interface LeaseGrant {
  leaseId: string;
  nodeId: string;
  nodeUrl: string;
  slots: number;
}

/** The pool's answer to an exchange. */
export interface LeaseAnswer {
  granted: LeaseGrant[];
  /** Held leases still usable, renewed for ttlMs from now. */
  renewed: string[];
  /** Held leases the holder must stop using (revoked, expired or unknown). */
  revoked: string[];
  ttlMs: number;
}

/** Checks an exchange's shape (synchronously, for the update's validator). */
export function validateLeaseExchange(exchange: LeaseExchange): void {
  if (typeof exchange?.holder !== 'string' || exchange.holder.length === 0 || exchange.holder.length > 200)
    throw new Error('holder must be a non-empty string');
  if (!Number.isInteger(exchange.want) || exchange.want < 0 || exchange.want > 10_000) throw new Error('want must be 0 to 10000');
  if (!Number.isInteger(exchange.served) || exchange.served < 0) throw new Error('served must be a non-negative integer');
  if (!Array.isArray(exchange.held) || exchange.held.length > MAX_LEASES) throw new Error(`held must list at most ${MAX_LEASES} leases`);
  if (!Array.isArray(exchange.release) || exchange.release.length > MAX_LEASES)
    throw new Error(`release must list at most ${MAX_LEASES} leases`);
}

export function isLeaseMark(slot: string | null): boolean {
  return slot !== null && slot.startsWith(MARK);
}

/** Slots of a node that hold jobs (leased ones excluded). */
export function jobSlots(node: NodeRecord): number {
  return node.slots.filter((s) => s !== null && !s.startsWith(MARK)).length;
}

/** Whether any lease holds a slot on the node. */
export function nodeHasLeases(node: NodeRecord): boolean {
  return node.slots.some(isLeaseMark);
}

function leasable(state: PoolState, node: NodeRecord): boolean {
  return node.state === 'ready' && node.url !== undefined && !node.suspect && !node.retiring;
}

/** Whether the pool may lend slots at all right now. */
function lending(state: PoolState): boolean {
  return !state.stopping && !state.draining && state.queue.length === 0;
}

function freeSlots(node: NodeRecord): number {
  return node.slots.filter((s) => s === null).length;
}

/**
 * Slots of a node never lent: jobs and requests that come the workflow way (overflow, other API processes)
 * find room without revoking every lease (which would send all warm traffic the slow way for a while).
 */
export function unlentReserve(node: NodeRecord): number {
  return Math.max(1, Math.ceil(node.slots.length / 8));
}

/** Slots of a node that may be lent now. */
function lendable(node: NodeRecord): number {
  return Math.max(0, freeSlots(node) - Math.max(0, unlentReserve(node) - jobSlots(node)));
}

function drop(state: PoolState, lease: SlotLease): void {
  const node = state.nodes.find((n) => n.id === lease.nodeId);
  if (node) node.slots = node.slots.map((s) => (s === MARK + lease.id ? null : s));
  state.leases = (state.leases ?? []).filter((l) => l.id !== lease.id);
}

/**
 * Applies an exchange; `newLeaseId(k)` names the k-th lease granted in it (deterministic ids from the caller).
 * Returns the answer and whether the holder reported activity: requests in flight or served (the idle timer
 * restarts), and new requests served (new work, as an arrival: it cancels a teardown in its grace period).
 */
export function exchangeLeases(
  state: PoolState,
  exchange: LeaseExchange,
  now: number,
  newLeaseId: (k: number) => string,
): { answer: LeaseAnswer; active: boolean; newWork: boolean } {
  const leases = () => state.leases ?? [];
  const mine = (id: string) => leases().find((l) => l.id === id && l.holder === exchange.holder);
  for (const id of exchange.release) {
    const lease = mine(id);
    if (lease) drop(state, lease);
  }
  const renewed: string[] = [];
  const revoked: string[] = [];
  let inFlight = 0;
  for (const { leaseId, inFlight: count } of exchange.held) {
    if (exchange.release.includes(leaseId)) continue;
    const lease = mine(leaseId);
    inFlight += Math.max(0, count);
    if (!lease) {
      revoked.push(leaseId);
      continue;
    }
    if (lease.revoked) {
      // Requests still running there keep the slots taken (and the node up) until they end or the holder goes.
      if (count > 0) lease.expiresAt = now + LEASE_TTL_MS;
      revoked.push(leaseId);
      continue;
    }
    lease.expiresAt = now + LEASE_TTL_MS;
    renewed.push(leaseId);
  }
  const granted: LeaseGrant[] = [];
  if (exchange.want > 0 && lending(state)) {
    let wanted = exchange.want;
    const holding = new Set(
      leases()
        .filter((l) => l.holder === exchange.holder && !l.revoked)
        .map((l) => l.nodeId),
    );
    // Most free slots first, so a holder's requests spread over the pool's nodes.
    const nodes = state.nodes.filter((n) => leasable(state, n) && !holding.has(n.id)).sort((a, b) => lendable(b) - lendable(a));
    for (const node of nodes) {
      if (wanted <= 0 || leases().length >= MAX_LEASES) break;
      const slots = Math.min(wanted, lendable(node));
      if (slots <= 0) continue;
      const lease: SlotLease = {
        id: newLeaseId(granted.length),
        holder: exchange.holder,
        nodeId: node.id,
        slots,
        expiresAt: now + LEASE_TTL_MS,
      };
      let left = slots;
      node.slots = node.slots.map((s) => (s === null && left-- > 0 ? MARK + lease.id : s));
      state.leases = [...leases(), lease];
      granted.push({ leaseId: lease.id, nodeId: node.id, nodeUrl: node.url!, slots });
      wanted -= slots;
    }
  }
  return {
    answer: { granted, renewed, revoked, ttlMs: LEASE_TTL_MS },
    active: exchange.served > 0 || inFlight > 0,
    newWork: exchange.served > 0,
  };
}

/**
 * The lease rules of one step: expired leases free their slots; leases go back wherever the slots are needed
 * or the node is going (see the file comment). Returns the ids of leases revoked now.
 */
export function settleLeases(state: PoolState, now: number): string[] {
  for (const lease of [...(state.leases ?? [])]) {
    const node = state.nodes.find((n) => n.id === lease.nodeId);
    if (!node || lease.expiresAt <= now) drop(state, lease);
  }
  const revokedNow: string[] = [];
  const everything = !lending(state);
  for (const lease of state.leases ?? []) {
    if (lease.revoked) continue;
    const node = state.nodes.find((n) => n.id === lease.nodeId)!;
    if (everything || !leasable(state, node)) {
      lease.revoked = true;
      revokedNow.push(lease.id);
    }
  }
  return revokedNow;
}

/** The earliest lease expiry (the machine wakes then to free the slots). */
export function nextLeaseExpiry(state: PoolState): number | undefined {
  const times = (state.leases ?? []).map((l) => l.expiresAt);
  return times.length > 0 ? Math.min(...times) : undefined;
}
