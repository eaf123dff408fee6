/**
 * A load generator in its own process, so that the clients do not share the API's event loop (as real clients
 * would not): `tsx bench/load-generator.ts '<LoadSpec as JSON>'` prints a LoadResult as JSON.
 * - closed: `clients` loops, each sending its next request when the last answered (measures throughput);
 * - open: requests at a fixed `rate` whatever the answers (measures latency at that load); each latency counts
 *   from when the request was due, so a stalled server is not hidden by requests that were never sent.
 */
import http from 'node:http';
import { percentile } from './percentile';

export interface LoadSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
  mode: 'closed' | 'open';
  seconds: number;
  clients?: number;
  rate?: number;
}

export interface LoadResult {
  requests: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  firstError?: string;
}

const agent = new http.Agent({ keepAlive: true, scheduling: 'lifo' });

function post(spec: LoadSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      spec.url,
      { method: 'POST', agent, headers: { ...spec.headers, 'content-length': Buffer.byteLength(spec.body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}`)),
        );
        res.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(spec.body);
  });
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const failed = (err: unknown) => {
    errors += 1;
    firstError ??= String(err);
  };
  const started = performance.now();
  const end = started + spec.seconds * 1000;
  if (spec.mode === 'closed') {
    await Promise.all(
      Array.from({ length: spec.clients ?? 1 }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          try {
            await post(spec);
            latencies.push(performance.now() - t);
          } catch (err) {
            failed(err);
          }
        }
      }),
    );
  } else {
    const interval = 1000 / (spec.rate ?? 100);
    const inFlight: Array<Promise<void>> = [];
    let sent = 0;
    while (performance.now() < end) {
      // Every request now due goes out, each timed from when it was due.
      while (started + sent * interval <= performance.now()) {
        const due = started + sent * interval;
        sent += 1;
        inFlight.push(post(spec).then(() => void latencies.push(performance.now() - due), failed));
      }
      await new Promise((r) => setTimeout(r, Math.max(0, started + sent * interval - performance.now())));
    }
    await Promise.all(inFlight);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    requests: latencies.length,
    requestsPerSecond: Number((latencies.length / seconds).toFixed(1)),
    p50: Number(percentile(latencies, 50).toFixed(2)),
    p99: Number(percentile(latencies, 99).toFixed(2)),
    errors,
    ...(firstError ? { firstError } : {}),
  };
}

if (require.main === module) {
  runLoad(JSON.parse(process.argv[2] ?? '{}') as LoadSpec).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
