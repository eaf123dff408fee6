/**
 * The `docker` provider: a node is a container made from a registered service definition, on this host's
 * GPUs. Admission is by VRAM (declared per service, checked against nvidia-smi and our other containers,
 * under a PostgreSQL advisory lock so two workers on one host cannot both take the last gigabytes).
 */
import type Docker from 'dockerode';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { grantedPriorities } from '../../db/quotas';
import { getServiceByPoolKey } from '../../db/services';
import { type NodeSecrets, nodeAuthHeaders, withNodeToken } from '../../secrets/node-secrets';
import { DEFAULT_PRIORITY } from '../../domain/placement';
import { type GpuMemory, planVramAdmission, type VramAllocation } from '../../domain/vram';
import {
  DEFAULT_SERVICE_CPUS,
  DEFAULT_SERVICE_MEMORY_GB,
  SERVICE_CONTAINER_USER,
  serviceVramMiB,
  tenantEnv,
  serviceVramRequest,
  type ServiceDefinition,
  type ServiceRecord,
} from '../../domain/service';
import { gpuMemory, type GpuProbe, type GpuProbeResult } from '../../local-gpus/probe';
import { asPoolKey, type PoolKey, splitPoolKey } from '../../ids';
import {
  CapacityUnavailableError,
  InvalidRequestError,
  type NodeStatus,
  type ProvisionedNode,
  type ProvisionRequest,
  type Provider,
} from './provider';

/** Labels on every container we create: they say whose it is, so nothing else on the host is ever touched. */
export const LABEL = {
  managed: 'zeropool.managed',
  workspace: 'zeropool.workspace',
  pool: 'zeropool.pool',
  service: 'zeropool.service',
  node: 'zeropool.node',
  port: 'zeropool.port',
  gpus: 'zeropool.gpus',
  vramPerGpu: 'zeropool.vram-mib-per-gpu',
  priority: 'zeropool.priority',
} as const;

/** An image name as the engine lists it in RepoTags: with its tag (latest by default), without docker.io's prefix. */
export function shortImageName(name: string): string {
  const bare = name.replace(/^docker\.io\/(library\/)?/, '');
  return bare.slice(bare.lastIndexOf('/') + 1).includes(':') ? bare : `${bare}:latest`;
}

/** Name of the container of a node. */
export function containerName(nodeId: string): string {
  return `zeropool-${nodeId}`;
}

/** What the provider asks of the pools of other services (through Temporal) when it must make room. */
export interface PoolControl {
  /** The pool has no queued or running job. */
  isIdle(poolKey: PoolKey): Promise<boolean>;
  /**
   * Stops every node of the pool if it is idle when the pool takes the request (one step in the pool workflow,
   * so a job that arrived since `isIdle` answered is never cut off); false when it was busy by then.
   */
  stopIfIdle(poolKey: PoolKey): Promise<boolean>;
}

export interface DockerProviderOptions {
  docker: Docker;
  db: Pool;
  gpus: GpuProbe;
  logger: Logger;
  /** VRAM kept free on each GPU for the driver and other tenants, MiB. */
  reserveMiB: number;
  /**
   * `isolated` (default): containers live on their workspace's own internal bridge network, reached by
   * their address on it; they cannot see the host's loopback (the embedded PostgreSQL, the Temporal dev server,
   * the API). `host`: containers share the host's network (a free port is chosen per container), an admin's
   * choice. `bridge`: Docker's default bridge, the port published on 127.0.0.1.
   */
  network: 'host' | 'bridge' | 'isolated';
  /**
   * The isolated mode's networks are named from this: one internal network per workspace,
   * `<isolatedNetwork>-<workspace>`, made with the workspace's first container and removed with its last.
   */
  isolatedNetwork?: string;
  /** Each node's bearer secret: given to the container (`ZEROPOOL_NODE_TOKEN`, `{nodeToken}`) and sent on every call. */
  secrets?: NodeSecrets;
  /** Ask Docker for the GPUs (NVIDIA container toolkit). Off where no toolkit is installed. */
  gpuDeviceRequests: boolean;
  pools?: PoolControl;
  /** Health request timeout, ms. */
  healthTimeoutMs?: number;
}

