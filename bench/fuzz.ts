/**
 * The long fuzz run (`npm run fuzz`): schemathesis against the whole stack in one process, first with a
 * workspace key, then with the admin key, FUZZ_EXAMPLES cases per operation and phase. Counts what the API
 * answered at its HTTP server (at least FUZZ_MIN_REQUESTS, 5,000 by default) and fails on any 5xx, any answer
 * that contradicts /openapi.json, or too few requests. Prints JSON; the figures go to the README.
 */
import os from 'node:os';
import { type FuzzRun, runSchemathesis } from '../test/helpers/schemathesis';
import { BENCH_ADMIN_KEY, startBenchStack } from './stack';

const EXAMPLES = Number(process.env.FUZZ_EXAMPLES ?? 25);
const MIN_REQUESTS = Number(process.env.FUZZ_MIN_REQUESTS ?? 5000);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;

async function main() {
  const stack = await startBenchStack({ coldStartSeconds: 0.2, tokensPerSecond: 500 });
  const pool = await stack.call('POST', '/v1/pools', {
    id: 'chat',
    model: 'fuzz-model',
    maxNodes: 2,
    slotsPerNode: 4,
    idleTimeoutSeconds: 5,
    lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.1 }],
  });
  const job = await stack.call('POST', '/v1/jobs', { pool: 'chat', payload: { prompt: 'hello' } });
  if (typeof job.id !== 'string') throw new Error(`setting up: ${JSON.stringify({ pool, job })}`);
  const keys = await fetch(`${stack.base}/v1/workspaces/bench/keys`, { headers: { authorization: `Bearer ${BENCH_ADMIN_KEY}` } }).then(
    (r) => r.json() as Promise<{ keys: { id: string }[] }>,
  );
  const knownIds = ['bench', 'chat', job.id, ...keys.keys.map((k) => k.id)];
  const runs: Record<string, Omit<FuzzRun, 'output'>> = {};
  let failed = false;
  for (const [label, key] of [
    ['workspace', stack.workspaceKey],
    ['admin', BENCH_ADMIN_KEY],
  ] as const) {
    const run = await runSchemathesis({ baseUrl: stack.base, key, maxExamples: EXAMPLES, knownIds, knownModel: 'fuzz-model', seed: SEED });
    const { output, ...summary } = run;
    // A fault of the fuzzer's interpreter: its name, not its whole traceback.
    const toolFaults = run.toolFaults.map((f) => ({
      operation: f.operation,
      message: /SystemError: [^\n]*/.exec(f.message)?.[0] ?? f.message.slice(0, 200),
    }));
    runs[label] = { ...summary, toolFaults };
    if (run.failures.length > 0 || (run.exitCode !== 0 && run.toolFaults.length === 0)) {
      failed = true;
      console.error(output.slice(-20_000));
    }
  }
  const served = { ...stack.served, byStatus: { ...stack.served.byStatus } };
  await stack.stop();
  const serverErrors = Object.entries(served.byStatus)
    .filter(([status]) => Number(status) >= 500)
    .reduce((n, [, count]) => n + count, 0);
  const result = {
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`,
    examplesPerOperation: EXAMPLES,
    requests: served.total,
    byStatus: served.byStatus,
    serverErrors,
    runs,
  };
  console.log(JSON.stringify(result, null, 2));
  // Counted at the server, a 5xx fails the run even where the fuzzer did not look (e.g. its own probes).
  if (failed || serverErrors > 0 || served.total < MIN_REQUESTS) {
    console.error(
      failed
        ? 'the fuzzer found a problem (above)'
        : serverErrors > 0
          ? `${serverErrors} answers were 5xx`
          : `only ${served.total} requests (want ${MIN_REQUESTS})`,
    );
    process.exit(1);
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
