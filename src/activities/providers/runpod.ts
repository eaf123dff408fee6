/**
 * RunPod provider: one pod per node through RunPod's REST API v2 (`/v2/pods`, `Authorization: Bearer`).
 * A create places one GPU type and does not fall back by itself, so the driver tries the lane's GPU types in
 * order. Pods carry no labels: ownership is the pod's name and its ZEROPOOL_* environment (which the API
 * returns), and only pods carrying it are listed or deleted. The API has no idempotency key either: a create
 * whose answer is lost is looked up by name before anything is repeated. The node is reached through
 * RunPod's HTTP proxy (`https://{podId}-{port}.proxy.runpod.net`), guarded by the node's bearer secret.
 */
import type { RunpodLane } from '../../domain/pool-config';
import type { ProviderPrice } from '../../domain/pool-protocol';
import { type PoolKey, splitPoolKey } from '../../ids';
import { type NodeSecrets, withNodeToken } from '../../secrets/node-secrets';
import { backoffMs, pause, ProviderHttpError, retryAfterMs, safeJson } from './http-retry';
import { checkModelServer } from './model-server-health';
import {
  AuthFailedError,
  CapacityUnavailableError,
  InvalidRequestError,
  type NodeStatus,
  type ProvisionedNode,
  type Provider,
  type ProvisionRequest,
} from './provider';

/** The public API's base address (paths start with /v2). */
export const RUNPOD_API_URL = 'https://api.runpod.io';
/** Where RunPod's HTTP proxy serves a pod's exposed HTTP port. */
export const RUNPOD_PROXY_URL = 'https://{podId}-{port}.proxy.runpod.net';

/** A pod as the API describes it (the fields zeropool reads; the API sends more). */
export interface RunpodPod {
  id: string;
  name: string;
  status: 'PROVISIONING' | 'STARTING' | 'RUNNING' | 'EXITED' | 'ERROR' | 'TERMINATED';
  env?: Record<string, string>;
  /** What the pod bills now, USD per hour (0 when it does not run). */
  cost?: number;
  gpu?: { id: string; count?: number };
  createdAt?: string;
}

/** The environment every pod zeropool creates carries (how its pods are recognised; the API has no labels). */
export const RUNPOD_ENV = {
  managed: 'ZEROPOOL_MANAGED',
  workspace: 'ZEROPOOL_WORKSPACE',
  pool: 'ZEROPOOL_POOL',
  node: 'ZEROPOOL_NODE',
  port: 'ZEROPOOL_PORT',
  healthPath: 'ZEROPOOL_HEALTH_PATH',
  /** The node's bearer secret, for images that read it (vLLM reads VLLM_API_KEY: set it to "{nodeToken}"). */
  token: 'ZEROPOOL_NODE_TOKEN',
} as const;

/** Pod states that will not serve again: the node is lost. */
const GONE_STATES = new Set<RunpodPod['status']>(['EXITED', 'ERROR', 'TERMINATED']);
/** A 400 whose detail speaks of capacity: RunPod has no machine-readable code for it, only the text. */
const NO_CAPACITY = /no longer any instances|no instances|not enough|capacity|unavailable|no .*available|out of stock|sold out/i;

/** The pod name for a node. */
export function runpodPodName(nodeId: string): string {
  return `zp-${nodeId}`;
}

export interface RunpodProviderOptions {
  apiKey: string;
  /** Another API address (a test fake); absent: the public one. */
  baseUrl?: string;
  /** Where a pod's port is reached, with `{podId}` and `{port}`; absent: RunPod's HTTP proxy. */
  proxyUrl?: string;
  secrets?: NodeSecrets;
  /** Attempts for rate limits, 5xx and network errors within one call (the activity retries beyond). */
  attempts?: number;
  healthTimeoutMs?: number;
  /** How long one API call may take before it counts as lost (default 30 s). */
  requestTimeoutMs?: number;
}

export class RunpodProvider implements Provider {
  readonly name = 'runpod';

  constructor(private readonly options: RunpodProviderOptions) {}

  async provision(request: ProvisionRequest): Promise<ProvisionedNode> {
    const lane = request.lane.runpod;
    if (!lane) throw new InvalidRequestError(`lane ${request.laneIndex} has provider runpod but no runpod fields`);
    const existing = await this.findPod(request.nodeId);
    if (existing) return this.provisioned(request, existing);
    const refusals: string[] = [];
    let shortage = false;
    let forbidden = 0;
    for (const gpuType of lane.gpuTypes) {
      try {
        const pod = await this.call<RunpodPod>('POST', '/v2/pods', this.createBody(request, lane, gpuType));
        return this.provisioned(request, pod);
      } catch (err) {
        if (!(err instanceof ProviderHttpError) || err.status >= 500 || err.status === 429) {
          // The outcome is unknown (lost answer, 5xx) or the API is busy: a pod may exist; look before failing.
          const made = await this.findPod(request.nodeId).catch(() => undefined);
          if (made) return this.provisioned(request, made);
          throw err;
        }
        if (err.status === 401) throw new AuthFailedError(err.message);
        if (err.status === 402) throw new InvalidRequestError(`RunPod account cannot pay for pods: ${err.message}`);
        if (err.status === 422 || err.status === 404) throw new InvalidRequestError(err.message);
        // 400 (a rule or no capacity for this GPU type) and 403 (no access to this GPU pool): next candidate.
        if (err.status === 403) forbidden += 1;
        if (err.status === 400 && NO_CAPACITY.test(err.detail)) shortage = true;
        refusals.push(`${gpuType}: ${err.detail}`);
      }
    }
    const summary = `RunPod placed none of ${lane.gpuTypes.join(', ')} (${refusals.join('; ')})`;
    if (shortage) throw new CapacityUnavailableError(summary);
    if (forbidden === lane.gpuTypes.length) throw new AuthFailedError(summary);
    // Every candidate refused for a rule: RunPod's guidance is to read that as a problem with the request.
    throw new InvalidRequestError(summary);
  }

