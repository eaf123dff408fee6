/**
 * Per-workspace quotas, set by the admin: how many pools a workspace may have, how many nodes its pools may
 * reach together (the sum of their `maxNodes`: what it could ever hold at once), and the most urgent service
 * priority it may give its services (1 is the most urgent; VRAM admission stops idle services of a lower
 * priority, so a tenant's floor keeps it from claiming the right to stop the admin's), the VRAM its services may
 * hold together (each service's vramGb × its maxNodes) and how many OpenAI requests it may have parked waiting
 * for capacity. Concurrent jobs are bounded by the workspace's maxJobsInFlight. Null: unlimited.
 */

export interface WorkspaceQuotas {
  maxPools: number | null;
  maxNodes: number | null;
  /** The smallest (most urgent) priority number its services may use. */
  minServicePriority: number;
  /** GB of VRAM its services may claim together at their maxNodes. */
  maxVramGb: number | null;
  /** OpenAI requests it may have parked at once (per API process). */
  maxParkedRequests: number | null;
}

/** What a workspace created through the API gets unless the admin says otherwise. */
export const NEW_WORKSPACE_QUOTAS: WorkspaceQuotas = {
  maxPools: 20,
  maxNodes: 64,
  minServicePriority: 2,
  maxVramGb: 160,
  maxParkedRequests: 2000,
};

/** What the workspace already holds. */
export interface QuotaUsage {
  pools: number;
  /** Sum of its pools' maxNodes. */
  nodes: number;
  /** Sum over its services of vramGb × maxNodes. */
  vramGb: number;
}

/** Why adding a pool (or raising one's maxNodes by `addedNodes`) is refused; undefined when it fits. */
export function poolQuotaRefusal(
  quotas: WorkspaceQuotas,
  usage: QuotaUsage,
  change: { newPool: boolean; addedNodes: number; addedVramGb?: number },
): string | undefined {
  if (change.newPool && quotas.maxPools !== null && usage.pools + 1 > quotas.maxPools)
    return `the workspace may have ${quotas.maxPools} pool(s) and has ${usage.pools}`;
  if (change.addedNodes > 0 && quotas.maxNodes !== null && usage.nodes + change.addedNodes > quotas.maxNodes)
    return `the workspace's pools may reach ${quotas.maxNodes} node(s) together; they reach ${usage.nodes} and this adds ${change.addedNodes}`;
  const addedVramGb = change.addedVramGb ?? 0;
  if (addedVramGb > 0 && quotas.maxVramGb !== null && usage.vramGb + addedVramGb > quotas.maxVramGb)
    return `the workspace's services may claim ${quotas.maxVramGb} GB of VRAM together (vramGb × maxNodes); they claim ${round(usage.vramGb)} and this adds ${round(addedVramGb)}`;
  return undefined;
}

/** Why a service priority is refused; undefined when the workspace may use it. */
export function servicePriorityRefusal(quotas: WorkspaceQuotas, priority: number): string | undefined {
  return priority < quotas.minServicePriority
    ? `priority ${priority} is more urgent than this workspace may use (${quotas.minServicePriority}–5; the admin sets minServicePriority)`
    : undefined;
}

const round = (gb: number) => Math.round(gb * 100) / 100;
