/** The host's GPUs and our containers on them, as the API reports them (GET /v1/gpu, /v1/vram, /v1/available). */
import type { DockerProvider } from '../activities/providers/docker';
import { gpuHeadroom, type GpuHeadroom, type VramAllocation } from '../domain/vram';
import type { GpuProbe } from '../gpu/probe';

/** What the API needs to see local capacity. `docker` is absent when the docker provider is off. */
export interface LocalGpus {
  probe: GpuProbe;
  docker?: DockerProvider;
  reserveMiB: number;
}

/** VRAM accounting of the host: per GPU, and per container of ours. */
export interface VramReport {
  available: boolean;
  reason?: string;
  reserveMiBPerGpu: number;
  gpus: Array<GpuHeadroom & { name: string | null; usedMiB: number }>;
  allocations: VramAllocation[];
  totals: { totalMiB: number; reservedMiB: number; foreignMiB: number; allocatedMiB: number; availableMiB: number };
  /** The largest VRAM a new one-GPU service could get now. */
  largestFreeMiB: number;
}

export async function vramReport(local: LocalGpus): Promise<VramReport> {
  const report = await local.probe.probe();
  const facts = local.docker ? await local.docker.vramFacts() : { gpus: null, allocations: [] as VramAllocation[] };
  const memory = report.gpus
    .filter((g) => g.memory.totalMiB !== null)
    .map((g) => ({ index: g.index, totalMiB: g.memory.totalMiB!, usedMiB: g.memory.usedMiB ?? g.memory.totalMiB! }));
  const headroom = gpuHeadroom(memory, facts.allocations, local.reserveMiB);
  const gpus = headroom.map((h) => {
    const info = report.gpus.find((g) => g.index === h.index)!;
    return { ...h, name: info.name, usedMiB: info.memory.usedMiB ?? h.totalMiB };
  });
  const sum = (pick: (g: GpuHeadroom) => number) => headroom.reduce((total, g) => total + pick(g), 0);
  return {
    available: report.available,
    ...(report.reason ? { reason: report.reason } : {}),
    reserveMiBPerGpu: local.reserveMiB,
    gpus,
    allocations: facts.allocations,
    totals: {
      totalMiB: sum((g) => g.totalMiB),
      reservedMiB: sum((g) => Math.min(g.reserveMiB, g.totalMiB)),
      foreignMiB: sum((g) => g.foreignMiB),
      allocatedMiB: sum((g) => g.allocatedMiB),
      availableMiB: sum((g) => g.availableMiB),
    },
    largestFreeMiB: Math.max(0, ...headroom.map((g) => g.availableMiB)),
  };
}
