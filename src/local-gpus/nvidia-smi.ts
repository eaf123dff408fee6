/**
 * Parses `nvidia-smi --query-gpu=… --format=csv` and `--query-compute-apps=…` output. Works with or without
 * the header line and with or without units, keys values by field name (any field order), and turns the
 * placeholders nvidia-smi prints (`[N/A]`, `[Not Supported]`, `N/A`, `[Requested functionality …]`) into null.
 */

/** The fields the GPU probe asks for, in this order. */
export const GPU_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'utilization.gpu',
  'memory.total',
  'memory.used',
  'memory.free',
  'memory.reserved',
  'temperature.gpu',
  'power.draw',
  'power.limit',
  'mig.mode.current',
] as const;

/** The fields the probe asks for about processes. */
export const COMPUTE_APPS_QUERY_FIELDS = ['gpu_uuid', 'pid', 'process_name', 'used_gpu_memory'] as const;

/** One row: field name (units stripped) to raw value (units stripped), null where nvidia-smi had none. */
export type SmiRow = Record<string, string | null>;

/** A GPU as nvidia-smi reports it; memory in MiB, null when the driver does not say. */
export interface SmiGpu {
  index: number | null;
  uuid: string | null;
  name: string | null;
  utilizationPercent: number | null;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  memoryReservedMiB: number | null;
  temperatureC: number | null;
  powerDrawW: number | null;
  powerLimitW: number | null;
  migEnabled: boolean | null;
}

/** A compute process on a GPU. */
export interface SmiProcess {
  gpuUuid: string | null;
  pid: number | null;
  processName: string | null;
  usedMemoryMiB: number | null;
}

/** nvidia-smi writes these when a field has no value on this GPU or driver. */
function isPlaceholder(value: string): boolean {
  return value === '' || /^\[.*\]$/.test(value) || value === 'N/A' || value === 'Not Supported';
}

/** "memory.used [MiB]" -> "memory.used". */
function fieldName(header: string): string {
  return header.replace(/\s*\[[^\]]*\]\s*$/, '').trim();
}

/** "1474 MiB" -> "1474", "7 %" -> "7", "84.24 W" -> "84.24"; other text is kept. */
function stripUnit(value: string): string {
  const match = /^(-?\d+(?:\.\d+)?)\s*(MiB|GiB|%|W|MHz|C)$/.exec(value);
  return match ? match[1]! : value;
}

function looksLikeHeader(cells: string[], fields: readonly string[] | undefined): boolean {
  if (!fields) return true;
  return cells.some((cell) => fields.includes(fieldName(cell)));
}

/**
 * Splits CSV output into rows keyed by field. `fields` names the columns when the output has no header
 * (`noheader`); with a header it is ignored. Surplus cells (a comma inside a process name) join the last
 * text column they belong to.
 */
export function parseSmiCsv(output: string, fields?: readonly string[]): SmiRow[] {
  const lines = output.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (lines.length === 0) return [];
  const first = lines[0]!.split(',').map((cell) => cell.trim());
  let names: string[];
  let body: string[];
  if (looksLikeHeader(first, fields)) {
    names = first.map(fieldName);
    body = lines.slice(1);
  } else {
    names = [...fields!];
    body = lines;
  }
  return body.map((line) => {
    let cells = line.split(',').map((cell) => cell.trim());
    if (cells.length > names.length) {
      const textColumn = Math.max(0, names.indexOf('process_name'));
      const surplus = cells.length - names.length;
      const joined = cells.slice(textColumn, textColumn + surplus + 1).join(', ');
      cells = [...cells.slice(0, textColumn), joined, ...cells.slice(textColumn + surplus + 1)];
    }
    const row: SmiRow = {};
    names.forEach((name, i) => {
      const raw = cells[i];
      row[name] = raw === undefined || isPlaceholder(raw) ? null : stripUnit(raw);
    });
    return row;
  });
}

function numberOf(row: SmiRow, field: string): number | null {
  const raw = row[field];
  if (raw === null || raw === undefined) return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

function textOf(row: SmiRow, field: string): string | null {
  return row[field] ?? null;
}

/** GPUs from `--query-gpu` output. Free memory missing from the output is derived from total, reserved and used. */
export function parseGpuQuery(output: string, fields: readonly string[] = GPU_QUERY_FIELDS): SmiGpu[] {
  return parseSmiCsv(output, fields).map((row) => {
    const total = numberOf(row, 'memory.total');
    const used = numberOf(row, 'memory.used');
    const reserved = numberOf(row, 'memory.reserved');
    let free = numberOf(row, 'memory.free');
    if (free === null && total !== null && used !== null) free = Math.max(0, total - used - (reserved ?? 0));
    const mig = textOf(row, 'mig.mode.current');
    return {
      index: numberOf(row, 'index'),
      uuid: textOf(row, 'uuid'),
      name: textOf(row, 'name'),
      utilizationPercent: numberOf(row, 'utilization.gpu'),
      memoryTotalMiB: total,
      memoryUsedMiB: used,
      memoryFreeMiB: free,
      memoryReservedMiB: reserved,
      temperatureC: numberOf(row, 'temperature.gpu'),
      powerDrawW: numberOf(row, 'power.draw'),
      powerLimitW: numberOf(row, 'power.limit'),
      migEnabled: mig === null ? null : mig.toLowerCase() === 'enabled',
    };
  });
}

/** Processes from `--query-compute-apps` output (`used_memory` is nvidia-smi's alias of `used_gpu_memory`). */
export function parseComputeApps(output: string, fields: readonly string[] = COMPUTE_APPS_QUERY_FIELDS): SmiProcess[] {
  return parseSmiCsv(output, fields).map((row) => ({
    gpuUuid: textOf(row, 'gpu_uuid'),
    pid: numberOf(row, 'pid'),
    processName: textOf(row, 'process_name'),
    usedMemoryMiB: numberOf(row, 'used_gpu_memory') ?? numberOf(row, 'used_memory'),
  }));
}

/** MemTotal and MemAvailable from /proc/meminfo, in MiB (unified-memory GPUs share this pool). */
export function parseMeminfo(text: string): { totalMiB: number; availableMiB: number } | null {
  const kib = (key: string): number | null => {
    const match = new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(text);
    return match ? Number(match[1]) : null;
  };
  const total = kib('MemTotal');
  const available = kib('MemAvailable') ?? kib('MemFree');
  if (total === null || available === null) return null;
  return { totalMiB: Math.floor(total / 1024), availableMiB: Math.floor(available / 1024) };
}
