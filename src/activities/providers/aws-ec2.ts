/**
 * AWS EC2 provider: one instance per node, through the official SDK (standard credential chain and region).
 * Idempotent by node id twice over: `ClientToken` makes a retried RunInstances return the first instance,
 * and every call first looks the node up by its tag. Every instance carries our tags (managed, workspace,
 * pool key, node id); `list` and `terminate` only ever see instances that carry them.
 */
import { createHash } from 'node:crypto';
import {
  DescribeInstancesCommand,
  DescribeSpotInstanceRequestsCommand,
  DescribeSpotPriceHistoryCommand,
  type DescribeInstancesCommandInput,
  type EC2Client,
  type Instance,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { AwsLane } from '../../domain/pool-config';
import type { ProviderPrice } from '../../domain/pool-protocol';
import { type NodeSecrets, withNodeToken } from '../../secrets/node-secrets';
import { checkModelServer } from './model-server-health';
import { type PoolKey, splitPoolKey } from '../../ids';
import {
  AuthFailedError,
  CapacityUnavailableError,
  InvalidRequestError,
  type NodeStatus,
  type ProvisionedNode,
  type Provider,
  type ProvisionRequest,
} from './provider';

/** Tag keys on every instance zeropool starts. */
export const EC2_TAG = {
  managed: 'zeropool:managed',
  workspace: 'zeropool:workspace',
  pool: 'zeropool:pool',
  node: 'zeropool:node',
  port: 'zeropool:port',
  healthPath: 'zeropool:health-path',
} as const;

/** States of an instance that still exists (and may bill); `shutting-down` and `terminated` are gone. */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

/** Spot request status codes that mean EC2 is taking the instance back. */
const SPOT_INTERRUPTION = /^(marked-for-(termination|stop|hibernation)|instance-(terminated|stopped|hibernated)-)/;

/** EC2 error codes that mean "no capacity in this lane now": the pool tries the next lane. */
const CAPACITY_CODES = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientHostCapacity',
  'InsufficientCapacity',
  'InsufficientReservedInstanceCapacity',
  'SpotMaxPriceTooLow',
  'MaxSpotInstanceCountExceeded',
  'InstanceLimitExceeded',
  'VcpuLimitExceeded',
  'Unsupported',
]);
/** Credentials refused or not allowed: retrying will not help. */
const AUTH_CODES = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'OptInRequired',
  'Blocked',
]);
/** The request itself is wrong (bad AMI, subnet, parameters): retrying will not help. */
const INVALID_CODE =
  /^(InvalidParameter|InvalidParameterValue|InvalidParameterCombination|MissingParameter|Invalid[A-Za-z]+ID\.(NotFound|Malformed)|InvalidGroup\.NotFound)$/;

/**
 * Our typed error for an EC2 failure, or the failure itself (retryable: throttling and 5xx are already
 * retried by the SDK's standard strategy; what is left is retried by the activity).
 */
export function classifyEc2Error(err: unknown): Error {
  const code = (err as { name?: string; Code?: string }).Code ?? (err as Error).name;
  const message = `EC2 ${code}: ${(err as Error).message}`;
  if (CAPACITY_CODES.has(code)) return new CapacityUnavailableError(message);
  if (AUTH_CODES.has(code)) return new AuthFailedError(message);
  if (INVALID_CODE.test(code)) return new InvalidRequestError(message);
  return err instanceof Error ? err : new Error(String(err));
}

/** RunInstances' idempotency token: at most 64 ASCII characters, so long node ids are hashed. */
export function clientTokenFor(nodeId: string): string {
  return nodeId.length <= 64 ? nodeId : `zp-${createHash('sha256').update(nodeId).digest('hex').slice(0, 61)}`;
}

