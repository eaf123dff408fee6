/**
 * Prometheus metrics. Counters and histograms are fed by the activities that write the ledger, only when
 * their row was new (a retried activity counts once); pool gauges are read from the pool workflows when
 * scraped. One registry per process: the embedded stack serves both halves on the API's /metrics.
 */
import client from 'prom-client';
import { ledgerOwner, type LedgerEvent } from './db/ledger';
import type { PoolView } from './domain/types';
import { type PoolKey, splitPoolKey } from './ids';
import type { GpuReport } from './local-gpus/probe';
import type { VramReport } from './local-gpus/report';
import { scrapeSdkMetrics } from './sdk-metrics';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'zeropool_process_' });

const jobsTotal = new client.Counter({
  name: 'zeropool_jobs_total',
  help: 'Jobs that reached a terminal state, by outcome',
  labelNames: ['workspace', 'pool', 'status'],
  registers: [registry],
});
const queueSeconds = new client.Histogram({
  name: 'zeropool_job_queue_seconds',
  help: 'Submission to placement on a node slot',
  labelNames: ['workspace', 'pool'],
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
  registers: [registry],
});
const coldStartPhaseSeconds = new client.Histogram({
  name: 'zeropool_cold_start_phase_seconds',
  help: "A node's way up by phase (provider: the create or start call; boot: accepted to healthy) and rung (cold: a fresh node; stopped: a wake)",
  labelNames: ['workspace', 'pool', 'provider', 'rung', 'phase'],
  buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
  registers: [registry],
});

/** One phase of a node's way up, as the activity that ran it timed it (a retried call counts its own time). */
export function observeColdStartPhase(
  poolKey: PoolKey,
  provider: string,
  rung: 'cold' | 'stopped' | 'sleeping',
  phase: 'provider' | 'boot',
  seconds: number,
): void {
  const { workspaceId, poolName } = splitPoolKey(poolKey);
  coldStartPhaseSeconds.observe({ workspace: workspaceId, pool: poolName, provider, rung, phase }, seconds);
}

