/**
 * Runs policies over a trace's apps, in worker threads when asked (one pool per app and policy is independent
 * of every other, so policies are shared out among the workers; results come back in policy order).
 */
import { readFileSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { oracleApp } from './oracle';
import { type Policy, selectPolicies } from './policies';
import { type AppResult, type SimulationKnobs, simulateApp } from './simulate';
import { parseTrace, type Trace } from './trace';

interface Job {
  file: string;
  seed: number;
  apps?: string[];
  policies: string[];
  knobs: SimulationKnobs;
  /** The app whose adaptive run also records its timeline (for the picture). */
  timelineApp?: string;
}

export function runPolicies(trace: Trace, policies: Policy[], knobs: SimulationKnobs, timelineApp?: string): AppResult[] {
  const results: AppResult[] = [];
  for (const policy of policies) {
    for (const app of trace.apps) {
      const timeline = policy.adaptive && app.app === timelineApp;
      results.push(policy.oracle ? oracleApp(app, knobs) : simulateApp(app, policy, knobs, trace.spanMs, { timeline }));
    }
  }
  return results;
}

/** The same in `workers` threads; each parses the trace itself (seconds) rather than receive it. */
export async function runPoliciesInWorkers(job: Omit<Job, 'policies'>, policies: Policy[], workers: number): Promise<AppResult[]> {
  const shares: string[][] = Array.from({ length: Math.min(workers, policies.length) }, () => []);
  policies.forEach((p, i) => {
    shares[i % shares.length].push(p.name);
  });
  const parts = await Promise.all(
    shares.map(
      (names) =>
        new Promise<AppResult[]>((resolve, reject) => {
          const worker = new Worker(__filename, {
            workerData: { ...job, policies: names } satisfies Job,
            // The worker runs this same TypeScript file: it needs tsx's loader as the main thread has it.
            execArgv: ['--require', require.resolve('tsx/cjs')],
          });
          worker.once('message', resolve);
          worker.once('error', reject);
          worker.once('exit', (code) => code !== 0 && reject(new Error(`evaluator worker exited with ${code}`)));
        }),
    ),
  );
  const byPolicy = new Map<string, AppResult[]>();
  for (const result of parts.flat()) byPolicy.set(result.policy, [...(byPolicy.get(result.policy) ?? []), result]);
  return policies.flatMap((p) => byPolicy.get(p.name) ?? []);
}

if (!isMainThread && parentPort && (workerData as Job | undefined)?.file) {
  const job = workerData as Job;
  const trace = parseTrace(readFileSync(job.file, 'utf8'), job.file, { seed: job.seed, ...(job.apps ? { apps: job.apps } : {}) });
  parentPort.postMessage(runPolicies(trace, selectPolicies(job.policies), job.knobs, job.timelineApp));
}