  async describe(_poolId: PoolKey, nodeId: string): Promise<NodeStatus> {
    const pod = await this.findPod(nodeId);
    if (!pod) return { nodeId, exists: false, healthy: false, reason: 'no such pod' };
    if (GONE_STATES.has(pod.status)) return { nodeId, exists: false, healthy: false, reason: `pod ${pod.id} ${pod.status}` };
    const url = this.urlOf(pod);
    if (pod.status !== 'RUNNING') return { nodeId, exists: true, healthy: false, url, reason: `pod ${pod.status}` };
    return checkModelServer(nodeId, url, pod.env?.[RUNPOD_ENV.healthPath] ?? '/health', {
      secrets: this.options.secrets,
      timeoutMs: this.options.healthTimeoutMs,
    });
  }

  /** Deletes every pod of the node (a create repeated after a lost answer could have made two). */
  async terminate(_poolId: PoolKey, nodeId: string): Promise<void> {
    for (const pod of await this.podsOf(nodeId)) {
      try {
        await this.call('DELETE', `/v2/pods/${encodeURIComponent(pod.id)}`);
      } catch (err) {
        if (err instanceof ProviderHttpError && err.status === 404) continue;
        throw classifyRunpodError(err);
      }
    }
  }

  /**
   * The stopped rung: `POST /v2/pods/{id}/action {"action":"stop"}` releases the pod's GPU and keeps its disk
   * (it shows EXITED). Idempotent: a pod already EXITED is stopped; a 409 (not valid in its state) is looked up.
   */
  async stop(_poolId: PoolKey, nodeId: string): Promise<void> {
    const pod = await this.findPod(nodeId);
    if (!pod) throw new InvalidRequestError(`no pod for node ${nodeId}: nothing to stop`);
    if (pod.status === 'EXITED') return;
    try {
      await this.call('POST', `/v2/pods/${encodeURIComponent(pod.id)}/action`, { action: 'stop' });
    } catch (err) {
      if (err instanceof ProviderHttpError && err.status === 409 && (await this.findPod(nodeId))?.status === 'EXITED') return;
      throw classifyRunpodError(err);
    }
  }

  /**
   * Starts a stopped pod again (`{"action":"start"}`); it then boots toward RUNNING, as `describe` shows. A start
   * RunPod refuses for lack of a GPU (a 400 saying so, as a create does) is CapacityUnavailable. Idempotent: a pod
   * on its way up already (a retried call; a 409) is started.
   */
  async start(_poolId: PoolKey, nodeId: string): Promise<{ url: string }> {
    const pod = await this.findPod(nodeId);
    if (!pod) throw new InvalidRequestError(`no pod for node ${nodeId}: a stopped pod that is gone cannot start`);
    if (pod.status === 'EXITED' || pod.status === 'ERROR') {
      try {
        await this.call('POST', `/v2/pods/${encodeURIComponent(pod.id)}/action`, { action: 'start' });
      } catch (err) {
        const now = err instanceof ProviderHttpError && err.status === 409 ? await this.findPod(nodeId) : undefined;
        if (now && !GONE_STATES.has(now.status)) return { url: this.urlOf(now) };
        if (err instanceof ProviderHttpError && err.status === 400 && NO_CAPACITY.test(err.detail))
          throw new CapacityUnavailableError(`RunPod cannot start pod ${pod.id}: ${err.detail}`);
        throw classifyRunpodError(err);
      }
    }
    return { url: this.urlOf(pod) };
  }

  async list(poolId: PoolKey): Promise<string[]> {
    const pods = await this.ourPods();
    const ids = pods
      .filter((pod) => pod.env?.[RUNPOD_ENV.pool] === poolId && pod.status !== 'TERMINATED')
      .map((pod) => pod.env![RUNPOD_ENV.node]!);
    return [...new Set(ids)];
  }

