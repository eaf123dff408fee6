/**
 * Per-workspace quotas, set by the admin: how many pools a workspace may have, how many nodes its pools may
 * reach together (the sum of their `maxNodes`: what it could ever hold at once), and the most urgent service
 * priority it may give its services (1 is the most urgent; VRAM admission stops idle services of a lower
 * priority, so a tenant's floor keeps it from claiming the right to stop the admin's). Null: unlimited.
 */

export interface WorkspaceQuotas {
  maxPools: number | null;
  maxNodes: number | null;
  /** The smallest (most urgent) priority number its services may use. */
  minServicePriority: number;
}

/** What a workspace created through the API gets unless the admin says otherwise. */
export const NEW_WORKSPACE_QUOTAS: WorkspaceQuotas = { maxPools: 20, maxNodes: 64, minServicePriority: 2 };

/** What the workspace already holds. */
export interface QuotaUsage {
  pools: number;
  /** Sum of its pools' maxNodes. */
  nodes: number;
}

/** Why adding a pool (or raising one's maxNodes by `addedNodes`) is refused; undefined when it fits. */
export function poolQuotaRefusal(
  quotas: WorkspaceQuotas,
  usage: QuotaUsage,
  change: { newPool: boolean; addedNodes: number },
): string | undefined {
  if (change.newPool && quotas.maxPools !== null && usage.pools + 1 > quotas.maxPools)
    return `the workspace may have ${quotas.maxPools} pool(s) and has ${usage.pools}`;
  if (change.addedNodes > 0 && quotas.maxNodes !== null && usage.nodes + change.addedNodes > quotas.maxNodes)
    return `the workspace's pools may reach ${quotas.maxNodes} node(s) together; they reach ${usage.nodes} and this adds ${change.addedNodes}`;
  return undefined;
}

/** Why a service priority is refused; undefined when the workspace may use it. */
export function servicePriorityRefusal(quotas: WorkspaceQuotas, priority: number): string | undefined {
  return priority < quotas.minServicePriority
    ? `priority ${priority} is more urgent than this workspace may use (${quotas.minServicePriority}–5; the admin sets minServicePriority)`
    : undefined;
}
