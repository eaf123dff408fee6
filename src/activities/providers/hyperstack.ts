/**
 * Hyperstack provider: one VM per node through the Infrahub API (`/core/virtual-machines`, header `api_key`).
 * The API has no idempotency key, so provisioning is made idempotent here: each VM is named after its node
 * and labelled with workspace, pool and node, and every create first looks for a VM with that name and label.
 * Only VMs carrying our labels are ever listed or deleted.
 */
import { createHash } from 'node:crypto';
import type { HyperstackLane } from '../../domain/pool-config';
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

/** The public API's base address. */
export const HYPERSTACK_API_URL = 'https://infrahub-api.nexgencloud.com/v1';

/** A VM as the API describes it (the fields zeropool reads; the API sends more). */
export interface HyperstackVm {
  id: number;
  name: string;
  status: string;
  labels?: string[];
  fixed_ip?: string | null;
  floating_ip?: string | null;
  floating_ip_status?: string | null;
  flavor?: { name?: string; gpu?: string; gpu_count?: number };
}

/** One price of the pricebook (`GET /pricebook`): `value` is USD per hour of one unit (a GPU of that name). */
interface PricebookEntry {
  name?: string;
  value?: number;
}

/** How long a fetched pricebook is used before it is read again. */
const PRICEBOOK_TTL_MS = 10 * 60_000;

/** Labels on every VM zeropool creates (label values cannot hold every character a key can: `=` separates). */
export const HYPERSTACK_LABEL = {
  managed: 'zeropool',
  workspace: (workspaceId: string) => `zeropool-workspace=${workspaceId}`,
  pool: (key: PoolKey) => `zeropool-pool=${key}`,
  node: (nodeId: string) => `zeropool-node=${nodeId}`,
  port: (port: number) => `zeropool-port=${port}`,
  healthPath: (path: string) => `zeropool-health=${path}`,
};

/** VM states that will not serve again: the node is lost (and a terminate still deletes what is left). */
const GONE_STATES = new Set(['ERROR', 'DELETING', 'DELETED', 'SHUTOFF', 'HIBERNATED', 'HIBERNATING', 'STOPPED']);
/** A 400 whose message says there is no stock of the flavor now: capacity, not a bad request. */
const STOCK_OUT = /stock|capacity|not enough|insufficient|unavailable|no .*available|sold out/i;

/** The VM name for a node: the API allows 50 characters, so long node ids are hashed. */
export function hyperstackVmName(nodeId: string): string {
  const name = `zp-${nodeId}`.replace(/[^A-Za-z0-9-]/g, '-');
  return name.length <= 50 ? name : `zp-${createHash('sha256').update(nodeId).digest('hex').slice(0, 47)}`;
}

function labelValue(vm: HyperstackVm, prefix: string): string | undefined {
  return vm.labels?.find((l) => l.startsWith(`${prefix}=`))?.slice(prefix.length + 1);
}

export interface HyperstackProviderOptions {
  apiKey: string;
  /** Another API address (a test fake); absent: the public one. */
  baseUrl?: string;
  secrets?: NodeSecrets;
  /** Attempts for rate limits, 5xx and network errors within one call (the activity retries beyond). */
  attempts?: number;
  healthTimeoutMs?: number;
}

export class HyperstackProvider implements Provider {
  readonly name = 'hyperstack';
  private pricebook?: { at: number; entries: PricebookEntry[] };

  constructor(private readonly options: HyperstackProviderOptions) {}

  async provision(request: ProvisionRequest): Promise<ProvisionedNode> {
    const lane = request.lane.hyperstack;
    if (!lane) throw new InvalidRequestError(`lane ${request.laneIndex} has provider hyperstack but no hyperstack fields`);
    const existing = await this.findVm(request.nodeId);
    if (existing) return this.provisioned(request, existing);
    const { workspaceId } = splitPoolKey(request.poolId);
    try {
      const created = await this.call<{ instances?: HyperstackVm[] }>('POST', '/core/virtual-machines', {
        name: hyperstackVmName(request.nodeId),
        environment_name: lane.environment,
        flavor_name: lane.flavor,
        image_name: lane.image,
        key_name: lane.keyName,
        count: 1,
        assign_floating_ip: lane.assignFloatingIp,
        ...(lane.userData === undefined ? {} : { user_data: this.userData(lane, request.nodeId) }),
        labels: [
          HYPERSTACK_LABEL.managed,
          HYPERSTACK_LABEL.workspace(workspaceId),
          HYPERSTACK_LABEL.pool(request.poolId),
          HYPERSTACK_LABEL.node(request.nodeId),
          HYPERSTACK_LABEL.port(lane.port),
          HYPERSTACK_LABEL.healthPath(lane.healthPath),
        ],
        // The model server's port, open to zeropool (the node's bearer secret guards it).
        security_rules: [
          {
            direction: 'ingress',
            ethertype: 'IPv4',
            protocol: 'tcp',
            remote_ip_prefix: '0.0.0.0/0',
            port_range_min: lane.port,
            port_range_max: lane.port,
          },
        ],
      });
      const vm = created.instances?.[0];
      return vm ? this.provisioned(request, vm) : { nodeId: request.nodeId, laneIndex: request.laneIndex, url: '' };
    } catch (err) {
      // A create whose answer was lost may still have made the VM: look before reporting a failure.
      const made = await this.findVm(request.nodeId).catch(() => undefined);
      if (made) return this.provisioned(request, made);
      throw classifyHyperstackError(err);
    }
  }

