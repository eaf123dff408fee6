/** Workflow and entity id helpers: never build these strings at call sites. */

/** Pool ids, workspace ids and job ids share one safe alphabet (they end up in workflow ids, file names and labels). */
export const ENTITY_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The bootstrap workspace: the admin key acts in it, and data made before workspaces existed belongs to it. */
export const DEFAULT_WORKSPACE = 'default';

/**
 * A pool's key: unique across workspaces, used wherever Temporal or a provider names the pool (workflow ids,
 * node ids). Pool names are unique only within their workspace. Pools of the bootstrap workspace keep their
 * bare name, so pools made before workspaces existed keep their workflows; "." never occurs in a name, so
 * the two forms cannot collide.
 */
export function poolKey(workspaceId: string, poolId: string): string {
  return workspaceId === DEFAULT_WORKSPACE ? poolId : `${workspaceId}.${poolId}`;
}

/** The workspace and pool name a pool key stands for. */
export function splitPoolKey(key: string): { workspaceId: string; poolId: string } {
  const dot = key.indexOf('.');
  return dot < 0 ? { workspaceId: DEFAULT_WORKSPACE, poolId: key } : { workspaceId: key.slice(0, dot), poolId: key.slice(dot + 1) };
}

/** Workflow id of the long-running entity workflow that owns a pool (by pool key). */
export function poolWorkflowId(poolKey: string): string {
  return `pool:${poolKey}`;
}

/** Workflow id of one job's workflow. */
export function jobWorkflowId(jobId: string): string {
  return `job:${jobId}`;
}

/** Node id: unique across pools and workspaces (it starts with the pool key), deterministic so provisioning retries land on the same node. */
export function nodeId(poolKey: string, sequence: number): string {
  return `${poolKey}-n${sequence}`;
}

/** Workflow id of the child that delivers a job's callback and terminal notification (it outlives the job). */
export function jobDeliveryWorkflowId(jobId: string): string {
  return `job-delivery:${jobId}`;
}
