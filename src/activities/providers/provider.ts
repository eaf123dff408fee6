/** The one interface every capacity provider implements, and its typed errors. */
import type { Lane } from '../../domain/types';
import type { PoolKey } from '../../ids';
import type { ProviderPrice } from '../../domain/pool-protocol';

/** What the pool asks a provider for. */
export interface ProvisionRequest {
  poolId: PoolKey;
  nodeId: string;
  model: string;
  lane: Lane;
  laneIndex: number;
}

/** A node the provider accepted (it may still be booting). */
export interface ProvisionedNode {
  nodeId: string;
  laneIndex: number;
  url: string;
  /** The price the provider's API states for what it started (absent: the lane's declared price). */
  price?: ProviderPrice;
}

/** What the provider knows about a node now. */
export interface NodeStatus {
  nodeId: string;
  exists: boolean;
  healthy: boolean;
  url?: string;
  reason?: string;
  /**
   * Set when the machine runs and only its model server does not answer healthy yet: where to probe it. Probing
   * the node itself costs the provider's API nothing, so the readiness wait can do it often (see waitNodeReady).
   */
  modelServer?: { url: string; healthPath: string };
}

/** A source of GPU nodes. Every method is idempotent by node id. */
export interface Provider {
  readonly name: string;
  provision(request: ProvisionRequest): Promise<ProvisionedNode>;
  describe(poolId: PoolKey, nodeId: string): Promise<NodeStatus>;
  terminate(poolId: PoolKey, nodeId: string): Promise<void>;
  /** Node ids this provider holds for a pool, stopped ones included (for orphan reconciliation). */
  list(poolId: PoolKey): Promise<string[]>;
  /**
   * The stopped rung (optional): releases the node's compute and keeps its disk; idempotent. A provider without
   * it cannot stop nodes, and the pool terminates them instead.
   */
  stop?(poolId: PoolKey, nodeId: string): Promise<void>;
  /**
   * Starts a stopped node again; the address it will answer on (it then boots, and `describe` says when it is
   * healthy). CapacityUnavailableError when its host or zone has no GPU for it now: the pool then terminates it
   * and creates a fresh node.
   */
  start?(poolId: PoolKey, nodeId: string): Promise<{ url: string }>;
}

/** The lane has no capacity now: try the next lane. */
export class CapacityUnavailableError extends Error {
  override readonly name = 'CapacityUnavailable';
}

/** Credentials refused: retrying will not help. */
export class AuthFailedError extends Error {
  override readonly name = 'AuthFailed';
}

/** The provider refused the request as malformed: retrying will not help. */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequest';
}
