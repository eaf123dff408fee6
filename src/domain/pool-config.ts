/** The pool configuration schema (zod): used by the API and by the pool's update validator. */
import { z } from 'zod';

/** What an `aws` lane starts: one EC2 instance per node (spot or on-demand from the lane's market). */
export const awsLaneSchema = z
  .object({
    instanceType: z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, 'an EC2 instance type such as g5.xlarge'),
    imageId: z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'an AMI id such as ami-0123456789abcdef0'),
    subnetId: z.string().min(1).max(64).optional(),
    securityGroupIds: z.array(z.string().min(1).max(64)).max(16).optional(),
    /** Cloud-init or a script that starts the model server (plain text; sent base64-encoded). */
    userData: z.string().max(16_384).optional(),
    /** Spot only: the most to pay per hour, in USD (absent: up to the on-demand price). */
    maxPrice: z
      .string()
      .regex(/^\d+(\.\d+)?$/)
      .optional(),
    /** Where the model server listens and answers its health check. */
    port: z.number().int().min(1).max(65_535).default(8000),
    healthPath: z.string().startsWith('/').max(200).default('/health'),
  })
  .strict();

/** What a `hyperstack` lane starts: one Hyperstack VM per node (Infrahub API). */
export const hyperstackLaneSchema = z
  .object({
    /** The environment (region) the VM is created in. */
    environment: z.string().min(1).max(100),
    /** The GPU flavor, e.g. n3-A100x1. */
    flavor: z.string().min(1).max(100),
    /** The OS image name. */
    image: z.string().min(1).max(200),
    /** An SSH key pair that exists in the environment (the API requires one). */
    keyName: z.string().min(1).max(100),
    /** Cloud-init that starts the model server (`{nodeToken}` becomes the node's bearer secret). */
    userData: z.string().max(16_384).optional(),
    /** Attach a public IP (else zeropool must reach the VM's private IP). */
    assignFloatingIp: z.boolean().default(true),
    port: z.number().int().min(1).max(65_535).default(8000),
    healthPath: z.string().startsWith('/').max(200).default('/health'),
  })
  .strict();

/**
 * What a `runpod` lane starts: one pod per node through RunPod's REST API v2 (`/v2/pods`). A create places
 * one GPU type; the driver tries `gpuTypes` in order. The node is reached through RunPod's HTTP proxy.
 */
export const runpodLaneSchema = z
  .object({
    /** GPU type ids, most preferred first (e.g. "NVIDIA A40"). */
    gpuTypes: z.array(z.string().min(1).max(100)).min(1).max(16),
    gpuCount: z.number().int().min(1).max(16).default(1),
    /** SECURE: RunPod's own data centres; COMMUNITY: community-hosted machines (cheaper). */
    cloud: z.enum(['SECURE', 'COMMUNITY']).default('SECURE'),
    /** The container image that runs the model server. */
    image: z.string().min(1).max(500),
    /** Arguments to the image's entrypoint (`{nodeToken}` becomes the node's bearer secret). */
    args: z.string().max(8192).optional(),
    /** Environment of the container (values may hold `{nodeToken}`); ZEROPOOL_* names are zeropool's own. */
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), z.string().max(8192))
      .refine((env) => Object.keys(env).every((k) => !k.startsWith('ZEROPOOL_')), 'ZEROPOOL_* variables are set by zeropool')
      .optional(),
    /** Container disk in GB. */
    disk: z.number().int().min(1).max(10_000).optional(),
    /** A network volume to mount (model weights kept across pods), and where. */
    networkVolumeId: z.string().min(1).max(100).optional(),
    volumePath: z.string().startsWith('/').max(200).default('/workspace'),
    /** Data centres to place in (absent: RunPod chooses). */
    dataCenterIds: z.array(z.string().min(1).max(50)).max(32).optional(),
    /** A container registry credential id (private images). */
    registry: z.string().min(1).max(100).optional(),
    port: z.number().int().min(1).max(65_535).default(8000),
    healthPath: z.string().startsWith('/').max(200).default('/health'),
  })
  .strict();