  async describe(_poolId: PoolKey, nodeId: string): Promise<NodeStatus> {
    const vm = await this.findVm(nodeId);
    if (!vm) return { nodeId, exists: false, healthy: false, reason: 'no such VM' };
    if (GONE_STATES.has(vm.status)) return { nodeId, exists: false, healthy: false, reason: `VM ${vm.id} ${vm.status}` };
    const url = this.urlOf(vm);
    if (vm.status !== 'ACTIVE' || !url) return { nodeId, exists: true, healthy: false, ...(url ? { url } : {}), reason: `VM ${vm.status}` };
    return checkModelServer(nodeId, url, labelValue(vm, 'zeropool-health') ?? '/health', {
      secrets: this.options.secrets,
      timeoutMs: this.options.healthTimeoutMs,
    });
  }

  async terminate(_poolId: PoolKey, nodeId: string): Promise<void> {
    const vm = await this.findVm(nodeId, { includeGone: true });
    if (!vm || vm.status === 'DELETED' || vm.status === 'DELETING') return;
    try {
      await this.call('DELETE', `/core/virtual-machines/${vm.id}`);
    } catch (err) {
      if (err instanceof ProviderHttpError && err.status === 404) return;
      throw classifyHyperstackError(err);
    }
  }

  /**
   * The stopped rung: `GET /core/virtual-machines/{id}/hibernate` saves the VM to disk and powers it off (its GPU
   * released; its floating IP too, so the address may change). Idempotent: a VM hibernating or hibernated is left.
   */
  async stop(_poolId: PoolKey, nodeId: string): Promise<void> {
    const vm = await this.findVm(nodeId);
    if (!vm) throw new InvalidRequestError(`no VM for node ${nodeId}: nothing to hibernate`);
    if (vm.status === 'HIBERNATED' || vm.status === 'HIBERNATING') return;
    try {
      await this.call('GET', `/core/virtual-machines/${vm.id}/hibernate`);
    } catch (err) {
      throw classifyHyperstackError(err);
    }
  }

  /**
   * Restores a hibernated VM (`GET …/hibernate-restore`); it then boots, and `describe` says when it is ACTIVE and
   * serving. A stock-out is CapacityUnavailable (the pool creates a fresh node); a VM still hibernating cannot be
   * restored yet (a retryable error).
   */
  async start(_poolId: PoolKey, nodeId: string): Promise<{ url: string }> {
    const vm = await this.findVm(nodeId);
    if (!vm) throw new InvalidRequestError(`no VM for node ${nodeId}: a hibernated node that is gone cannot be restored`);
    if (vm.status === 'HIBERNATING') throw new Error(`VM ${vm.id} is still hibernating; it can be restored once HIBERNATED`);
    if (vm.status === 'HIBERNATED') {
      try {
        await this.call('GET', `/core/virtual-machines/${vm.id}/hibernate-restore`);
      } catch (err) {
        throw classifyHyperstackError(err);
      }
    }
    return { url: this.urlOf(vm) ?? '' };
  }

  async list(poolId: PoolKey): Promise<string[]> {
    const vms = await this.ourVms();
    return vms
      .filter((vm) => vm.labels?.includes(HYPERSTACK_LABEL.pool(poolId)) && vm.status !== 'DELETED' && vm.status !== 'DELETING')
      .map((vm) => labelValue(vm, 'zeropool-node'))
      .filter((id): id is string => id !== undefined);
  }

  private async provisioned(request: ProvisionRequest, vm: HyperstackVm): Promise<ProvisionedNode> {
    const price = await this.flavorPrice(vm);
    return { nodeId: request.nodeId, laneIndex: request.laneIndex, url: this.urlOf(vm) ?? '', ...(price ? { price } : {}) };
  }

