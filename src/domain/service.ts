/**
 * Local GPU services: a registered container definition that zeropool runs as a pool on the `docker`
 * provider. Only registered definitions can be started; adopting an existing container is explicit.
 */
import { z } from 'zod';
import { laneSchema } from './pool-config';
import type { Lane, PoolConfig } from './types';
import type { VramRequest } from './vram';
import type { PoolKey } from '../ids';

/** Limits of a service container unless its definition says otherwise. */
export const DEFAULT_SERVICE_MEMORY_GB = 32;
export const DEFAULT_SERVICE_CPUS = 8;
/** The user a service container runs as unless the admin allowed root: nobody, with HOME in /tmp. */
export const SERVICE_CONTAINER_USER = '65534:65534';

/** The provider name local services run on. */
export const DOCKER_PROVIDER = 'docker';

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * Environment names a definition may not set: the GPU runtimes read these to decide which GPUs a container
 * sees (a tenant's `NVIDIA_VISIBLE_DEVICES=all` would reach every GPU outside VRAM admission and quota), and
 * ZEROPOOL_* are what zeropool tells the container about itself (node id, secret). Case does not matter.
 */
export const RESERVED_ENV_NAMES =
  /^(NVIDIA_.*|CUDA_VISIBLE_DEVICES|CUDA_DEVICE_ORDER|HIP_VISIBLE_DEVICES|ROCR_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL|ZEROPOOL_.*)$/i;

/** A definition's environment without the reserved names (a row stored before they were refused keeps none of them). */
export function tenantEnv(env: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(env ?? {}).filter(([name]) => !RESERVED_ENV_NAMES.test(name)));
}
/** A Docker container name (what `docker run --name` accepts). */
/**
 * A Docker image reference as the engine parses it: an optional registry host (with port), path components of
 * lowercase letters and digits joined by `.`, `_`, `__` or dashes, an optional tag and an optional digest.
 */
export const IMAGE_REFERENCE =
  /^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

