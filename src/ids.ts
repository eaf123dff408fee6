/** Workflow and entity id helpers: never build these strings at call sites. */

/** Workflow id of the long-running entity workflow that owns a pool. */
export function poolWorkflowId(poolId: string): string {
  return `pool:${poolId}`;
}

/** Workflow id of one job's workflow. */
export function jobWorkflowId(jobId: string): string {
  return `job:${jobId}`;
}

/** Node id: unique per pool, deterministic so provisioning retries land on the same node. */
export function nodeId(poolId: string, sequence: number): string {
  return `${poolId}-n${sequence}`;
}

/** Pool ids and job ids share one safe alphabet (they end up in workflow ids, file names and labels). */
export const ENTITY_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