  /**
   * What the VM's flavor costs by Hyperstack's pricebook: the hourly price of its GPU model times its GPU
   * count. A pricebook that cannot be read or lacks the GPU is no failed provision: the lane's price applies.
   */
  private async flavorPrice(vm: HyperstackVm): Promise<ProviderPrice | undefined> {
    const gpu = vm.flavor?.gpu;
    if (!gpu) return undefined;
    try {
      if (!this.pricebook || Date.now() - this.pricebook.at > PRICEBOOK_TTL_MS) {
        this.pricebook = { at: Date.now(), entries: (await this.call<PricebookEntry[]>('GET', '/pricebook')) ?? [] };
      }
      const value = this.pricebook.entries.find((entry) => entry.name === gpu)?.value;
      if (typeof value !== 'number' || !(value > 0)) return undefined;
      return { perHour: Math.round(value * (vm.flavor?.gpu_count ?? 1) * 1e6) / 1e6, source: 'hyperstack:pricebook' };
    } catch {
      return undefined;
    }
  }

  /** The node's VM: named after it and carrying our node label (a VM someone else named alike is not ours). */
  private async findVm(nodeId: string, options: { includeGone?: boolean } = {}): Promise<HyperstackVm | undefined> {
    const name = hyperstackVmName(nodeId);
    const vms = await this.ourVms(name);
    const mine = vms.filter((vm) => vm.name === name && vm.labels?.includes(HYPERSTACK_LABEL.node(nodeId)));
    return mine.find((vm) => vm.status !== 'DELETED' && (options.includeGone || vm.status !== 'DELETING')) ?? mine[0];
  }

  /** Every VM carrying our managed label (optionally only those whose name matches `search`), across pages. */
  private async ourVms(search?: string): Promise<HyperstackVm[]> {
    const all: HyperstackVm[] = [];
    for (let page = 1; ; page++) {
      const query = new URLSearchParams({ page: String(page), page_size: '100', ...(search ? { search } : {}) });
      const out = await this.call<{ instances?: HyperstackVm[]; count?: number }>('GET', `/core/virtual-machines?${query}`).catch((err) => {
        throw classifyHyperstackError(err);
      });
      const batch = out.instances ?? [];
      all.push(...batch);
      if (batch.length < 100 || (out.count !== undefined && all.length >= out.count)) break;
    }
    return all.filter((vm) => vm.labels?.includes(HYPERSTACK_LABEL.managed));
  }

  /**
   * One API call. For GET and DELETE, rate limits, 5xx and network errors are retried here a few times
   * (honouring Retry-After); a create is never repeated blindly (the API has no idempotency key): the
   * provision looks for the VM instead.
   */
  private async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const attempts = method === 'POST' ? 1 : (this.options.attempts ?? 3);
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${(this.options.baseUrl ?? HYPERSTACK_API_URL).replace(/\/$/, '')}${path}`, {
          method,
          headers: {
            api_key: this.options.apiKey,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (err) {
        if (attempt >= attempts) throw new Error(`Hyperstack unreachable: ${(err as Error).message}`);
        await pause(backoffMs(attempt));
        continue;
      }
      const text = await res.text();
      const parsed = text ? safeJson(text) : undefined;
      if (res.ok && (parsed as { status?: boolean } | undefined)?.status !== false) return parsed as T;
      const message = (parsed as { message?: string } | undefined)?.message ?? text.slice(0, 300);
      if ((res.status === 429 || res.status >= 500) && attempt < attempts) {
        await pause(retryAfterMs(res.headers.get('retry-after')) ?? backoffMs(attempt));
        continue;
      }
      throw new ProviderHttpError(res.status, `Hyperstack ${method} ${path.split('?')[0]} answered ${res.status}: ${message}`);
    }
  }

  private userData(lane: HyperstackLane, nodeId: string): string | undefined {
    return lane.userData === undefined ? undefined : withNodeToken(lane.userData, this.options.secrets, nodeId);
  }

  /**
   * The model server's address: the floating IP once attached; none while one is still being attached (the
   * VM was asked for a public address); the fixed (private) one for a VM without a floating IP.
   */
  private urlOf(vm: HyperstackVm): string | undefined {
    const attaching = !!vm.floating_ip_status && vm.floating_ip_status !== 'ATTACHED';
    const host = vm.floating_ip && !attaching ? vm.floating_ip : attaching ? undefined : vm.fixed_ip;
    return host ? `http://${host}:${labelValue(vm, 'zeropool-port') ?? '8000'}` : undefined;
  }
}

/** Our typed error for a Hyperstack failure (what is not typed stays retryable). */
export function classifyHyperstackError(err: unknown): Error {
  if (!(err instanceof ProviderHttpError)) return err instanceof Error ? err : new Error(String(err));
  if (err.status === 401 || err.status === 403) return new AuthFailedError(err.message);
  if (err.status === 400 || err.status === 409)
    return STOCK_OUT.test(err.message) ? new CapacityUnavailableError(err.message) : new InvalidRequestError(err.message);
  if (err.status === 404 || err.status === 405 || err.status === 422) return new InvalidRequestError(err.message);
  return err;
}