const coldStartSeconds = new client.Histogram({
  name: 'zeropool_node_cold_start_seconds',
  help: 'Provider accepted the node to node ready',
  labelNames: ['workspace', 'pool', 'provider', 'market'],
  buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
  registers: [registry],
});
const gpuSeconds = new client.Counter({
  name: 'zeropool_gpu_seconds_billed_total',
  help: 'Billed node-seconds of terminated nodes',
  labelNames: ['workspace', 'pool', 'provider', 'market', 'gpu'],
  registers: [registry],
});
const costUsd = new client.Counter({
  name: 'zeropool_cost_usd_total',
  help: 'Billed node-seconds × lane price of terminated nodes, in USD',
  labelNames: ['workspace', 'pool', 'provider', 'market', 'gpu'],
  registers: [registry],
});
export const httpRequests = new client.Histogram({
  name: 'zeropool_http_request_duration_seconds',
  help: 'API request duration',
  labelNames: ['method', 'route', 'status'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

/** OpenAI requests the hot path took (past the router and the body parser: src/api/openai-hot-path.ts). */
export const openAiHotPathRequests = new client.Counter({
  name: 'zeropool_openai_hot_path_requests_total',
  help: 'OpenAI requests served by the hot path (a key seen lately, a plain JSON body); the rest took the routed way',
  registers: [registry],
});

/** Where the Temporal SDK's own metrics are scraped (see src/sdk-metrics.ts); unset: ours only. */
let sdkMetricsUrl: string | undefined;
export function setSdkMetricsSource(url: string | undefined): void {
  sdkMetricsUrl = url;
}

/** The process's /metrics text: zeropool's metrics, then the Temporal SDK's. */
export async function metricsText(): Promise<string> {
  const ours = await registry.metrics();
  if (!sdkMetricsUrl) return ours;
  const sdk = await scrapeSdkMetrics(sdkMetricsUrl);
  return sdk ? `${ours}\n${sdk}` : ours;
}

/** A source read at most once per `maxAgeMs`: one sweep serves every gauge of a scrape; a failed read gives `fallback`. */
function sweptSource<T>(maxAgeMs: number, fallback: T): { set(source: () => Promise<T>): void; current(): Promise<T> } {
  let source: (() => Promise<T>) | undefined;
  let last: { at: number; value: Promise<T> } | undefined;
  return {
    set: (next) => {
      source = next;
      last = undefined;
    },
    current: () => {
      if (!source) return Promise.resolve(fallback);
      if (!last || Date.now() - last.at > maxAgeMs) last = { at: Date.now(), value: source().catch(() => fallback) };
      return last.value;
    },
  };
}

/** Live pool states for the gauges (set by the API process). */
const poolStates = sweptSource<PoolView[]>(1000, []);
export const setPoolStateSource = poolStates.set;
const currentPoolStates = poolStates.current;

new client.Gauge({
  name: 'zeropool_nodes',
  help: 'Nodes by pool, lane and state',
  labelNames: ['workspace', 'pool', 'provider', 'market', 'gpu', 'state'],
  registers: [registry],
  async collect() {
    this.reset();
    for (const view of await currentPoolStates()) {
      const { workspaceId, poolName } = splitPoolKey(view.poolId);
      for (const node of view.nodes) {
        const lane = node.lane;
        this.inc({
          workspace: workspaceId,
          pool: poolName,
          provider: lane?.provider ?? 'none',
          market: lane?.market ?? 'none',
          gpu: lane?.gpu ?? 'none',
          state: node.state,
        });
      }
    }
  },
});
new client.Gauge({
  name: 'zeropool_queue_depth',
  help: 'Jobs waiting for a slot, by pool',
  labelNames: ['workspace', 'pool'],
  registers: [registry],
  async collect() {
    this.reset();
    for (const view of await currentPoolStates()) {
      const { workspaceId, poolName } = splitPoolKey(view.poolId);
      this.set({ workspace: workspaceId, pool: poolName }, view.queued);
    }
  },
});

/** The host's GPUs and VRAM accounting for the GPU gauges (set by the API process). */
export interface LocalGpuSnapshot {
  gpus: GpuReport['gpus'];
  vram: Pick<VramReport, 'gpus' | 'allocations'>;
}
const localGpus = sweptSource<LocalGpuSnapshot | undefined>(1000, undefined);
export const setLocalGpuSource: (source: () => Promise<LocalGpuSnapshot>) => void = localGpus.set;
const currentLocalGpus = localGpus.current;

new client.Gauge({
  name: 'zeropool_gpu_memory_mib',
  help: 'GPU memory in MiB: total, used (by anything), and available for new services (after reserve, others and our containers)',
  labelNames: ['gpu', 'name', 'kind'],
  registers: [registry],
  async collect() {
    this.reset();
    const snapshot = await currentLocalGpus();
    for (const gpu of snapshot?.gpus ?? []) {
      const labels = { gpu: String(gpu.index), name: gpu.name ?? 'unknown' };
      if (gpu.memory.totalMiB !== null) this.set({ ...labels, kind: 'total' }, gpu.memory.totalMiB);
      if (gpu.memory.usedMiB !== null) this.set({ ...labels, kind: 'used' }, gpu.memory.usedMiB);
      const headroom = snapshot?.vram.gpus.find((g) => g.index === gpu.index);
      if (headroom) this.set({ ...labels, kind: 'available_for_services' }, headroom.availableMiB);
    }
  },
});
const gpuReading = (name: string, help: string, read: (gpu: GpuReport['gpus'][number]) => number | null) =>
  new client.Gauge({
    name,
    help,
    labelNames: ['gpu', 'name'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const gpu of (await currentLocalGpus())?.gpus ?? []) {
        const value = read(gpu);
        if (value !== null) this.set({ gpu: String(gpu.index), name: gpu.name ?? 'unknown' }, value);
      }
    },
  });
gpuReading('zeropool_gpu_utilization_percent', 'GPU utilisation (nvidia-smi utilization.gpu)', (g) => g.utilizationPercent);
gpuReading('zeropool_gpu_temperature_celsius', 'GPU temperature', (g) => g.temperatureC);
gpuReading('zeropool_gpu_power_watts', 'GPU power draw', (g) => g.powerDrawW);
new client.Gauge({
  name: 'zeropool_vram_allocated_mib',
  help: 'VRAM held for local service containers (the larger of declared and in use), by service and GPU',
  labelNames: ['workspace', 'service', 'gpu'],
  registers: [registry],
  async collect() {
    this.reset();
    for (const a of (await currentLocalGpus())?.vram.allocations ?? []) {
      const { workspaceId, poolName } = splitPoolKey(a.poolKey);
      this.inc({ workspace: workspaceId, service: poolName, gpu: String(a.gpuIndex) }, Math.max(a.declaredMiB, a.actualMiB ?? 0));
    }
  },
});

/** Per-pool money figures of the last 24 hours from the ledger (set by the API process). */
export interface PoolMoney {
  workspace: string;
  pool: string;
  costUsd: number;
  alwaysOnCostUsd: number;
  savingsUsd: number;
  idleTaxUsd: number;
}
/** The ledger query is heavier than a pool query: one sweep a minute serves every scrape. */
const poolMoney = sweptSource<PoolMoney[]>(60_000, []);
export const setPoolMoneySource = poolMoney.set;
const currentPoolMoney = poolMoney.current;
const moneyGauge = (name: string, help: string, pick: (m: PoolMoney) => number) =>
  new client.Gauge({
    name,
    help,
    labelNames: ['workspace', 'pool'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const m of await currentPoolMoney()) this.set({ workspace: m.workspace, pool: m.pool }, pick(m));
    },
  });
moneyGauge('zeropool_cost_24h_usd', 'Billed cost of the last 24 hours, from the ledger', (m) => m.costUsd);
moneyGauge(
  'zeropool_always_on_cost_24h_usd',
  'What the peak fleet kept on at the on-demand reference price would have cost in the last 24 hours',
  (m) => m.alwaysOnCostUsd,
);
moneyGauge(
  'zeropool_savings_24h_usd',
  'Always-on cost minus billed cost, last 24 hours (GET /v1/analytics: savings_usd)',
  (m) => m.savingsUsd,
);
moneyGauge('zeropool_idle_tax_24h_usd', 'Billed node time with no job running, last 24 hours', (m) => m.idleTaxUsd);

/** Feeds the counters from a ledger event that was just written for the first time. */
export function observeLedgerEvent(event: LedgerEvent): void {
  const owner = ledgerOwner(event);
  const workspace = owner.workspaceId;
  const pool = owner.poolName ?? '';
  const details = event.details ?? {};
  const lane = { provider: event.lane?.provider ?? 'none', market: event.lane?.market ?? 'none', gpu: event.lane?.gpu ?? 'none' };
  if (event.eventType.startsWith('job_')) {
    jobsTotal.inc({ workspace, pool, status: event.eventType.slice(4) });
    if (typeof details.queueMs === 'number') queueSeconds.observe({ workspace, pool }, details.queueMs / 1000);
  } else if (event.eventType === 'node_ready' && typeof details.bootSeconds === 'number') {
    coldStartSeconds.observe({ workspace, pool, provider: lane.provider, market: lane.market }, details.bootSeconds);
  } else if (event.eventType === 'node_terminated' && typeof details.billedSeconds === 'number') {
    gpuSeconds.inc({ workspace, pool, ...lane }, details.billedSeconds);
    // billedSeconds is the GPU's part; a node that was stopped adds its disk's cost, one that slept its sleeping cost.
    const storageUsd = typeof details.storageUsd === 'number' ? details.storageUsd : 0;
    const sleepingUsd = typeof details.sleepingUsd === 'number' ? details.sleepingUsd : 0;
    costUsd.inc({ workspace, pool, ...lane }, (details.billedSeconds * (event.lane?.pricePerHour ?? 0)) / 3600 + storageUsd + sleepingUsd);
  }
}
