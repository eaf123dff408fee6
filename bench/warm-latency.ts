/**
 * Warm-pool benchmark: submit→running latency (p50/p99 over 500 jobs) and sustained jobs per second, and in the
 * same run the bare-Temporal baseline (bench/bare-temporal.ts: one workflow starting one activity) measured the
 * same way, side by side (BENCH_BARE=0 leaves it out).
 * Starts its own stack (Temporal dev server, embedded PostgreSQL, worker, API) in a temp folder, warms a
 * pool, then measures over HTTP like a client would. `npm run bench` (BENCH_JOBS, BENCH_RATE, BENCH_CONCURRENCY;
 * BENCH_EAGER=0 starts job workflows without eager start, BENCH_TRACE=1 prints one job's history with times).
 *
 * submit→running = the node receiving the request (worker clock, same machine) minus the moment the
 * client began its POST /v1/jobs.
 */
import os from 'node:os';
import { measureBareTemporal } from './bare-temporal';
import type { JobView } from '../src/domain/types';
import { jobWorkflowId, poolKey, poolWorkflowId } from '../src/ids';
import { percentile, startBenchStack } from './stack';
import { workflowTaskStats } from './workflow-tasks';

const JOBS = Number(process.env.BENCH_JOBS ?? 500);
const RATE = Number(process.env.BENCH_RATE ?? 20);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);

