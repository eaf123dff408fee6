/**
 * VRAM admission: which GPUs a new container may use, and which idle services could make room. Pure: the
 * Docker provider gathers the facts (nvidia-smi, our containers' labels, which process belongs to which
 * container) and these functions decide. Memory is in MiB throughout.
 */
import { type PoolKey, splitPoolKey } from '../ids';

/** One GPU's memory as the probe saw it. */
export interface GpuMemory {
  index: number;
  totalMiB: number;
  usedMiB: number;
}

/** VRAM promised to one of our containers on one GPU. */
export interface VramAllocation {
  poolKey: PoolKey;
  nodeId: string;
  gpuIndex: number;
  /** What the service declared for this GPU. */
  declaredMiB: number;
  /** What its processes use now, when they could be attributed to the container (null: unknown). */
  actualMiB: number | null;
  /** The service's priority (1 highest … 5 lowest). */
  priority: number;
  /** Its pool has no queued or running job: it may be stopped to make room for a higher-priority service. */
  idle: boolean;
}

/** What a new container asks for. */
export interface VramRequest {
  /** Total VRAM, split evenly over `gpuCount` GPUs. */
  vramMiB: number;
  gpuCount: number;
  /** Only these GPU indexes may be used (absent: any). */
  gpuIndexes?: number[];
  priority: number;
  poolKey: PoolKey;
}

/** A GPU's accounting: what is promised, what others use, what is left for a new container. */
export interface GpuHeadroom {
  index: number;
  totalMiB: number;
  reserveMiB: number;
  /** Used by processes that are not our containers (used minus what our containers were seen using). */
  foreignMiB: number;
  /** Held for our containers: for each, the larger of what it declared and what it uses. */
  allocatedMiB: number;
  /** total − reserve − foreign − allocated, never below zero. */
  availableMiB: number;
}

export type AdmissionDecision =
  | { fits: true; gpuIndexes: number[]; perGpuMiB: number }
  | { fits: false; perGpuMiB: number; reason: string };

/**
 * Headroom of each GPU. Our containers are counted at the larger of declared and actual use, so a
 * container still loading its weights (using little so far) keeps its whole promise; memory in use that
 * cannot be attributed to our containers counts as someone else's.
 */
export function gpuHeadroom(gpus: GpuMemory[], allocations: VramAllocation[], reserveMiB: number): GpuHeadroom[] {
  return gpus.map((gpu) => {
    const ours = allocations.filter((a) => a.gpuIndex === gpu.index);
    const seenOurs = ours.reduce((sum, a) => sum + (a.actualMiB ?? 0), 0);
    const foreignMiB = Math.max(0, gpu.usedMiB - seenOurs);
    const allocatedMiB = ours.reduce((sum, a) => sum + Math.max(a.declaredMiB, a.actualMiB ?? 0), 0);
    const availableMiB = Math.max(0, gpu.totalMiB - reserveMiB - foreignMiB - allocatedMiB);
    return { index: gpu.index, totalMiB: gpu.totalMiB, reserveMiB, foreignMiB, allocatedMiB, availableMiB };
  });
}

/** Per-GPU share of a request (rounded up, so the shares never sum below the request). */
export function perGpuShare(request: Pick<VramRequest, 'vramMiB' | 'gpuCount'>): number {
  return Math.ceil(request.vramMiB / Math.max(1, request.gpuCount));
}

/**
 * Picks `gpuCount` GPUs whose available VRAM holds the per-GPU share: the tightest fits first (keeping large
 * holes for large services), ties by index. Never returns a GPU whose share would exceed its headroom.
 */
export function admit(gpus: GpuMemory[], allocations: VramAllocation[], reserveMiB: number, request: VramRequest): AdmissionDecision {
  const perGpuMiB = perGpuShare(request);
  if (gpus.length === 0) return { fits: false, perGpuMiB, reason: 'no GPU on this host' };
  const allowed = gpuHeadroom(gpus, allocations, reserveMiB).filter((g) => !request.gpuIndexes || request.gpuIndexes.includes(g.index));
  if (allowed.length < request.gpuCount) {
    return { fits: false, perGpuMiB, reason: `needs ${request.gpuCount} GPU(s), ${allowed.length} allowed on this host` };
  }
  const fitting = allowed.filter((g) => g.availableMiB >= perGpuMiB).sort((a, b) => a.availableMiB - b.availableMiB || a.index - b.index);
  if (fitting.length < request.gpuCount) {
    const best = allowed.map((g) => `GPU ${g.index}: ${g.availableMiB} MiB free after reserve`).join(', ');
    return { fits: false, perGpuMiB, reason: `needs ${perGpuMiB} MiB on each of ${request.gpuCount} GPU(s); ${best}` };
  }
  return {
    fits: true,
    perGpuMiB,
    gpuIndexes: fitting
      .slice(0, request.gpuCount)
      .map((g) => g.index)
      .sort((a, b) => a - b),
  };
}

