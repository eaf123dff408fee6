/**
 * The Temporal SDK's own metrics (task slots, schedule-to-start latency, polls, sticky cache, RPC errors).
 * The SDK's core serves them from its own Prometheus endpoint, which must be configured before the first
 * native connection: we bind it on loopback and serve its text after ours on the process's /metrics, so one
 * scrape target has both. Counters end in `_total` and durations are in seconds, as Prometheus prefers.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { freePort } from './stack/free-port';

/**
 * Installs the SDK runtime with its Prometheus exporter on a free loopback port; returns the scrape URL.
 * `shutdownSignals: []` keeps the SDK from shutting the worker down on SIGINT/SIGTERM by itself, for a process
 * that stops its parts in its own order (src/main.ts: the API gives its leases back while the worker still runs).
 */
export async function installSdkMetrics(logLevel: 'WARN' | 'INFO' = 'INFO', shutdownSignals?: NodeJS.Signals[]): Promise<string> {
  const port = await freePort();
  Runtime.install({
    ...(shutdownSignals ? { shutdownSignals } : {}),
    logger: new DefaultLogger(logLevel),
    telemetryOptions: {
      metrics: {
        prometheus: { bindAddress: `127.0.0.1:${port}`, countersTotalSuffix: true, useSecondsForDurations: true },
      },
    },
  });
  return `http://127.0.0.1:${port}/metrics`;
}

/** The SDK's metrics as Prometheus text; empty when the endpoint does not answer within a second. */
export async function scrapeSdkMetrics(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok ? await res.text() : '';
  } catch {
    return '';
  }
}