/** One lane of capacity. Provider-specific fields live under the provider's name. */
export const laneSchema = z
  .object({
    provider: z.string().min(1).max(64),
    market: z.enum(['spot', 'on-demand']),
    gpu: z.string().min(1).max(64),
    pricePerHour: z.number().nonnegative().max(10_000),
    /**
     * What a stopped node of this lane costs per hour (its kept disk; e.g. RunPod's $0.20/GB-month × 100 GB ≈
     * 0.0274). Set, the pool's idle teardown stops this lane's nodes instead of terminating them, and new work wakes
     * a stopped node before it creates one (the warm-state ladder's stopped rung; docs/keep-alive.md).
     */
    stoppedPricePerHour: z.number().nonnegative().max(10_000).optional(),
    /**
     * What a node of this lane costs per hour while its model server sleeps (vLLM sleep mode: `POST /sleep`, VRAM
     * freed, the machine kept). Set it only where a sleeping node really costs less than a running one (a GPU you
     * own: its idle power, the VRAM another service can use); a cloud provider bills a sleeping node in full, so
     * there it is never worth it and stays unset. Set, and cheaper than the lane's price, the idle teardown may put
     * the model server to sleep instead (the warm-state ladder's sleeping rung; docs/keep-alive.md); its model
     * server must answer `POST /sleep` and `POST /wake_up` (vLLM started with `--enable-sleep-mode`).
     */
    sleepingPricePerHour: z.number().nonnegative().max(10_000).optional(),
    aws: awsLaneSchema.optional(),
    hyperstack: hyperstackLaneSchema.optional(),
    runpod: runpodLaneSchema.optional(),
  })
  .refine((lane) => lane.provider !== 'aws' || lane.aws !== undefined, { message: 'an aws lane needs its aws fields', path: ['aws'] })
  .refine((lane) => lane.provider !== 'hyperstack' || lane.hyperstack !== undefined, {
    message: 'a hyperstack lane needs its hyperstack fields',
    path: ['hyperstack'],
  })
  .refine((lane) => lane.provider !== 'runpod' || lane.runpod !== undefined, {
    message: 'a runpod lane needs its runpod fields',
    path: ['runpod'],
  })
  // RunPod's REST API v2 has no interruptible (spot) pods: its published CreatePodRequest has no such field.
  .refine((lane) => lane.provider !== 'runpod' || lane.market === 'on-demand', {
    message: 'RunPod REST API v2 starts on-demand pods only (it has no interruptible pods): use market "on-demand"',
    path: ['market'],
  });

/** Fields an operator may set; defaults fill the rest. */
/** The pool config's fields, before the cross-field checks (the OpenAPI document extends it). */
export const poolConfigFields = z.object({
  /** The model the pool serves (fixed for the pool's life). */
  model: z.string().min(1).max(200),
  minNodes: z.number().int().min(0).max(1000).default(0),
  maxNodes: z.number().int().min(1).max(1000),
  slotsPerNode: z.number().int().min(1).max(1024).default(1),
  burstThreshold: z.number().int().min(0).max(100_000).default(0),
  idleTimeoutSeconds: z
    .number()
    .min(0)
    .max(7 * 24 * 3600)
    .default(60),
  /** How long a lane stays skipped after it reported a capacity shortage. */
  laneCooldownSeconds: z
    .number()
    .min(0)
    .max(24 * 3600)
    .default(180),
  /** Drain window between the idle timer firing and the first terminate call; a burst in it keeps the nodes. */
  teardownGraceSeconds: z.number().min(0).max(3600).default(10),
  /** How often ready nodes are health-checked (spot interruptions are found this way). */
  healthCheckIntervalSeconds: z.number().min(1).max(3600).default(15),
  /** A queued job may preempt a running one whose priority number is at least this much larger. */
  preemptPriorityGap: z.number().int().min(1).max(4).default(2),
  /** `auto`: the pool preempts by itself; `manual`: only an operator's trigger does. */
  preemption: z.enum(['auto', 'manual']).default('auto'),
  /** A queued job gains one priority level per this many seconds waited (0: no aging). */
  agingSeconds: z
    .number()
    .min(0)
    .max(24 * 3600)
    .default(300),
  /** How often the pool looks for orphaned nodes and unclosed ledger rows. */
  reconcileIntervalSeconds: z
    .number()
    .min(10)
    .max(24 * 3600)
    .default(600),
  /**
   * When nodes run on a later lane because an earlier one was short (spot → on-demand), move them back once
   * the earlier lane has capacity again: make-before-break, one node at a time, while no job waits.
   */
  returnToPreferredLane: z.boolean().default(true),
  /** OpenAI routes: requests that may wait for capacity at once, per API process (past it: 429). */
  maxParkedRequests: z.number().int().min(0).max(100_000).default(1000),
  /** OpenAI routes: how long a request waits for capacity unless it says (X-Zeropool-Timeout); past it: 503. */
  parkTimeoutSeconds: z.number().min(1).max(3600).default(300),
  /** On-demand nodes kept among the pool's nodes whatever spot offers (a base interruptions cannot take). */
  onDemandFloor: z.number().int().min(0).max(1000).default(0),
  /**
   * `fixed`: nodes stay idleTimeoutSeconds after the pool goes idle. `adaptive`: the pool learns its idle gaps and
   * chooses a keep-alive (or tears down and pre-warms before the expected next arrival) that costs less at no more
   * cold starts than the fixed timeout would have; see keep-alive.ts.
   */
  keepAlive: z
    .object({
      mode: z.enum(['fixed', 'adaptive']).default('fixed'),
      /** Idle gaps seen before the learned windows replace idleTimeoutSeconds. */
      minSamples: z.number().int().min(1).max(1000).default(10),
      /** Cold starts per idle gap the adaptive policy may add over the fixed timeout's to save money (0: none). */
      extraColdStartRate: z.number().min(0).max(1).default(0),
    })
    .strict()
    .default({ mode: 'fixed', minSamples: 10, extraColdStartRate: 0 }),
  /** A stopped (or sleeping) node is terminated after this long down (it would bill its disk, or its GPU, for ever otherwise). */
  maxStoppedSeconds: z
    .number()
    .min(60)
    .max(30 * 24 * 3600)
    .default(24 * 3600),
  lanes: z.array(laneSchema).min(1).max(16),
});

