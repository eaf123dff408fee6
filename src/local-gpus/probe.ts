/**
 * Reads the host's GPUs with nvidia-smi (CSV queries), falling back to /proc/meminfo for the memory of
 * unified-memory GPUs (GB10 / DGX Spark report `[N/A]` there). No nvidia-smi, or one that fails: no GPU.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { GpuMemory } from '../domain/vram';
import { COMPUTE_APPS_QUERY_FIELDS, GPU_QUERY_FIELDS, parseComputeApps, parseGpuQuery, parseMeminfo, type SmiProcess } from './nvidia-smi';

const run = promisify(execFile);

/** One GPU as the API shows it. Memory in MiB. */
export interface GpuInfo {
  index: number;
  uuid: string | null;
  name: string | null;
  utilizationPercent: number | null;
  memory: { totalMiB: number | null; usedMiB: number | null; freeMiB: number | null; source: 'nvidia-smi' | 'meminfo' };
  /** The GPU shares system memory (no dedicated VRAM figures from the driver). */
  unifiedMemory: boolean;
  migEnabled: boolean | null;
  temperatureC: number | null;
  powerDrawW: number | null;
  powerLimitW: number | null;
  processes: Array<{ pid: number | null; name: string | null; usedMemoryMiB: number | null }>;
}

/** What the host has, or why it has none. */
export interface GpuReport {
  available: boolean;
  reason?: string;
  gpus: GpuInfo[];
  probedAt: string;
}

export interface GpuProbeOptions {
  /** The nvidia-smi executable (a path or a name on PATH). */
  nvidiaSmiPath: string;
  meminfoPath?: string;
  /** Answers younger than this are reused (nvidia-smi takes tens of ms and the API may be polled). */
  cacheMs?: number;
}

/** The raw processes of the last probe too: the Docker provider attributes them to containers by pid. */
export interface GpuProbeResult extends GpuReport {
  rawProcesses: SmiProcess[];
}

/**
 * The memory figures VRAM admission works from: GPUs whose total is known; memory whose use is not
 * reported counts as all in use (never assume free what nobody said is free).
 */
export function gpuMemory(report: GpuReport): GpuMemory[] {
  return report.gpus
    .filter((g) => g.memory.totalMiB !== null)
    .map((g) => ({ index: g.index, totalMiB: g.memory.totalMiB!, usedMiB: g.memory.usedMiB ?? g.memory.totalMiB! }));
}

export class GpuProbe {
  private cached?: { at: number; result: Promise<GpuProbeResult> };

  constructor(private readonly options: GpuProbeOptions) {}

  probe(): Promise<GpuProbeResult> {
    const cacheMs = this.options.cacheMs ?? 1000;
    const now = Date.now();
    if (this.cached && now - this.cached.at < cacheMs) return this.cached.result;
    const result = this.read();
    this.cached = { at: now, result };
    return result;
  }

  /** Drops the cached answer (after starting or stopping a container). */
  invalidate(): void {
    this.cached = undefined;
  }

  private async smi(args: string[]): Promise<string> {
    const { stdout } = await run(this.options.nvidiaSmiPath, args, { timeout: 10_000, maxBuffer: 4 * 1024 * 1024 });
    return stdout;
  }

  private async read(): Promise<GpuProbeResult> {
    const probedAt = new Date().toISOString();
    let gpuCsv: string;
    try {
      gpuCsv = await this.smi([`--query-gpu=${GPU_QUERY_FIELDS.join(',')}`, '--format=csv,nounits']);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const reason = e.code === 'ENOENT' ? 'nvidia-smi not found' : `nvidia-smi failed: ${(e.stderr || e.message).trim().split('\n')[0]}`;
      return { available: false, reason, gpus: [], rawProcesses: [], probedAt };
    }
    const smiGpus = parseGpuQuery(gpuCsv);
    let rawProcesses: SmiProcess[] = [];
    try {
      rawProcesses = parseComputeApps(
        await this.smi([`--query-compute-apps=${COMPUTE_APPS_QUERY_FIELDS.join(',')}`, '--format=csv,nounits']),
      );
    } catch {
      // Process listing is extra detail; the GPUs are still known without it.
    }
    const needsMeminfo = smiGpus.some((g) => g.memoryTotalMiB === null);
    const meminfo = needsMeminfo
      ? await readFile(this.options.meminfoPath ?? '/proc/meminfo', 'utf8').then(parseMeminfo, () => null)
      : null;
    const gpus = smiGpus.map((g, position): GpuInfo => {
      const unified = g.memoryTotalMiB === null && meminfo !== null;
      const memory = unified
        ? {
            totalMiB: meminfo.totalMiB,
            usedMiB: meminfo.totalMiB - meminfo.availableMiB,
            freeMiB: meminfo.availableMiB,
            source: 'meminfo' as const,
          }
        : { totalMiB: g.memoryTotalMiB, usedMiB: g.memoryUsedMiB, freeMiB: g.memoryFreeMiB, source: 'nvidia-smi' as const };
      return {
        index: g.index ?? position,
        uuid: g.uuid,
        name: g.name,
        utilizationPercent: g.utilizationPercent,
        memory,
        unifiedMemory: unified,
        migEnabled: g.migEnabled,
        temperatureC: g.temperatureC,
        powerDrawW: g.powerDrawW,
        powerLimitW: g.powerLimitW,
        processes: rawProcesses
          .filter((p) => p.gpuUuid !== null && p.gpuUuid === g.uuid)
          .map((p) => ({ pid: p.pid, name: p.processName, usedMemoryMiB: p.usedMemoryMiB })),
      };
    });
    if (gpus.length === 0) return { available: false, reason: 'nvidia-smi lists no GPU', gpus, rawProcesses, probedAt };
    return { available: true, gpus, rawProcesses, probedAt };
  }
}