  private createBody(request: ProvisionRequest, lane: RunpodLane, gpuType: string): Record<string, unknown> {
    const { workspaceId } = splitPoolKey(request.poolId);
    const token = this.options.secrets?.of(request.nodeId);
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(lane.env ?? {})) env[key] = withNodeToken(value, this.options.secrets, request.nodeId);
    Object.assign(env, {
      [RUNPOD_ENV.managed]: '1',
      [RUNPOD_ENV.workspace]: workspaceId,
      [RUNPOD_ENV.pool]: request.poolId,
      [RUNPOD_ENV.node]: request.nodeId,
      [RUNPOD_ENV.port]: String(lane.port),
      [RUNPOD_ENV.healthPath]: lane.healthPath,
      ...(token ? { [RUNPOD_ENV.token]: token } : {}),
    });
    return {
      name: runpodPodName(request.nodeId),
      image: lane.image,
      gpu: { id: gpuType, count: lane.gpuCount },
      cloud: lane.cloud,
      ports: [`${lane.port}/http`],
      env,
      ...(lane.args === undefined ? {} : { args: withNodeToken(lane.args, this.options.secrets, request.nodeId) }),
      ...(lane.disk === undefined ? {} : { disk: lane.disk }),
      ...(lane.networkVolumeId === undefined ? {} : { mounts: { network: [{ volumeId: lane.networkVolumeId, path: lane.volumePath }] } }),
      ...(lane.dataCenterIds === undefined ? {} : { dataCenterIds: lane.dataCenterIds }),
      ...(lane.registry === undefined ? {} : { registry: lane.registry }),
    };
  }

  private provisioned(request: ProvisionRequest, pod: RunpodPod): ProvisionedNode {
    // The pod's own `cost` is what RunPod bills it at; 0 or absent (not placed yet): the lane's price applies.
    const price: ProviderPrice | undefined =
      typeof pod.cost === 'number' && pod.cost > 0 ? { perHour: pod.cost, source: 'runpod:pod-cost' } : undefined;
    return { nodeId: request.nodeId, laneIndex: request.laneIndex, url: this.urlOf(pod), ...(price ? { price } : {}) };
  }

  /** The node's live pod, if any (the oldest when a lost create answer left two). */
  private async findPod(nodeId: string): Promise<RunpodPod | undefined> {
    const pods = (await this.podsOf(nodeId)).filter((pod) => pod.status !== 'TERMINATED');
    return pods.find((pod) => !GONE_STATES.has(pod.status)) ?? pods[0];
  }

  /** Every pod of a node: named after it and carrying its node id (a pod someone else named alike is not ours). */
  private async podsOf(nodeId: string): Promise<RunpodPod[]> {
    const name = runpodPodName(nodeId);
    const pods = await this.ourPods();
    return pods
      .filter((pod) => pod.name === name && pod.env?.[RUNPOD_ENV.node] === nodeId)
      .sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? ''));
  }

  /** Every pod zeropool made (the list has no filters or pages: one call returns the account's pods). */
  private async ourPods(): Promise<RunpodPod[]> {
    const out = await this.call<{ pods?: RunpodPod[] }>('GET', '/v2/pods').catch((err) => {
      throw classifyRunpodError(err);
    });
    return (out.pods ?? []).filter((pod) => pod.env?.[RUNPOD_ENV.managed] === '1' && pod.env?.[RUNPOD_ENV.node]);
  }

  private urlOf(pod: RunpodPod): string {
    return (this.options.proxyUrl ?? RUNPOD_PROXY_URL)
      .replaceAll('{podId}', pod.id)
      .replaceAll('{port}', pod.env?.[RUNPOD_ENV.port] ?? '8000');
  }

  /**
   * One API call. A 429 is waited out (Retry-After) and repeated for every method: RunPod did not act on it.
   * 5xx and network errors are repeated for reads and deletes only; a create's outcome is then unknown, and
   * the provision looks for the pod instead of creating again.
   */
  private async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const attempts = this.options.attempts ?? 3;
    const replayable = method !== 'POST';
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${(this.options.baseUrl ?? RUNPOD_API_URL).replace(/\/$/, '')}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.options.apiKey}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 30_000),
        });
      } catch (err) {
        if (!replayable || attempt >= attempts) throw new Error(`RunPod unreachable: ${(err as Error).message}`);
        await pause(backoffMs(attempt));
        continue;
      }
      const text = await res.text();
      if (res.ok) return (text ? safeJson(text) : undefined) as T;
      const problem = (safeJson(text) ?? {}) as { detail?: string; title?: string; errors?: string[] };
      const detail = [problem.detail ?? problem.title ?? text.slice(0, 300), ...(problem.errors ?? [])].join('; ');
      if (attempt < attempts && (res.status === 429 || (replayable && res.status >= 500))) {
        await pause(retryAfterMs(res.headers.get('retry-after')) ?? backoffMs(attempt));
        continue;
      }
      throw new ProviderHttpError(res.status, `RunPod ${method} ${path} answered ${res.status}: ${detail}`, detail);
    }
  }
}

/** Our typed error for a RunPod failure on a read or delete (what is not typed stays retryable). */
export function classifyRunpodError(err: unknown): Error {
  if (!(err instanceof ProviderHttpError)) return err instanceof Error ? err : new Error(String(err));
  if (err.status === 401 || err.status === 403) return new AuthFailedError(err.message);
  if (err.status === 400 || err.status === 404 || err.status === 409 || err.status === 422) return new InvalidRequestError(err.message);
  return err;
}
