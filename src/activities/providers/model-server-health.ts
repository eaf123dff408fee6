/** The health check every cloud driver makes of a node's model server once the provider says it runs. */
import { type NodeSecrets, nodeAuthHeaders } from '../../secrets/node-secrets';
import type { NodeStatus } from './provider';

/** GET <url><healthPath> with the node's bearer secret: healthy on 2xx; unreachable or an error status is not. */
export async function checkModelServer(
  nodeId: string,
  url: string,
  healthPath: string,
  options: { secrets?: NodeSecrets; timeoutMs?: number },
): Promise<NodeStatus> {
  try {
    const res = await fetch(`${url}${healthPath}`, {
      headers: nodeAuthHeaders(options.secrets, nodeId),
      signal: AbortSignal.timeout(options.timeoutMs ?? 2000),
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.ok) return { nodeId, exists: true, healthy: true, url };
    return { nodeId, exists: true, healthy: false, url, reason: `health ${res.status}`, modelServer: { url, healthPath } };
  } catch (err) {
    return {
      nodeId,
      exists: true,
      healthy: false,
      url,
      reason: `model server not answering: ${(err as Error).message}`,
      modelServer: { url, healthPath },
    };
  }
}
