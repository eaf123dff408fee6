import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseComputeApps, parseGpuQuery, parseMeminfo, parseSmiCsv } from '../../src/local-gpus/nvidia-smi';
import { GpuProbe } from '../../src/local-gpus/probe';
import { recordedNvidiaSmi } from '../helpers/docker';

const fixture = (name: string) => readFileSync(path.join(__dirname, '..', 'fixtures', 'nvidia-smi', name), 'utf8');

test('nvidia-smi --query-gpu: an RTX 4080 SUPER with 202 fields, units and [N/A] placeholders', () => {
  const [gpu, ...rest] = parseGpuQuery(fixture('query-gpu_1xRTX4080SUPER_allfields_csv.txt'));
  assert.equal(rest.length, 0);
  assert.deepEqual(gpu, {
    index: 0,
    uuid: 'GPU-00000000-0000-0000-0000-000000000000',
    name: 'NVIDIA GeForce RTX 4080 SUPER',
    utilizationPercent: 7,
    memoryTotalMiB: 16376,
    memoryUsedMiB: 1474,
    memoryFreeMiB: 14470,
    memoryReservedMiB: 434,
    temperatureC: 46,
    powerDrawW: 84.24,
    powerLimitW: 320,
    migEnabled: null,
  });
});

test('nvidia-smi --query-gpu: an H100 with MIG on reads utilization [N/A] as null and MIG as enabled', () => {
  const [gpu] = parseGpuQuery(fixture('query-gpu_1xH100_MIG_allfields_csv.txt'));
  assert.equal(gpu!.name, 'NVIDIA H100 80GB HBM3');
  assert.equal(gpu!.utilizationPercent, null);
  assert.equal(gpu!.migEnabled, true);
  assert.equal(gpu!.memoryTotalMiB, 81559);
  assert.equal(gpu!.memoryFreeMiB, 69956);
});

test('nvidia-smi --query-gpu: the Windows WDDM capture (239 fields, [Function Not Found]) still parses', () => {
  const [gpu] = parseGpuQuery(fixture('query-gpu_1xRTX2080SUPER_windows_allfields_csv.txt'));
  assert.equal(gpu!.memoryTotalMiB, 8192);
  assert.equal(gpu!.memoryUsedMiB, 1366);
  assert.equal(gpu!.powerDrawW, 97.99);
});

test('nvidia-smi --query-gpu: several GPUs, other field orders, free memory derived where not asked for', () => {
  const two = parseGpuQuery(fixture('query-gpu_2xGPU_csv.txt'));
  assert.deepEqual(
    two.map((g) => [g.uuid, g.memoryUsedMiB, g.utilizationPercent, g.temperatureC, g.powerDrawW, g.memoryTotalMiB]),
    [
      ['GPU-d86c351b-8f94-33ab-3b97-accb421fef6d', 754, 100, 71, 217.24, null],
      ['GPU-683c6e09-3969-31a5-b7ca-cc88252b7fce', 641, 100, 71, 208.3, null],
    ],
  );
  const three = parseGpuQuery(fixture('query-gpu_3xGPU_csv.txt'));
  assert.deepEqual(
    three.map((g) => [g.memoryTotalMiB, g.memoryUsedMiB, g.memoryFreeMiB, g.powerLimitW]),
    [
      [8119, 754, 7365, 216],
      [4043, 586, 3457, 216],
      [8119, 641, 7478, 216],
    ],
  );
});

test('nvidia-smi --query-gpu: a GB10 (unified memory) reports no memory, with or without header and units', () => {
  const [withHeader] = parseGpuQuery(fixture('query-gpu_1xGB10_unified_csv.txt'));
  assert.equal(withHeader!.name, 'NVIDIA GB10');
  assert.equal(withHeader!.memoryTotalMiB, null);
  assert.equal(withHeader!.memoryFreeMiB, null);
  const [bare] = parseGpuQuery(fixture('query-gpu_1xGB10_unified_csv_noheader_nounits.txt'), [
    'index',
    'name',
    'memory.total',
    'memory.used',
    'memory.free',
  ]);
  assert.deepEqual(
    [bare!.index, bare!.name, bare!.memoryTotalMiB, bare!.memoryUsedMiB, bare!.memoryFreeMiB],
    [0, 'NVIDIA GB10', null, null, null],
  );
});