export const CONTAINER_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** What an operator registers. Memory in GB (as model cards state it); the service name is its pool's name. */
/** The definition's fields, before the cross-field checks (the OpenAPI document extends it). */
export const serviceDefinitionFields = z
  .object({
    /** The model the container serves (jobs and /v1/chat/completions name it); default: the service name. */
    model: z.string().min(1).max(200).optional(),
    image: z
      .string()
      .min(1)
      .max(300)
      .regex(IMAGE_REFERENCE, 'a Docker image reference: [registry/]name[:tag][@sha256:digest], name in lowercase'),
    /** Command and arguments; `{port}` is replaced by the port the container must listen on. */
    command: z.array(z.string().max(4096)).max(256).optional(),
    env: z
      .record(
        z
          .string()
          .regex(envName, 'environment variable names are letters, digits and _')
          .refine(
            (name) => !RESERVED_ENV_NAMES.test(name),
            (name) => ({
              message: `${name} is reserved: GPU runtime variables (NVIDIA_*, CUDA_VISIBLE_DEVICES, …) and ZEROPOOL_* are set by zeropool`,
            }),
          ),
        z.string().max(16_384),
      )
      .optional(),
    /** The port the server listens on inside the container (bridge network); on the host network a free port is chosen and given as PORT / {port}. */
    port: z.number().int().min(1).max(65_535).default(8000),
    healthPath: z.string().regex(/^\//, 'must start with /').max(500).default('/health'),
    /** VRAM the service needs, in GB (GiB), split evenly over gpuCount GPUs. 0: runs without a GPU. */
    vramGb: z.number().min(0).max(4096).default(0),
    gpuCount: z.number().int().min(1).max(16).default(1),
    /** Only these GPU indexes (absent: any GPU that fits). */
    gpuIndexes: z.array(z.number().int().min(0).max(63)).min(1).max(16).optional(),
    /** 1 (highest) … 5 (lowest): an idle service of lower priority may be stopped to make room for this one. */
    priority: z.number().int().min(1).max(5).default(3),
    maxNodes: z.number().int().min(1).max(64).default(1),
    slotsPerNode: z.number().int().min(1).max(1024).default(4),
    idleTimeoutSeconds: z
      .number()
      .min(0)
      .max(7 * 24 * 3600)
      .default(300),
    /** How long a stop waits for in-flight jobs before preempting them (their progress is kept). */
    drainTimeoutSeconds: z
      .number()
      .min(0)
      .max(24 * 3600)
      .default(60),
    /** Seconds Docker waits after SIGTERM before SIGKILL when a container stops. */
    stopTimeoutSeconds: z.number().int().min(0).max(3600).default(10),
    /**
     * Idle containers are stopped and kept (their writable layer and caches) instead of removed, so the next
     * start skips creating them; a stopped container holds no VRAM and is removed after a day stopped.
     */
    keepWhenIdle: z.boolean().default(false),
    /** What running it costs per hour (power, amortised hardware) for the ledger; 0 if you do not count it. */
    pricePerHour: z.number().min(0).max(10_000).default(0),
    /** Host memory the container may use, in GB (GiB): the engine's hard limit (a model's weights live in VRAM). */
    memoryGb: z.number().min(0.25).max(4096).default(DEFAULT_SERVICE_MEMORY_GB),
    /** CPUs the container may use (fractions allowed). */
    cpus: z.number().min(0.1).max(512).default(DEFAULT_SERVICE_CPUS),
    /** Run as the image's user (often root) instead of an unprivileged one: admin key only. */
    runAsRoot: z.boolean().default(false),
    /** Run this existing container (by name) instead of creating one: it is started and stopped, never removed. */
    adoptContainer: z.string().regex(CONTAINER_NAME_PATTERN, 'not a container name').optional(),
    /** Capacity to use when the local GPUs have no room, tried in order after the local lane. */
    cloudLanes: z.array(laneSchema).max(8).optional(),
  })
  .strict();

export const serviceDefinitionSchema = serviceDefinitionFields
  .refine((s) => !s.gpuIndexes || s.gpuIndexes.length >= s.gpuCount, {
    message: 'gpuIndexes must list at least gpuCount GPUs',
    path: ['gpuIndexes'],
  })
  .refine((s) => !s.adoptContainer || s.maxNodes === 1, {
    message: 'an adopted container is one node: maxNodes must be 1',
    path: ['maxNodes'],
  })
  .refine((s) => !(s.cloudLanes ?? []).some((l) => l.provider === DOCKER_PROVIDER), {
    message: 'cloudLanes cannot use the docker provider',
    path: ['cloudLanes'],
  });

export type ServiceDefinition = z.output<typeof serviceDefinitionSchema>;

/** A registered service as stored and shown. */
export interface ServiceRecord {
  workspaceId: string;
  name: string;
  definition: ServiceDefinition;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** The local lane of a service's pool. */
export function localLane(definition: ServiceDefinition): Lane {
  return {
    provider: DOCKER_PROVIDER,
    market: 'on-demand',
    gpu: 'local',
    pricePerHour: definition.pricePerHour,
    // A kept container costs its disk only, which a local host does not bill.
    ...(definition.keepWhenIdle ? { stoppedPricePerHour: 0 } : {}),
  };
}

/** The pool a service runs as: the local lane first, then any cloud lanes; no warm baseline (start is explicit). */
export function servicePoolConfig(name: string, definition: ServiceDefinition, defaults: { preemptPriorityGap: number }): PoolConfig {
  return {
    model: definition.model ?? name,
    minNodes: 0,
    maxNodes: definition.maxNodes,
    slotsPerNode: definition.slotsPerNode,
    burstThreshold: 0,
    idleTimeoutSeconds: definition.idleTimeoutSeconds,
    // A local shortage (no VRAM) can end within seconds (a service stops): look again soon.
    laneCooldownSeconds: 5,
    teardownGraceSeconds: 0,
    healthCheckIntervalSeconds: 10,
    preemptPriorityGap: defaults.preemptPriorityGap,
    preemption: 'auto',
    agingSeconds: 300,
    lanes: [localLane(definition), ...(definition.cloudLanes ?? [])],
  };
}

/** VRAM in MiB of a definition (GB as GiB, the unit nvidia-smi reports in). */
export function serviceVramMiB(definition: Pick<ServiceDefinition, 'vramGb'>): number {
  return Math.round(definition.vramGb * 1024);
}

/** What admitting one container of the service asks of the GPUs. */
export function serviceVramRequest(definition: ServiceDefinition, poolKey: PoolKey): VramRequest {
  return {
    vramMiB: serviceVramMiB(definition),
    gpuCount: definition.gpuCount,
    gpuIndexes: definition.gpuIndexes,
    priority: definition.priority,
    poolKey,
  };
}