async function main(): Promise<void> {
  const stack = await startBenchStack({ coldStartSeconds: 1, tokensPerSecond: 1000, eager: process.env.BENCH_EAGER !== '0' });
  const { db, temporal } = stack;
  const post = (url: string, body: unknown) => stack.call('POST', url, body);
  const get = (url: string) => stack.call('GET', url);

  await post('/v1/pools', {
    id: 'bench',
    model: 'bench-model',
    minNodes: 2,
    maxNodes: 2,
    slotsPerNode: 64,
    idleTimeoutSeconds: 3600,
    lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1 }],
  });
  for (;;) {
    const pool = await get('/v1/pools/bench');
    if (pool.nodes?.length === 2 && pool.nodes.every((n: { state: string }) => n.state === 'ready')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const payload = { prompt: 'bench', max_tokens: 1 };

  // Outcomes are read from PostgreSQL in batches rather than by polling the API, so that measuring
  // does not load the two cores the system under test runs on.
  async function waitAll(ids: Array<{ id: string; sentAt: number }>) {
    const sentAt = new Map(ids.map((i) => [i.id, i.sentAt]));
    const out: Array<{ latency: number; finishedAt: number }> = [];
    let pending = ids.map((i) => i.id);
    while (pending.length > 0) {
      const { rows } = await db.query('SELECT id, view FROM jobs WHERE id = ANY($1) AND finished_at IS NOT NULL', [pending]);
      for (const row of rows) {
        if (row.view.status !== 'completed') throw new Error(`job ${row.id} ${row.view.status}: ${row.view.error}`);
        out.push({ latency: row.view.startedAt - sentAt.get(row.id)!, finishedAt: row.view.finishedAt });
      }
      const done = new Set(rows.map((r) => r.id as string));
      pending = pending.filter((id) => !done.has(id));
      if (pending.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    return out;
  }

  // Warm-up: JIT, connection pools, workflow cache.
  await waitAll(
    await Promise.all(
      Array.from({ length: 20 }, async () => ({ sentAt: Date.now(), id: (await post('/v1/jobs', { pool: 'bench', payload })).id })),
    ),
  );

  // 1. Latency: open loop at RATE jobs/s.
  const sent: Array<Promise<{ id: string; sentAt: number }>> = [];
  const started = Date.now();
  for (let i = 0; i < JOBS; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sentAt = Date.now();
    sent.push(post('/v1/jobs', { pool: 'bench', payload }).then((r) => ({ id: r.id, sentAt })));
  }
  const sentJobs = await Promise.all(sent);
  const latencies = (await waitAll(sentJobs)).map((r) => r.latency);
  if (process.env.BENCH_TRACE === '1') {
    // Where one job's time goes: its history's event times relative to the POST.
    const { id, sentAt } = sentJobs[Math.floor(sentJobs.length / 2)];
    const history = await temporal.client.workflow.getHandle(`job:${id}`).fetchHistory();
    for (const event of history.events ?? []) {
      const t = Number(event.eventTime!.seconds) * 1000 + Math.round((event.eventTime!.nanos ?? 0) / 1e6);
      process.stdout.write(`job +${t - sentAt} ms  ${event.eventType}\n`);
    }
  }

  // 2. Throughput: CONCURRENCY clients in a closed loop, each submitting and waiting for its job to end. Each
  // waits as the bare baseline's clients do, on the workflow's result (BENCH_WAIT=poll: each polls PostgreSQL
  // every 50 ms instead, as before 2026-12-08; 32 pollers load the two cores the system under test runs on).
  const pollsDatabase = process.env.BENCH_WAIT === 'poll';
  const waitForEnd = pollsDatabase
    ? (id: string, sentAt: number) => waitAll([{ id, sentAt }])
    : async (id: string, sentAt: number) => {
        const view: JobView = await temporal.client.workflow.getHandle(jobWorkflowId(id)).result();
        if (view.status !== 'completed') throw new Error(`job ${id} ${view.status}: ${view.error}`);
        return [{ latency: view.startedAt! - sentAt, finishedAt: view.finishedAt! }];
      };
  let next = 0;
  const thrStart = Date.now();
  const results: Array<{ latency: number; finishedAt: number }> = [];
  const closedLoopJobIds: string[] = [];
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < JOBS) {
        next += 1;
        const sentAt = Date.now();
        const { id } = await post('/v1/jobs', { pool: 'bench', payload });
        closedLoopJobIds.push(id);
        results.push(...(await waitForEnd(id, sentAt)));
      }
    }),
  );
  const lastFinish = Math.max(...results.map((r) => r.finishedAt));
  const jobsPerSecond = results.length / ((lastFinish - thrStart) / 1000);
  const poolTasks = await workflowTaskStats(temporal.client, poolWorkflowId(poolKey('bench', 'bench')), thrStart, lastFinish);
  // Twenty jobs from the middle of the closed loop: their own workflow tasks, to set beside the pool's.
  const sampled = closedLoopJobIds.slice(Math.floor(closedLoopJobIds.length / 2) - 10, Math.floor(closedLoopJobIds.length / 2) + 10);
  const jobTasks = await Promise.all(
    sampled.map((id) => workflowTaskStats(temporal.client, jobWorkflowId(id), 0, Number.MAX_SAFE_INTEGER)),
  );
  const meanOf = (pick: (s: (typeof jobTasks)[number]) => number) =>
    Number((jobTasks.reduce((sum, s) => sum + pick(s), 0) / Math.max(1, jobTasks.length)).toFixed(1));

  const report = {
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model}`,
    jobs: JOBS,
    openLoopRatePerSecond: RATE,
    submitToRunningMs: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: Math.max(...latencies),
    },
    closedLoop: {
      clients: CONCURRENCY,
      waitsOn: pollsDatabase ? 'PostgreSQL, polled by each client' : 'the job workflow’s result',
      jobs: results.length,
      jobsPerSecond: Number(jobsPerSecond.toFixed(1)),
      submitToRunningP50Ms: percentile(
        results.map((r) => r.latency),
        50,
      ),
      /** The pool workflow's tasks during the closed loop (bench/workflow-tasks.ts). */
      poolWorkflow: { ...poolTasks, eventsPerJob: Number((poolTasks.events / results.length).toFixed(1)) },
      /** Means over 20 of its jobs: history events, workflow tasks, and a task's wait and run. */
      jobWorkflow: {
        events: meanOf((s) => s.events),
        workflowTasks: meanOf((s) => s.workflowTasks),
        queueMs: meanOf((s) => s.queueMs.mean),
        runMs: meanOf((s) => s.runMs.mean),
      },
    },
  };
  const bare =
    process.env.BENCH_BARE === '0'
      ? undefined
      : await measureBareTemporal(temporal.nativeConnection, { jobs: JOBS, rate: RATE, clients: CONCURRENCY });
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  process.stdout.write(
    `${JSON.stringify(
      {
        ...report,
        ...(bare
          ? {
              bareTemporal: bare,
              zeropoolOverBare: {
                submitToRunningP50: ratio(report.submitToRunningMs.p50, bare.submitToRunningMs.p50),
                submitToRunningP99: ratio(report.submitToRunningMs.p99, bare.submitToRunningMs.p99),
                closedLoopJobsPerSecond: ratio(report.closedLoop.jobsPerSecond, bare.closedLoop.jobsPerSecond),
              },
            }
          : {}),
      },
      null,
      2,
    )}\n`,
  );

  await stack.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