test('nvidia-smi: a lone [Not Supported] value is null, not text', () => {
  assert.deepEqual(parseSmiCsv(fixture('query-gpu_fan-speed_NotSupported_csv_noheader_nounits.txt'), ['fan.speed']), [
    { 'fan.speed': null },
  ]);
});

test('nvidia-smi --query-compute-apps: processes with memory, an empty list, and Windows rows with [N/A] memory', () => {
  const apps = parseComputeApps(fixture('query-compute-apps_1xRTX4080SUPER_csv.txt'));
  assert.deepEqual(
    apps.map((p) => [p.pid, p.processName, p.usedMemoryMiB]),
    [
      [2165, '/usr/bin/kwin_wayland', 25],
      [5022, 'ffmpeg', 503],
      [5021, 'ffmpeg', 360],
    ],
  );
  assert.deepEqual(parseComputeApps(fixture('query-compute-apps_1xH100_MIG_empty_csv.txt')), []);
  const mig = parseComputeApps(fixture('query-compute-apps_1xH100_MIG_csv.txt'));
  assert.deepEqual(
    mig.map((p) => p.usedMemoryMiB),
    [2296, 1272, 7484],
  );
  const windows = parseComputeApps(fixture('query-compute-apps_1xRTX2080SUPER_windows_wddm_NA_csv.txt'));
  assert.equal(windows.length, 21);
  assert.ok(windows.every((p) => p.usedMemoryMiB === null && p.pid !== null));
  assert.ok(
    windows.some((p) => p.processName?.includes(' ')),
    'paths with spaces survive',
  );
});

test('/proc/meminfo: total and available in MiB', () => {
  assert.deepEqual(parseMeminfo('MemTotal:       131072000 kB\nMemFree:         1000 kB\nMemAvailable:   65536000 kB\n'), {
    totalMiB: 128000,
    availableMiB: 64000,
  });
  assert.equal(parseMeminfo('nothing here'), null);
});

test('GPU probe: a recorded RTX 4080 SUPER with its processes', async () => {
  const probe = new GpuProbe({
    nvidiaSmiPath: recordedNvidiaSmi('query-gpu_1xRTX4080SUPER_allfields_csv.txt', 'query-compute-apps_1xRTX4080SUPER_csv.txt'),
  });
  const report = await probe.probe();
  assert.equal(report.available, true);
  assert.equal(report.gpus.length, 1);
  assert.deepEqual(report.gpus[0]!.memory, { totalMiB: 16376, usedMiB: 1474, freeMiB: 14470, source: 'nvidia-smi' });
  assert.equal(report.gpus[0]!.unifiedMemory, false);
  assert.equal(report.gpus[0]!.processes.length, 3);
});

test('GPU probe: a unified-memory GB10 falls back to /proc/meminfo for its memory', async () => {
  const probe = new GpuProbe({ nvidiaSmiPath: recordedNvidiaSmi('query-gpu_1xGB10_unified_csv.txt') });
  const report = await probe.probe();
  const meminfo = parseMeminfo(readFileSync('/proc/meminfo', 'utf8'))!;
  assert.equal(report.available, true);
  assert.equal(report.gpus[0]!.unifiedMemory, true);
  assert.equal(report.gpus[0]!.memory.source, 'meminfo');
  assert.equal(report.gpus[0]!.memory.totalMiB, meminfo.totalMiB);
  assert.ok(report.gpus[0]!.memory.freeMiB! > 0 && report.gpus[0]!.memory.freeMiB! <= meminfo.totalMiB);
});

test('GPU probe: no nvidia-smi means available: false with the reason', async () => {
  const report = await new GpuProbe({ nvidiaSmiPath: '/nonexistent/nvidia-smi' }).probe();
  assert.deepEqual([report.available, report.reason, report.gpus], [false, 'nvidia-smi not found', []]);
});