/**
 * The keep-alive a pool created through the API gets when it names none (issue 26, item 7): adaptive, whose
 * warm-state ladder stops idle nodes on lanes that state a stopped price. On the evaluation traces it cost 0.71×
 * fixed 600 s at fewer cold starts, replayed through the pool machine (docs/measurements.md). The schema's own
 * default stays `fixed`, so pools stored before this keep theirs.
 */
export const NEW_POOL_KEEP_ALIVE = { mode: 'adaptive' } as const;

/**
 * Slots a pool may have in all (maxNodes × slotsPerNode): the pool's state holds every slot and travels through
 * Temporal (continue-as-new input, query answers), which must stay far below its 2 MB payload limit.
 */
export const MAX_POOL_SLOTS = 10_000;

/** A whole pool config, as created. */
export const poolConfigSchema = poolConfigFields
  .strict()
  // A maxNodes already refused (negative) is not compared again: one message for one mistake.
  .refine((c) => c.maxNodes < 0 || c.minNodes <= c.maxNodes, { message: 'minNodes must not exceed maxNodes', path: ['minNodes'] })
  .refine((c) => c.maxNodes * c.slotsPerNode <= MAX_POOL_SLOTS, {
    message: `maxNodes × slotsPerNode must not exceed ${MAX_POOL_SLOTS} (the pool's state must stay small enough for Temporal)`,
    path: ['maxNodes'],
  });

/** Input accepted by PATCH: any subset of the fields (no defaults: an absent field keeps its value). */
export const poolConfigPatchSchema = poolConfigFields.partial().strict();

/** Fields added after the first release: state carried over from pools created before them may lack them. */
type AddedLater =
  | 'preemptPriorityGap'
  | 'preemption'
  | 'agingSeconds'
  | 'reconcileIntervalSeconds'
  | 'returnToPreferredLane'
  | 'onDemandFloor'
  | 'maxParkedRequests'
  | 'parkTimeoutSeconds'
  | 'keepAlive'
  | 'maxStoppedSeconds';
type ParsedPoolConfig = z.output<typeof poolConfigSchema>;

/** Operator-facing configuration of a pool (absent fields added later mean their defaults). */
export type PoolConfig = Omit<ParsedPoolConfig, AddedLater> & Partial<Pick<ParsedPoolConfig, AddedLater>>;
/** One lane of capacity. */
export type Lane = z.output<typeof laneSchema>;
export type AwsLane = z.output<typeof awsLaneSchema>;
export type HyperstackLane = z.output<typeof hyperstackLaneSchema>;
export type RunpodLane = z.output<typeof runpodLaneSchema>;
export type PoolConfigPatch = z.output<typeof poolConfigPatchSchema>;