function tagOf(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

export interface Ec2ProviderOptions {
  client: EC2Client;
  /** How long one health check of a model server may take. */
  healthTimeoutMs?: number;
  /** Each node's bearer secret: `{nodeToken}` in the lane's user data becomes it, and health checks send it. */
  secrets?: NodeSecrets;
}

export class Ec2Provider implements Provider {
  readonly name = 'aws';

  constructor(private readonly options: Ec2ProviderOptions) {}

  async provision(request: ProvisionRequest): Promise<ProvisionedNode> {
    const lane = request.lane.aws;
    if (!lane) throw new InvalidRequestError(`lane ${request.laneIndex} has provider aws but no aws fields`);
    const existing = await this.findLive(request.nodeId);
    if (existing) return this.provisioned(request, existing);
    const { workspaceId } = splitPoolKey(request.poolId);
    try {
      const out = await this.options.client.send(
        new RunInstancesCommand({
          ClientToken: clientTokenFor(request.nodeId),
          ImageId: lane.imageId,
          InstanceType: lane.instanceType as RunInstancesCommand['input']['InstanceType'],
          MinCount: 1,
          MaxCount: 1,
          SubnetId: lane.subnetId,
          SecurityGroupIds: lane.securityGroupIds,
          UserData: this.userData(lane, request.nodeId),
          InstanceMarketOptions: marketOptions(request.lane.market, lane),
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: EC2_TAG.managed, Value: 'true' },
                { Key: EC2_TAG.workspace, Value: workspaceId },
                { Key: EC2_TAG.pool, Value: request.poolId },
                { Key: EC2_TAG.node, Value: request.nodeId },
                { Key: EC2_TAG.port, Value: String(lane.port) },
                { Key: EC2_TAG.healthPath, Value: lane.healthPath },
                { Key: 'Name', Value: `zeropool ${request.nodeId}` },
              ],
            },
          ],
        }),
      );
      const instance = out.Instances?.[0];
      if (!instance) throw new Error('EC2 RunInstances answered without an instance');
      return this.provisioned(request, instance);
    } catch (err) {
      throw classifyEc2Error(err);
    }
  }

  /** What the pool learns of a started instance: its address so far and, for spot, the price EC2 states. */
  private async provisioned(request: ProvisionRequest, instance: Instance): Promise<ProvisionedNode> {
    const price = instance.InstanceLifecycle === 'spot' ? await this.spotPrice(instance) : undefined;
    return { nodeId: request.nodeId, laneIndex: request.laneIndex, url: this.urlOf(instance) ?? '', ...(price ? { price } : {}) };
  }

  /**
   * The current spot price of the instance's type in its Availability Zone (EC2's spot price history). On-demand
   * prices are not in the EC2 API (they are in the Pricing API): those nodes bill at the lane's price. A failed
   * lookup is not a failed provision: the lane's price applies and the ledger row says so.
   */
  private async spotPrice(instance: Instance): Promise<ProviderPrice | undefined> {
    const zone = instance.Placement?.AvailabilityZone;
    if (!instance.InstanceType || !zone) return undefined;
    try {
      const out = await this.options.client.send(
        new DescribeSpotPriceHistoryCommand({
          InstanceTypes: [instance.InstanceType],
          AvailabilityZone: zone,
          ProductDescriptions: ['Linux/UNIX', 'Linux/UNIX (Amazon VPC)'],
          StartTime: new Date(),
        }),
      );
      const newest = (out.SpotPriceHistory ?? [])
        .filter((p) => p.AvailabilityZone === zone && p.SpotPrice !== undefined)
        .sort((a, b) => (b.Timestamp?.getTime() ?? 0) - (a.Timestamp?.getTime() ?? 0))[0];
      const perHour = Number(newest?.SpotPrice);
      return Number.isFinite(perHour) && perHour >= 0 ? { perHour, source: 'ec2:spot-price-history' } : undefined;
    } catch {
      return undefined;
    }
  }

  async describe(_poolId: PoolKey, nodeId: string): Promise<NodeStatus> {
    const instances = await this.instances({ Filters: [{ Name: `tag:${EC2_TAG.node}`, Values: [nodeId] }] });
    const live = instances.find((i) => LIVE_STATES.includes(i.State?.Name ?? ''));
    if (!live) {
      const last = instances.at(-1);
      const why = last
        ? `instance ${last.InstanceId} ${last.State?.Name}${last.StateReason?.Message ? `: ${last.StateReason.Message}` : ''}`
        : 'no such instance';
      return { nodeId, exists: false, healthy: false, reason: why };
    }
    const state = live.State?.Name;
    // A stopped or stopping instance (a spot stop, an operator) serves nothing: the node is lost.
    if (state === 'stopping' || state === 'stopped') {
      return {
        nodeId,
        exists: false,
        healthy: false,
        reason: `instance ${live.InstanceId} ${state}${live.StateReason?.Message ? `: ${live.StateReason.Message}` : ''}`,
      };
    }
    // A spot instance EC2 has marked for interruption is lost now, not when it dies two minutes later: its
    // jobs move to other nodes while it still answers, and its replacement starts sooner.
    const notice = live.InstanceLifecycle === 'spot' ? await this.interruptionNotice(live) : undefined;
    if (notice) return { nodeId, exists: false, healthy: false, reason: `instance ${live.InstanceId} spot interruption: ${notice}` };
    const url = this.urlOf(live);
    if (state !== 'running' || !url) return { nodeId, exists: true, healthy: false, ...(url ? { url } : {}), reason: `instance ${state}` };
    return checkModelServer(nodeId, url, tagOf(live, EC2_TAG.healthPath) ?? '/health', {
      secrets: this.options.secrets,
      timeoutMs: this.options.healthTimeoutMs,
    });
  }

  async terminate(_poolId: PoolKey, nodeId: string): Promise<void> {
    const ids = (await this.instances({ Filters: [...this.liveFilter(), { Name: `tag:${EC2_TAG.node}`, Values: [nodeId] }] }))
      .map((i) => i.InstanceId)
      .filter((id): id is string => id !== undefined);
    if (ids.length === 0) return;
    try {
      await this.options.client.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    } catch (err) {
      // Gone between the lookup and the call: that is what we wanted.
      if ((err as Error).name === 'InvalidInstanceID.NotFound') return;
      throw classifyEc2Error(err);
    }
  }

  /**
   * The stopped rung: StopInstances (EBS kept, compute released; EC2 bills the volumes only). Idempotent: an
   * instance stopping or stopped already is left alone. EC2 refuses to stop a one-time spot instance
   * (UnsupportedOperation): the pool then terminates it.
   */
  async stop(_poolId: PoolKey, nodeId: string): Promise<void> {
    const instance = await this.findLive(nodeId);
    if (!instance?.InstanceId) throw new InvalidRequestError(`no instance for node ${nodeId}: nothing to stop`);
    const state = instance.State?.Name;
    if (state === 'stopping' || state === 'stopped') return;
    try {
      await this.options.client.send(new StopInstancesCommand({ InstanceIds: [instance.InstanceId] }));
    } catch (err) {
      throw classifyEc2Error(err);
    }
  }

  /**
   * Starts a stopped instance again (StartInstances). InsufficientInstanceCapacity, as EC2 answers when its zone
   * has no such GPU now, is CapacityUnavailable (the pool creates a fresh node elsewhere). An instance still
   * stopping cannot start yet: a retryable error, so the activity tries again. Its address may change: the
   * readiness wait reports the new one.
   */
  async start(_poolId: PoolKey, nodeId: string): Promise<{ url: string }> {
    const instance = await this.findLive(nodeId);
    if (!instance?.InstanceId) throw new InvalidRequestError(`no instance for node ${nodeId}: a stopped node that is gone cannot start`);
    const state = instance.State?.Name;
    if (state === 'stopping') throw new Error(`instance ${instance.InstanceId} is still stopping; it can start once stopped`);
    if (state === 'stopped') {
      try {
        await this.options.client.send(new StartInstancesCommand({ InstanceIds: [instance.InstanceId] }));
      } catch (err) {
        throw classifyEc2Error(err);
      }
    }
    return { url: this.urlOf((await this.findLive(nodeId)) ?? instance) ?? '' };
  }

  async list(poolId: PoolKey): Promise<string[]> {
    const instances = await this.instances({ Filters: [...this.liveFilter(), { Name: `tag:${EC2_TAG.pool}`, Values: [poolId] }] });
    return [...new Set(instances.map((i) => tagOf(i, EC2_TAG.node)).filter((id): id is string => id !== undefined))];
  }

  private liveFilter() {
    return [
      { Name: `tag:${EC2_TAG.managed}`, Values: ['true'] },
      { Name: 'instance-state-name', Values: LIVE_STATES },
    ];
  }

  private async findLive(nodeId: string): Promise<Instance | undefined> {
    const found = await this.instances({ Filters: [...this.liveFilter(), { Name: `tag:${EC2_TAG.node}`, Values: [nodeId] }] });
    return found[0];
  }

  /** Every instance matching the filters, across pages. */
  private async instances(input: DescribeInstancesCommandInput): Promise<Instance[]> {
    const all: Instance[] = [];
    let NextToken: string | undefined;
    do {
      try {
        const page = await this.options.client.send(new DescribeInstancesCommand({ ...input, NextToken }));
        for (const reservation of page.Reservations ?? []) all.push(...(reservation.Instances ?? []));
        NextToken = page.NextToken;
      } catch (err) {
        throw classifyEc2Error(err);
      }
    } while (NextToken);
    return all;
  }

  /**
   * EC2's spot request status for the instance when it says the instance is being taken back (`marked-for-*`,
   * `instance-terminated-*`, `instance-stopped-*`); undefined otherwise or when the lookup fails.
   */
  private async interruptionNotice(instance: Instance): Promise<string | undefined> {
    if (!instance.SpotInstanceRequestId) return undefined;
    try {
      const out = await this.options.client.send(
        new DescribeSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [instance.SpotInstanceRequestId] }),
      );
      const status = out.SpotInstanceRequests?.[0]?.Status;
      return status?.Code && SPOT_INTERRUPTION.test(status.Code)
        ? `${status.Code}${status.Message ? ` (${status.Message})` : ''}`
        : undefined;
    } catch {
      return undefined;
    }
  }

  /** The lane's user data for one node, `{nodeToken}` replaced by its bearer secret; base64 as EC2 wants it. */
  private userData(lane: AwsLane, nodeId: string): string | undefined {
    if (lane.userData === undefined) return undefined;
    return Buffer.from(withNodeToken(lane.userData, this.options.secrets, nodeId)).toString('base64');
  }

  /** The model server's address: the public IP when it has one, else the private one (same VPC). */
  private urlOf(instance: Instance): string | undefined {
    const host = instance.PublicIpAddress ?? instance.PrivateIpAddress;
    return host ? `http://${host}:${tagOf(instance, EC2_TAG.port) ?? '8000'}` : undefined;
  }
}

function marketOptions(market: 'spot' | 'on-demand', lane: AwsLane): RunInstancesCommand['input']['InstanceMarketOptions'] {
  if (market !== 'spot') return undefined;
  return {
    MarketType: 'spot',
    SpotOptions: {
      SpotInstanceType: 'one-time',
      InstanceInterruptionBehavior: 'terminate',
      ...(lane.maxPrice ? { MaxPrice: lane.maxPrice } : {}),
    },
  };
}
