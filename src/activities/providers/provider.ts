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
  /** Node ids this provider holds for a pool (for orphan reconciliation). */
  list(poolId: PoolKey): Promise<string[]>;
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