/**
 * The priority each workspace's admin granted it (its minServicePriority), by workspace id; a workspace not in
 * it ranks last (5).
 */
export type GrantedPriorities = ReadonlyMap<string, number>;

/**
 * Whether a container of `request` may stop `victim`'s idle service to make room. Within a workspace, by the
 * services' own priorities. Across workspaces, a tenant's own numbers do not count alone: its workspace must
 * also have been granted a more urgent priority by the admin than the victim's workspace (so tenants of equal
 * standing never stop each other's services, and none stops the admin's).
 */
export function mayStop(
  request: { poolKey: PoolKey; priority: number },
  victim: { poolKey: PoolKey; priority: number },
  granted: GrantedPriorities,
): boolean {
  if (victim.poolKey === request.poolKey || victim.priority <= request.priority) return false;
  const ours = splitPoolKey(request.poolKey).workspaceId;
  const theirs = splitPoolKey(victim.poolKey).workspaceId;
  return ours === theirs || (granted.get(ours) ?? 5) < (granted.get(theirs) ?? 5);
}

/**
 * Idle services of lower priority whose stopping would let the request fit, fewest and lowest-priority
 * first. Empty when stopping every candidate would still not be enough (then nothing is stopped: the
 * job waits rather than losing a service for nothing).
 */
export function servicesToStopForRoom(
  gpus: GpuMemory[],
  allocations: VramAllocation[],
  reserveMiB: number,
  request: VramRequest,
  granted: GrantedPriorities = new Map(),
): PoolKey[] {
  const candidates = [...new Set(allocations.filter((a) => a.idle && mayStop(request, a, granted)).map((a) => a.poolKey))];
  const priorityOf = (poolKey: PoolKey) => Math.max(...allocations.filter((a) => a.poolKey === poolKey).map((a) => a.priority));
  const heldBy = (poolKey: PoolKey) => allocations.filter((a) => a.poolKey === poolKey).reduce((sum, a) => sum + a.declaredMiB, 0);
  // Lowest priority (largest number) first; among equals the one holding the most VRAM, then by name for stability.
  candidates.sort((a, b) => priorityOf(b) - priorityOf(a) || heldBy(b) - heldBy(a) || a.localeCompare(b));
  const stopped: PoolKey[] = [];
  for (const poolKey of candidates) {
    stopped.push(poolKey);
    const remaining = allocations.filter((a) => !stopped.includes(a.poolKey));
    if (admit(gpus, remaining, reserveMiB, request).fits) return withoutNeedless(stopped);
  }
  return [];

  // Greedy order can take a service the later ones made unnecessary: drop each one that is not needed.
  function withoutNeedless(chosen: PoolKey[]): PoolKey[] {
    let kept = [...chosen];
    for (const poolKey of chosen) {
      const trial = kept.filter((k) => k !== poolKey);
      if (
        admit(
          gpus,
          allocations.filter((a) => !trial.includes(a.poolKey)),
          reserveMiB,
          request,
        ).fits
      )
        kept = trial;
    }
    return kept;
  }
}

/** What admitting a request comes to: its GPUs, or why not and which idle services a stop would make room by. */
export type AdmissionPlan =
  | { fits: true; gpuIndexes: number[]; perGpuMiB: number }
  | { fits: false; perGpuMiB: number; reason: string; stopForRoom: PoolKey[] };

/**
 * The one VRAM admission decision: the docker provider acts on it (starts the container, or stops the
 * services in `stopForRoom` and reports a shortage), and GET /v1/available previews it. `isIdle` is asked only
 * when the request does not fit, and only about other pools' services it may stop (`mayStop`, with the
 * workspaces' granted priorities); a pool that does not answer counts as busy.
 */
export async function planVramAdmission(
  gpus: GpuMemory[],
  allocations: VramAllocation[],
  reserveMiB: number,
  request: VramRequest,
  isIdle: (poolKey: PoolKey) => Promise<boolean>,
  granted: GrantedPriorities = new Map(),
): Promise<AdmissionPlan> {
  const decision = admit(gpus, allocations, reserveMiB, request);
  if (decision.fits) return decision;
  const lower = [...new Set(allocations.filter((a) => mayStop(request, a, granted)).map((a) => a.poolKey))];
  const answers = await Promise.all(lower.map((key) => isIdle(key).catch(() => false)));
  const idle = new Set(lower.filter((_, i) => answers[i]));
  const withIdle = allocations.map((a) => ({ ...a, idle: idle.has(a.poolKey) }));
  return { ...decision, stopForRoom: servicesToStopForRoom(gpus, withIdle, reserveMiB, request, granted) };
}
