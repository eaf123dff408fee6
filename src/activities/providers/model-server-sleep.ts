/**
 * vLLM's sleep mode, the sleeping rung's two calls to a node's model server (vLLM started with
 * `--enable-sleep-mode`; the mock node answers the same): `POST /sleep?level=1` offloads the weights to host memory
 * and frees the VRAM; `POST /wake_up` loads them back and answers once the model serves again.
 *
 * Failure model: an answer other than 2xx is the server's refusal (no sleep mode, requests still running, a wake
 * that failed) and is final; a network error or a timeout is thrown as it is, for the activity's retries (a node
 * that died while asleep fails every retry, and the pool then terminates it and creates a fresh one).
 */
import { type NodeSecrets, nodeAuthHeaders } from '../../secrets/node-secrets';

/** A model server's own refusal of a sleep or a wake. */
export class SleepRefusedError extends Error {
  override name = 'SleepRefused';
}

/** Puts the model server at `url` to sleep (level 1: weights kept in host memory, so a wake is seconds). */
export async function sleepModelServer(nodeId: string, url: string, options: { secrets?: NodeSecrets; timeoutMs?: number }): Promise<void> {
  await call(nodeId, `${url}/sleep?level=1`, options.secrets, options.timeoutMs ?? 30_000);
}

/** Wakes the model server at `url`; resolves once it serves again. */
export async function wakeModelServer(nodeId: string, url: string, options: { secrets?: NodeSecrets; timeoutMs?: number }): Promise<void> {
  await call(nodeId, `${url}/wake_up`, options.secrets, options.timeoutMs ?? 120_000);
}

async function call(nodeId: string, url: string, secrets: NodeSecrets | undefined, timeoutMs: number): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: nodeAuthHeaders(secrets, nodeId), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new SleepRefusedError(`${new URL(url).pathname} answered ${res.status}: ${text.slice(0, 200)}`);
}
