/** The host's GPUs and our containers on them, as the API reports them (GET /v1/gpu, /v1/vram, /v1/available). */
import { type GpuHeadroom, type GpuMemory, gpuHeadroom, type VramAllocation } from '../domain/vram';
import { gpuMemory, type GpuProbe, type GpuProbeResult } from './probe';

/** What the API reads from the docker provider: the GPUs and what our containers hold on them. */
export interface VramFactsSource {
  vramFacts(probed?: GpuProbeResult): Promise<{ gpus: GpuMemory[] | null; allocations: VramAllocation[]; reason?: string }>;
  /** Why a service could not run this image on the engine (undefined: it can). */
  imageProblem(image: string, command?: string[]): Promise<string | undefined>;
}

/** What the API needs to see local capacity. `docker` is absent when the docker provider is off. */
export interface LocalGpus {
  probe: GpuProbe;
  docker?: VramFactsSource;
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

/** The host's VRAM accounting; pass a fresh probe result to reuse it. */
export async function vramReport(local: LocalGpus, probed?: GpuProbeResult): Promise<VramReport> {
  const report = probed ?? (await local.probe.probe());
  const facts = local.docker ? await local.docker.vramFacts(report) : { gpus: null, allocations: [] as VramAllocation[] };
  const headroom = gpuHeadroom(gpuMemory(report), facts.allocations, local.reserveMiB);
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
