/** Workflow and entity id helpers: never build these strings at call sites. */

/** Pool ids, workspace ids and job ids share one safe alphabet (they end up in workflow ids, file names and labels). */
export const ENTITY_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The bootstrap workspace: the admin key acts in it, and data made before workspaces existed belongs to it. */
export const DEFAULT_WORKSPACE = 'default';

/**
 * A pool's key (`<workspace>.<pool name>`, or the bare name in the bootstrap workspace). Branded so that a bare
 * pool name (what the API calls a pool's `id`) cannot be passed where the key is meant. Persisted state and
 * activity inputs name it `poolId` for compatibility with histories already recorded; its type says which it is.
 */
export type PoolKey = string & { readonly __brand: 'PoolKey' };

/**
 * A pool's key: unique across workspaces, used wherever Temporal or a provider names the pool (workflow ids,
 * node ids). Pool names are unique only within their workspace. Pools of the bootstrap workspace keep their
 * bare name, so pools made before workspaces existed keep their workflows; "." never occurs in a name, so
 * the two forms cannot collide.
 */
export function poolKey(workspaceId: string, poolName: string): PoolKey {
  return (workspaceId === DEFAULT_WORKSPACE ? poolName : `${workspaceId}.${poolName}`) as PoolKey;
}

/** The workspace and pool name a pool key stands for. */
export function splitPoolKey(key: PoolKey): { workspaceId: string; poolName: string } {
  const dot = key.indexOf('.');
  return dot < 0 ? { workspaceId: DEFAULT_WORKSPACE, poolName: key } : { workspaceId: key.slice(0, dot), poolName: key.slice(dot + 1) };
}

/** A pool key read back from storage or a label written by zeropool (the one place a string becomes a key). */
export function asPoolKey(stored: string): PoolKey {
  return stored as PoolKey;
}

/** Workflow id of the long-running entity workflow that owns a pool (by pool key). */
export function poolWorkflowId(poolKey: PoolKey): string {
  return `pool:${poolKey}`;
}

/** Workflow id of one job's workflow. */
export function jobWorkflowId(jobId: string): string {
  return `job:${jobId}`;
}

/** Node id: unique across pools and workspaces (it starts with the pool key), deterministic so provisioning retries land on the same node. */
export function nodeId(poolKey: PoolKey, sequence: number, incarnation?: string): string {
  // The incarnation keeps a re-created pool's nodes (and their ledger keys) apart from an earlier one's.
  return incarnation ? `${poolKey}-${incarnation}-n${sequence}` : `${poolKey}-n${sequence}`;
}

/** Workflow id of the child that delivers a job's callback and terminal notification (it outlives the job). */
export function jobDeliveryWorkflowId(jobId: string): string {
  return `job-delivery:${jobId}`;
}

/**
 * Temporal task priority of a workspace's workflows, inherited by their activities: the workspace is the
 * fairness key, so when tasks back up on the shared task queue each workspace gets its share of dispatch
 * (matching.enableFairness) instead of one workspace's burst going first.
 */
export function workspacePriority(workspaceId: string): { fairnessKey: string } {
  return { fairnessKey: workspaceId.slice(0, 64) };
}

/** The registered type of the live pool workflow (src/workflows/pool.ts); pools started under it keep it. */
export const POOL_WORKFLOW_TYPE = 'poolWorkflowV2';
