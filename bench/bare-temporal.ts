/**
 * Bare Temporal on the same server, client and machine as the zeropool run beside it: a worker on its own task
 * queue, one workflow starting one activity (bench/bare/workflows.ts), started eagerly as the API starts jobs.
 * Measured the way `npm run bench` measures jobs: start → activity running in an open loop at `rate`, and a
 * closed loop of `clients` each starting one and waiting for it to end.
 */
import { Client } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { type NativeConnection, Worker } from '@temporalio/worker';
import { percentile } from './percentile';

export interface BareResult {
  submitToRunningMs: { p50: number; p90: number; p99: number; max: number };
  closedLoop: { clients: number; jobs: number; jobsPerSecond: number };
}

export async function measureBareTemporal(
  connection: NativeConnection,
  options: { jobs: number; rate: number; clients: number },
): Promise<BareResult> {
  const runningAt = new Map<string, number>();
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue: 'bare-baseline',
    workflowsPath: require.resolve('./bare/workflows'),
    activities: {
      async bareActivity() {
        runningAt.set(Context.current().info.workflowExecution?.workflowId ?? '', Date.now());
      },
    },
  });
  const running = worker.run();
  const client = new Client({ connection, namespace: 'default' });
  const start = (id: string) =>
    client.workflow.start('bareWorkflow', { workflowId: id, taskQueue: 'bare-baseline', requestEagerStart: true });
  try {
    // Warm-up, as the zeropool run has.
    await Promise.all(Array.from({ length: 20 }, async (_, i) => (await start(`bare-warm-${i}`)).result()));

    const sent: Array<Promise<{ id: string; sentAt: number; done: Promise<void> }>> = [];
    const began = Date.now();
    for (let i = 0; i < options.jobs; i++) {
      const wait = began + (i * 1000) / options.rate - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const sentAt = Date.now();
      const id = `bare-open-${i}`;
      sent.push(start(id).then((handle) => ({ id, sentAt, done: handle.result() })));
    }
    const opened = await Promise.all(sent);
    await Promise.all(opened.map((o) => o.done));
    const latencies = opened.map((o) => runningAt.get(o.id)! - o.sentAt);

    let next = 0;
    let finished = 0;
    const loopStart = Date.now();
    await Promise.all(
      Array.from({ length: options.clients }, async () => {
        while (next < options.jobs) {
          const id = `bare-closed-${next++}`;
          await (await start(id)).result();
          finished += 1;
        }
      }),
    );
    const seconds = (Date.now() - loopStart) / 1000;
    return {
      submitToRunningMs: {
        p50: percentile(latencies, 50),
        p90: percentile(latencies, 90),
        p99: percentile(latencies, 99),
        max: Math.max(...latencies),
      },
      closedLoop: { clients: options.clients, jobs: finished, jobsPerSecond: Number((finished / seconds).toFixed(1)) },
    };
  } finally {
    worker.shutdown();
    await running;
  }
}