/** A container of ours, as listed. */
interface OurContainer {
  id: string;
  name: string;
  poolKey: PoolKey;
  nodeId: string;
  state: string;
  gpus: number[];
  vramPerGpuMiB: number;
  priority: number;
}

const ADMISSION_LOCK = 'zeropool:docker-admission';

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

/** A free TCP port on the loopback interface (the container listens there on the host network). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Processes one service container may run (a fork bomb stops here, not at the host's limit). */
export const CONTAINER_PIDS_LIMIT = 4096;

/** The isolated mode's network prefix unless configured otherwise. */
export const ISOLATED_NETWORK = 'zeropool-services';

/** The internal network of one workspace's service containers. */
export function workspaceNetworkName(prefix: string, workspaceId: string): string {
  return `${prefix}-${workspaceId}`;
}

export class DockerProvider implements Provider {
  readonly name = 'docker';

  constructor(private readonly options: DockerProviderOptions) {}

  private async serviceOf(poolKey: PoolKey): Promise<ServiceRecord | undefined> {
    return getServiceByPoolKey(this.options.db, poolKey);
  }

  /** Our containers (any state), from their labels. */
  async ourContainers(filter: { poolKey?: PoolKey } = {}): Promise<OurContainer[]> {
    const labels = [`${LABEL.managed}=true`, ...(filter.poolKey ? [`${LABEL.pool}=${filter.poolKey}`] : [])];
    const list = await this.options.docker.listContainers({ all: true, filters: { label: labels } });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      poolKey: asPoolKey(c.Labels[LABEL.pool] ?? ''),
      nodeId: c.Labels[LABEL.node] ?? '',
      state: c.State,
      gpus: (c.Labels[LABEL.gpus] ?? '').split(',').filter(Boolean).map(Number),
      vramPerGpuMiB: Number(c.Labels[LABEL.vramPerGpu] ?? 0),
      priority: Number(c.Labels[LABEL.priority] ?? DEFAULT_PRIORITY),
    }));
  }

  async provision(request: ProvisionRequest): Promise<ProvisionedNode> {
    const service = await this.serviceOf(request.poolId);
    if (!service) throw new InvalidRequestError(`no registered service for pool ${request.poolId}: only registered services run on docker`);
    if (!service.enabled) throw new CapacityUnavailableError(`service ${service.name} is disabled`);
    const definition = service.definition;
    if (definition.adoptContainer) return this.startAdopted(request, definition);

    const existing = await this.inspect(containerName(request.nodeId));
    if (existing) {
      // A retry after a crash: the container was made, maybe not started.
      if (existing.State.Running) return { nodeId: request.nodeId, laneIndex: request.laneIndex, url: this.urlFrom(existing) };
      await this.options.docker.getContainer(existing.Id).start().catch(ignoreAlreadyStarted);
      return { nodeId: request.nodeId, laneIndex: request.laneIndex, url: await this.urlOf(existing.Id) };
    }
    const created = await this.admitAndCreate(request, service);
    await this.options.docker.getContainer(created).start();
    this.options.gpus.invalidate();
    const url = await this.urlOf(created);
    this.options.logger.info(
      { poolId: request.poolId, nodeId: request.nodeId, container: containerName(request.nodeId), url },
      'container started',
    );
    return { nodeId: request.nodeId, laneIndex: request.laneIndex, url };
  }

  /** VRAM admission and container creation, one at a time across every worker sharing the database. */
  private async admitAndCreate(request: ProvisionRequest, service: ServiceRecord): Promise<string> {
    const definition = service.definition;
    const client = await this.options.db.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [ADMISSION_LOCK]);
      let gpuIndexes: number[] = [];
      let perGpuMiB = 0;
      if (serviceVramMiB(definition) > 0) {
        const decision = await this.admission(request.poolId, definition);
        gpuIndexes = decision.gpuIndexes;
        perGpuMiB = decision.perGpuMiB;
      }
      const id = await this.create(request, service, gpuIndexes, perGpuMiB);
      await client.query('COMMIT');
      return id;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * Why a service could not run this image here, or undefined when the engine has it. Registration asks, so a
   * typo is a 400 at once rather than a pool that never starts (no registry is assumed: pull or build first).
   */
  async imageProblem(image: string, command?: string[]): Promise<string | undefined> {
    try {
      const info = await this.options.docker.getImage(image).inspect();
      // The engine also resolves an image id's prefix ("0" may be some image): only a name it carries counts.
      if (!image.includes('@') && !(info.RepoTags ?? []).map(shortImageName).includes(shortImageName(image)))
        return `image ${image} is not on this host by that name (an image id is not a name: use its tag)`;
      const runs = (info.Config?.Cmd?.length ?? 0) > 0 || (info.Config?.Entrypoint?.length ?? 0) > 0;
      if (!runs && !command?.length) return `image ${image} has no command of its own: give the service one (command)`;
      return undefined;
    } catch (err) {
      if (isNotFound(err)) return `image ${image} is not on this host: pull or build it first`;
      // dockerode refuses a name it cannot put in a URL before asking the engine.
      if (err instanceof TypeError) return `image ${image} is not a valid image reference`;
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== undefined && status >= 400 && status < 500) return `image ${image} is not a valid image reference`;
      throw err;
    }
  }

  /** Decides the GPUs, or stops idle lower-priority services to make room and reports the shortage. */
  private async admission(poolKey: PoolKey, definition: ServiceDefinition): Promise<{ gpuIndexes: number[]; perGpuMiB: number }> {
    const { gpus, allocations } = await this.vramFacts();
    if (gpus === null) throw new CapacityUnavailableError('no GPU on this host: the service needs VRAM');
    const pools = this.options.pools;
    const granted = await grantedPriorities(
      this.options.db,
      [poolKey, ...allocations.map((a) => a.poolKey)].map((k) => splitPoolKey(k).workspaceId),
    );
    const plan = await planVramAdmission(
      gpus,
      allocations,
      this.options.reserveMiB,
      serviceVramRequest(definition, poolKey),
      (key) => (pools ? pools.isIdle(key) : Promise.resolve(false)),
      granted,
    );
    if (plan.fits) return plan;
    if (pools && plan.stopForRoom.length > 0) {
      for (const key of plan.stopForRoom) {
        const stopped = await pools.stopIfIdle(key);
        this.options.logger.warn(
          { poolId: poolKey, stopping: key, stopped },
          stopped ? 'stopped an idle lower-priority service to make room' : 'a service chosen to make room was busy by then: left running',
        );
      }
      throw new CapacityUnavailableError(
        `no VRAM now (${plan.reason}); stopping idle lower-priority service(s) ${plan.stopForRoom.join(', ')} to make room`,
      );
    }
    throw new CapacityUnavailableError(`no VRAM: ${plan.reason}`);
  }

  /**
   * GPUs (null: none) and what our containers hold on them; `idle` is filled in only when room is needed.
   * A caller that already probed passes its report, so nvidia-smi runs once.
   */
  async vramFacts(probed?: GpuProbeResult): Promise<{ gpus: GpuMemory[] | null; allocations: VramAllocation[]; reason?: string }> {
    const report = probed ?? (await this.options.gpus.probe());
    const ours = (await this.ourContainers()).filter((c) => c.state !== 'exited' && c.state !== 'dead');
    const usedByContainer = await this.attributeProcesses(report, ours);
    const allocations: VramAllocation[] = ours.flatMap((c) =>
      c.gpus.map((gpuIndex) => {
        const seen = usedByContainer.get(c.id);
        return {
          poolKey: c.poolKey,
          nodeId: c.nodeId,
          gpuIndex,
          declaredMiB: c.vramPerGpuMiB,
          actualMiB: seen ? (seen.get(gpuIndex) ?? 0) : null,
          priority: c.priority,
          idle: false,
        };
      }),
    );
    if (!report.available) return { gpus: null, allocations, reason: report.reason };
    return { gpus: gpuMemory(report), allocations };
  }

  /**
   * Which of our containers each GPU process belongs to (its cgroup names the container id), with its
   * memory per GPU index. Containers none of whose processes were found map to nothing (use unknown).
   */
  private async attributeProcesses(report: GpuProbeResult, ours: OurContainer[]): Promise<Map<string, Map<number, number>>> {
    const out = new Map<string, Map<number, number>>();
    const indexOf = new Map(report.gpus.map((g) => [g.uuid, g.index]));
    for (const p of report.rawProcesses) {
      if (p.pid === null || p.usedMemoryMiB === null) continue;
      const cgroup = await readFile(`/proc/${p.pid}/cgroup`, 'utf8').catch(() => '');
      const owner = ours.find((c) => cgroup.includes(c.id));
      const index = indexOf.get(p.gpuUuid);
      if (!owner || index === undefined) continue;
      const perGpu = out.get(owner.id) ?? new Map<number, number>();
      perGpu.set(index, (perGpu.get(index) ?? 0) + p.usedMemoryMiB);
      out.set(owner.id, perGpu);
    }
    return out;
  }

  private hostCpus?: Promise<number>;
  /** CPUs of the engine's host (read once). */
  private engineCpus(): Promise<number> {
    this.hostCpus ??= this.options.docker.info().then((info: { NCPU?: number }) => info.NCPU ?? 1);
    return this.hostCpus;
  }

  /**
   * The workspace's own internal network, created when missing. Workspaces never share one, and the engine
   * keeps one bridge network from another (its iptables rules: an engine run without them routes between
   * networks), so one tenant's containers cannot open another's model servers.
   */
  private async ensureWorkspaceNetwork(workspaceId: string): Promise<string> {
    const name = workspaceNetworkName(this.options.isolatedNetwork ?? ISOLATED_NETWORK, workspaceId);
    const existing = await this.options.docker.listNetworks({ filters: { name: [name] } });
    if (existing.some((n) => n.Name === name)) return name;
    try {
      await this.options.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        Internal: true,
        Labels: { [LABEL.managed]: 'true', [LABEL.workspace]: workspaceId },
      });
    } catch (err) {
      // Created by a racing worker meanwhile.
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
    }
    return name;
  }

  /** Removes a network of ours that no container uses any more (one still in use, or gone already, is left). */
  private async removeNetworkIfUnused(name: string): Promise<boolean> {
    try {
      const network = this.options.docker.getNetwork(name);
      const info = (await network.inspect()) as { Labels?: Record<string, string>; Containers?: Record<string, unknown> };
      if (info.Labels?.[LABEL.managed] !== 'true' || Object.keys(info.Containers ?? {}).length > 0) return false;
      await network.remove();
      this.options.logger.info({ network: name }, 'service network removed (no container left on it)');
      return true;
    } catch (err) {
      // Gone already, or a container joined it meanwhile (the engine refuses: in use).
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404 || status === 403 || status === 409) return false;
      throw err;
    }
  }

  private async create(request: ProvisionRequest, service: ServiceRecord, gpuIndexes: number[], perGpuMiB: number): Promise<string> {
    const definition = service.definition;
    const { workspaceId } = splitPoolKey(request.poolId);
    const mode = this.options.network;
    const network = mode === 'isolated' ? await this.ensureWorkspaceNetwork(workspaceId) : mode;
    const host = mode === 'host';
    const published = mode === 'bridge';
    const port = host ? await freePort() : definition.port;
    const secrets = this.options.secrets;
    const fill = (text: string) => withNodeToken(text.replaceAll('{port}', String(port)), secrets, request.nodeId);
    const visible = gpuIndexes.join(',');
    const env = {
      ...Object.fromEntries(Object.entries(tenantEnv(definition.env)).map(([k, v]) => [k, fill(v)])),
      PORT: String(port),
      ZEROPOOL_NODE_ID: request.nodeId,
      ZEROPOOL_MODEL: request.model,
      // The node's bearer secret (vLLM: `--api-key {nodeToken}`): zeropool sends it on every call, so a
      // container reached by anyone else refuses them where its server honours it.
      ...(secrets ? { ZEROPOOL_NODE_TOKEN: secrets.of(request.nodeId) } : {}),
      // An unprivileged user has no home of its own: caches (model downloads) go to /tmp unless the definition says.
      ...(definition.runAsRoot ? {} : { HOME: definition.env?.HOME ?? '/tmp' }),
      // The NVIDIA runtime exposes these host GPUs (renumbered from 0 inside the container); ZEROPOOL_GPUS keeps the host indexes.
      ...(gpuIndexes.length > 0 ? { NVIDIA_VISIBLE_DEVICES: visible, ZEROPOOL_GPUS: visible } : {}),
    };
    const spec: Docker.ContainerCreateOptions = {
      name: containerName(request.nodeId),
      Image: definition.image,
      Cmd: definition.command?.map(fill),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABEL.managed]: 'true',
        [LABEL.workspace]: workspaceId,
        [LABEL.pool]: request.poolId,
        [LABEL.service]: service.name,
        [LABEL.node]: request.nodeId,
        [LABEL.port]: String(port),
        [LABEL.gpus]: gpuIndexes.join(','),
        [LABEL.vramPerGpu]: String(perGpuMiB),
        [LABEL.priority]: String(definition.priority),
      },
      StopTimeout: definition.stopTimeoutSeconds,
      // Not root unless the admin registered it so: a tenant's image runs as nobody.
      User: definition.runAsRoot ? undefined : SERVICE_CONTAINER_USER,
      ExposedPorts: published ? { [`${port}/tcp`]: {} } : undefined,
      HostConfig: {
        NetworkMode: network,
        PortBindings: published ? { [`${port}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: '' }] } : undefined,
        RestartPolicy: { Name: 'no' },
        // Least privilege for what a tenant runs: no Linux capabilities (a model server needs none to serve on a
        // port above 1024), no privilege gain through setuid binaries, and a bound on processes.
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges:true'],
        PidsLimit: CONTAINER_PIDS_LIMIT,
        // Hard limits from the definition (definitions stored before the fields existed get the defaults).
        Memory: Math.round((definition.memoryGb ?? DEFAULT_SERVICE_MEMORY_GB) * 2 ** 30),
        // The engine refuses more CPUs than the host has: the limit is at most all of them.
        NanoCpus: Math.round(Math.min(definition.cpus ?? DEFAULT_SERVICE_CPUS, await this.engineCpus()) * 1e9),
        DeviceRequests:
          gpuIndexes.length > 0 && this.options.gpuDeviceRequests
            ? [{ Driver: 'nvidia', DeviceIDs: gpuIndexes.map(String), Capabilities: [['gpu']] }]
            : undefined,
      },
    };
    try {
      return (await this.options.docker.createContainer(spec)).id;
    } catch (err) {
      // The workspace's network was removed by its last container's terminate between our look and the create.
      if (isNotFound(err) && mode === 'isolated' && /network/i.test(String((err as Error).message))) {
        await this.ensureWorkspaceNetwork(workspaceId);
        return (await this.options.docker.createContainer(spec)).id;
      }
      if (isNotFound(err)) throw new InvalidRequestError(`image ${definition.image} is not on this host: pull or build it first`);
      if ((err as { statusCode?: number }).statusCode === 409) {
        // Created by a racing retry of the same node: use it.
        const existing = await this.inspect(containerName(request.nodeId));
        if (existing) return existing.Id;
      }
      throw err;
    }
  }

  /** An existing container named by the service (explicit adoption): started if needed, never removed. */
  private async startAdopted(request: ProvisionRequest, definition: ServiceDefinition): Promise<ProvisionedNode> {
    const info = await this.inspect(definition.adoptContainer!);
    if (!info) throw new InvalidRequestError(`container ${definition.adoptContainer} to adopt does not exist`);
    const owner = info.Config.Labels?.[LABEL.pool];
    if (owner && owner !== request.poolId) throw new InvalidRequestError(`container ${definition.adoptContainer} belongs to pool ${owner}`);
    if (info.State.Running) return { nodeId: request.nodeId, laneIndex: request.laneIndex, url: this.urlFrom(info, definition.port) };
    await this.options.docker.getContainer(info.Id).start().catch(ignoreAlreadyStarted);
    this.options.gpus.invalidate();
    return { nodeId: request.nodeId, laneIndex: request.laneIndex, url: await this.urlOf(info.Id, definition.port) };
  }

  private async inspect(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.options.docker.getContainer(name).inspect();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Where a container answers, read afresh (a port is published only once the container started). */
  private async urlOf(id: string, fallbackPort?: number): Promise<string> {
    return this.urlFrom(await this.options.docker.getContainer(id).inspect(), fallbackPort);
  }

  /** Where a running container answers: its address on its own network, its published port, or its port on the host network. */
  private urlFrom(info: Docker.ContainerInspectInfo, fallbackPort?: number): string {
    const labelled = info.Config.Labels?.[LABEL.port];
    const mode = info.HostConfig.NetworkMode;
    if (mode && mode !== 'host' && mode !== 'bridge' && mode !== 'default') {
      const address = info.NetworkSettings.Networks?.[mode]?.IPAddress;
      if (!address) throw new Error(`container ${info.Name} has no address on network ${mode}`);
      return `http://${address}:${labelled ?? fallbackPort}`;
    }
    const bindings = Object.values(info.NetworkSettings.Ports ?? {})
      .flat()
      .filter(Boolean) as Array<{ HostPort: string }>;
    const published = bindings.find((b) => b.HostPort)?.HostPort;
    const port = info.HostConfig.NetworkMode === 'host' ? (labelled ?? fallbackPort) : (published ?? labelled ?? fallbackPort);
    if (!port) throw new Error(`container ${info.Name} exposes no port`);
    return `http://127.0.0.1:${port}`;
  }

  /** The container a node is (an adopted one, or ours by name), with its service's definition if it still has one. */
  private async containerOfNode(poolKey: PoolKey, nodeId: string): Promise<{ name: string; adopted: boolean; service?: ServiceRecord }> {
    const service = await this.serviceOf(poolKey);
    const adopted = service?.definition.adoptContainer;
    return adopted ? { name: adopted, adopted: true, service } : { name: containerName(nodeId), adopted: false, service };
  }

  async describe(poolKey: PoolKey, nodeId: string): Promise<NodeStatus> {
    const { name, service } = await this.containerOfNode(poolKey, nodeId);
    const info = await this.inspect(name);
    if (!info) return { nodeId, exists: false, healthy: false, reason: `container ${name} is gone` };
    if (!info.State.Running) {
      const starting = info.State.Status === 'created' || info.State.Status === 'restarting';
      if (starting) return { nodeId, exists: true, healthy: false, reason: `container ${info.State.Status}` };
      return { nodeId, exists: false, healthy: false, reason: `container ${info.State.Status} (exit code ${info.State.ExitCode})` };
    }
    const url = this.urlFrom(info, service?.definition.port);
    const healthPath = service?.definition.healthPath ?? '/health';
    try {
      const response = await fetch(`${url}${healthPath}`, {
        headers: nodeAuthHeaders(this.options.secrets, nodeId),
        signal: AbortSignal.timeout(this.options.healthTimeoutMs ?? 2000),
      });
      await response.body?.cancel();
      return response.ok
        ? { nodeId, exists: true, healthy: true, url }
        : { nodeId, exists: true, healthy: false, url, reason: `health ${healthPath} answered ${response.status}` };
    } catch (err) {
      return { nodeId, exists: true, healthy: false, url, reason: `health ${healthPath} unreachable: ${(err as Error).message}` };
    }
  }

  /** Stops the container (SIGTERM, then SIGKILL after the service's stop timeout) and removes it; adopted ones are only stopped. */
  async terminate(poolKey: PoolKey, nodeId: string): Promise<void> {
    const { name, adopted } = await this.containerOfNode(poolKey, nodeId);
    const info = await this.inspect(name);
    if (!info) return;
    const container = this.options.docker.getContainer(info.Id);
    if (info.State.Running) {
      await container.stop().catch((err) => {
        if ((err as { statusCode?: number }).statusCode !== 304 && !isNotFound(err)) throw err;
      });
    }
    if (!adopted) {
      await container.remove({ force: true }).catch((err) => {
        if (!isNotFound(err) && (err as { statusCode?: number }).statusCode !== 409) throw err;
      });
      // The workspace's last container takes its network with it.
      const network = info.HostConfig.NetworkMode;
      if (this.options.network === 'isolated' && network && info.Config.Labels?.[LABEL.workspace])
        await this.removeNetworkIfUnused(network);
    }
    this.options.gpus.invalidate();
    this.options.logger.info(
      { poolId: poolKey, nodeId, container: name, adopted },
      adopted ? 'adopted container stopped' : 'container removed',
    );
  }

  /**
   * The stopped rung: the container stops (SIGTERM, then SIGKILL after the service's stop timeout) and is kept,
   * with its writable layer and whatever the server cached there, so a start skips creating it. A stopped
   * container holds no VRAM (admission counts running containers only). Idempotent.
   */
  async stop(poolKey: PoolKey, nodeId: string): Promise<void> {
    const { name } = await this.containerOfNode(poolKey, nodeId);
    const info = await this.inspect(name);
    if (!info) throw new InvalidRequestError(`container ${name} does not exist: nothing to stop`);
    if (info.State.Running)
      await this.options.docker
        .getContainer(info.Id)
        .stop()
        .catch((err) => {
          if ((err as { statusCode?: number }).statusCode !== 304) throw err;
        });
    this.options.gpus.invalidate();
    this.options.logger.info({ poolId: poolKey, nodeId, container: name }, 'container stopped (kept for a start)');
  }

  /**
   * Starts a stopped container again, on the GPUs it was created for: VRAM admission first (under the same
   * lock as a create), so a start never oversubscribes a GPU that others filled meanwhile. No room there is
   * CapacityUnavailable, and the pool terminates this container and creates a fresh one wherever fits.
   */
  async start(poolKey: PoolKey, nodeId: string): Promise<{ url: string }> {
    const { name, service } = await this.containerOfNode(poolKey, nodeId);
    const info = await this.inspect(name);
    if (!info) throw new InvalidRequestError(`container ${name} does not exist: a stopped container that is gone cannot start`);
    if (!service) throw new InvalidRequestError(`no registered service for pool ${poolKey}: only registered services run on docker`);
    if (!info.State.Running) {
      const client = await this.options.db.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [ADMISSION_LOCK]);
        const gpus = (info.Config.Labels?.[LABEL.gpus] ?? '').split(',').filter(Boolean).map(Number);
        const definition = service.definition;
        if (serviceVramMiB(definition) > 0 && gpus.length > 0)
          await this.admission(poolKey, { ...definition, gpuIndexes: gpus, gpuCount: gpus.length });
        await this.options.docker.getContainer(info.Id).start().catch(ignoreAlreadyStarted);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
      this.options.gpus.invalidate();
      this.options.logger.info({ poolId: poolKey, nodeId, container: name }, 'stopped container started');
    }
    return { url: await this.urlOf(info.Id, service.definition.port) };
  }

  async list(poolKey: PoolKey): Promise<string[]> {
    return (await this.ourContainers({ poolKey })).map((c) => c.nodeId).filter(Boolean);
  }

  /**
   * Start-up sweep: containers labelled as ours whose pool no longer has a service are removed. Those of
   * a live service are left to their pool, which keeps the nodes it knows and removes the rest.
   */
  async removeOrphans(): Promise<string[]> {
    const removed: string[] = [];
    for (const c of await this.ourContainers()) {
      if (await this.serviceOf(c.poolKey)) continue;
      await this.options.docker
        .getContainer(c.id)
        .remove({ force: true })
        .catch((err) => {
          if (!isNotFound(err)) throw err;
        });
      removed.push(c.name);
      this.options.logger.warn({ poolId: c.poolKey, nodeId: c.nodeId, container: c.name }, 'orphaned container removed (no such service)');
    }
    // Networks of ours that no container uses (a workspace whose last container went while no worker ran, or the
    // one network every workspace shared before networks were per workspace).
    const networks = await this.options.docker.listNetworks({ filters: { label: [`${LABEL.managed}=true`] } });
    for (const n of networks) if (await this.removeNetworkIfUnused(n.Name)) removed.push(`network ${n.Name}`);
    return removed;
  }
}

function ignoreAlreadyStarted(err: unknown): void {
  if ((err as { statusCode?: number }).statusCode !== 304) throw err;
}
