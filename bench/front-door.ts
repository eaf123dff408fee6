/**
 * OpenAI front door benchmark (`npm run bench:front-door`), side by side in one run:
 * 1. warm pool, the mock node called directly vs through a bare keep-alive proxy (bench/bare-proxy.ts, the
 *    yardstick) vs through POST /v1/chat/completions, from a load generator in its own process: BENCH_CLIENTS closed loops for BENCH_SECONDS (throughput), then BENCH_RATE
 *    requests/s open loop (latency p50/p99 at that load, and what the front door adds);
 * 2. BENCH_STREAMS concurrent streaming requests at once (all must complete);
 * 3. a pool at zero: time from the request to its first token minus the mock's boot (BENCH_COLD_RUNS runs);
 * 4. a pool whose node is stopped (the ladder's stopped rung): time from the request to its first token minus
 *    the wake (the provider's start call and the boot, as the pool timed them), BENCH_COLD_RUNS runs.
 * BENCH_ROUNDS=n alternates n pairs of closed loops (bare proxy, front door) and prints the ratio's median.
 * BENCH_PROFILE=<path> also records CPU profiles of this process during the closed loops of the bare proxy and the front door.
 * Prints JSON. Not a test: figures go to the README and the issue note.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { jobWorkflowId } from '../src/ids';
import { jobStateQuery } from '../src/workflows/messages';
import { startBareProxy } from './bare-proxy';
import type { LoadResult, LoadSpec } from './load-generator';
import { type BenchStack, percentile, startBenchStack, until } from './stack';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);
/** Pairs of closed loops (bare proxy, then front door) in the warm part; the ratio's median is printed. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1));
/** The open loop's offered load (requests/s). */
const RATE = Number(process.env.BENCH_RATE ?? 300);
const BOOT_SECONDS = 1;
/** Which parts to run (comma-separated: warm, streams, cold, wake); all by default. */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'warm,streams,cold,wake').split(','));

/**
 * How many of the warm pool's requests took each path so far (less `since`): the fast path (a leased slot) or
 * the workflow way (a lease that lapsed or ran out of slots), read from their ledger rows once they are written.
 */
async function pathsTaken(stack: BenchStack, since = { fast: 0, workflow: 0 }): Promise<{ fast: number; workflow: number }> {
  await new Promise((r) => setTimeout(r, 3000));
  const { rows } = await stack.db.query<{ fast: string; workflow: string }>(
    `SELECT count(*) FILTER (WHERE details->>'fastPath' = 'true') AS fast, count(*) FILTER (WHERE details->>'fastPath' IS NULL) AS workflow
       FROM ledger WHERE workspace_id = 'bench' AND pool_id = 'warm' AND details->>'kind' = 'request'`,
  );
  return { fast: Number(rows[0]!.fast) - since.fast, workflow: Number(rows[0]!.workflow) - since.workflow };
}

/**
 * A closed loop's result with the CPU this process (the API, the bare proxy, the worker) spent per request: the
 * figure that says what each path costs whatever else shares the machine's cores.
 */
async function withCpu(
  run: () => Promise<LoadResult>,
): Promise<LoadResult & { processCpuMsPerRequest: number; mainThreadMsPerRequest: number }> {
  const before = process.cpuUsage();
  const loopBefore = performance.eventLoopUtilization();
  const result = await run();
  const used = process.cpuUsage(before);
  const loop = performance.eventLoopUtilization(loopBefore);
  const requests = Math.max(1, result.requests);
  return {
    ...result,
    // Every thread of the process (the main one, GC, libuv's pool, the Temporal worker's native threads)…
    processCpuMsPerRequest: Number(((used.user + used.system) / 1000 / requests).toFixed(3)),
    // …and the main thread's busy time alone (JavaScript runs there: the path's own cost).
    mainThreadMsPerRequest: Number((loop.active / requests).toFixed(3)),
  };
}

/**
 * With BENCH_PROFILE=<path>, a CPU profile of this process (the API, the worker) while `run` runs, written as
 * <path>.<label>.cpuprofile (Chrome DevTools, speedscope) and its top functions by self time printed to stderr.
 */
async function profiled<T>(label: string, run: () => Promise<T>): Promise<T> {
  if (!process.env.BENCH_PROFILE) return run();
  const file = `${process.env.BENCH_PROFILE}.${label}.cpuprofile`;
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<any>((resolve, reject) => session.post(method, params, (err, out) => (err ? reject(err) : resolve(out))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  const result = await run();
  const { profile } = await post('Profiler.stop');
  session.disconnect();
  await writeFile(file, JSON.stringify(profile));
  process.stderr.write(`${label} (${file}):\n${topSelfTime(profile).join('\n')}\n`);
  return result;
}

/** The 40 functions with the most self time in a V8 CPU profile, as `percent  name  file:line`. */
function topSelfTime(profile: { nodes: ProfileNode[]; samples: number[] }): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of profile.samples) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const key = `${functionName || '(anonymous)'}  ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/src\//, 'src/')}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 40)
    .map(([key, n]) => `${((100 * n) / profile.samples.length).toFixed(1).padStart(5)}%  ${key}`);
}
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** Runs the load generator in its own process (bench/load-generator.ts) and returns what it measured. */
function load(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'load-generator.ts'), JSON.stringify(spec)],
      { maxBuffer: 1 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as LoadResult)),
    );
  });
}

async function main(): Promise<void> {
  const stack = await startBenchStack({ coldStartSeconds: BOOT_SECONDS, tokensPerSecond: 100_000 });
  const chat = (stream: boolean, maxTokens = 1) => ({
    model: 'bench-model',
    messages: [{ role: 'user', content: 'bench' }],
    max_tokens: maxTokens,
    ...(stream ? { stream: true } : {}),
  });
  const viaFrontDoor = async (body: unknown) => {
    const res = await fetch(`${stack.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.workspaceKey}` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} ${text.slice(0, 200)}`);
    return text;
  };

  await stack.call('POST', '/v1/pools', {
    id: 'warm',
    model: 'bench-model',
    minNodes: 2,
    maxNodes: 2,
    slotsPerNode: Number(process.env.BENCH_SLOTS ?? 500),
    idleTimeoutSeconds: 3600,
    lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1 }],
  });
  const nodes = await until(async () => {
    const pool = await stack.call('GET', '/v1/pools/warm');
    return pool.nodes?.length === 2 && pool.nodes.every((n: { state: string }) => n.state === 'ready') ? pool.nodes : undefined;
  });
  const node = nodes[0] as { id: string; url: string };
  // Warm-up: JIT, connection pools, workflow cache.
  await Promise.all(Array.from({ length: 20 }, () => viaFrontDoor(chat(false))));
  const report: Record<string, unknown> = {
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model}`,
  };

  if (PARTS.has('warm')) {
    const body = JSON.stringify(chat(false));
    const directSpec = {
      url: `${node.url}/v1/chat/completions`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.nodeToken(node.id)}` },
      body,
    };
    const frontDoorSpec = {
      url: `${stack.base}/v1/chat/completions`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.workspaceKey}` },
      body,
    };
    const closed = { mode: 'closed' as const, clients: CLIENTS, seconds: SECONDS };
    const open = { mode: 'open' as const, rate: RATE, seconds: SECONDS };
    const direct = { closed: await load({ ...directSpec, ...closed }), open: await load({ ...directSpec, ...open }) };
    const proxy = await startBareProxy(node.url, stack.nodeToken(node.id));
    const proxySpec = { url: `${proxy.url}/v1/chat/completions`, headers: { 'content-type': 'application/json' }, body };
    const bareProxy = {
      closed: await withCpu(() => profiled('bare-proxy', () => load({ ...proxySpec, ...closed }))),
      open: await load({ ...proxySpec, ...open }),
    };
    const frontDoorClosed = await withCpu(() => profiled('front-door', () => load({ ...frontDoorSpec, ...closed })));
    // More alternating pairs of closed loops (BENCH_ROUNDS), so the ratio is a median, not one draw of the
    // machine's weather.
    const rounds: Array<{ bareProxy: number; frontDoor: number; ratio: number; mainThreadMs: [number, number] }> = [];
    for (let round = 1; round < ROUNDS; round++) {
      const viaProxy = await withCpu(() => load({ ...proxySpec, ...closed }));
      const viaFrontDoor = await withCpu(() => load({ ...frontDoorSpec, ...closed }));
      rounds.push({
        bareProxy: viaProxy.requestsPerSecond,
        frontDoor: viaFrontDoor.requestsPerSecond,
        ratio: Number((viaFrontDoor.requestsPerSecond / viaProxy.requestsPerSecond).toFixed(2)),
        mainThreadMs: [viaFrontDoor.mainThreadMsPerRequest, viaProxy.mainThreadMsPerRequest],
      });
    }
    proxy.close();
    const before = await pathsTaken(stack);
    const frontDoor = {
      closed: frontDoorClosed,
      open: { ...(await load({ ...frontDoorSpec, ...open })), paths: await pathsTaken(stack, before) },
    };
    report.warm = {
      seconds: SECONDS,
      // Throughput: CLIENTS closed loops (latency there is CLIENTS / throughput, whatever the path costs).
      closedLoop: {
        clients: CLIENTS,
        direct: direct.closed,
        bareProxy: bareProxy.closed,
        frontDoor: frontDoor.closed,
        frontDoorOverBareProxy: Number((frontDoor.closed.requestsPerSecond / bareProxy.closed.requestsPerSecond).toFixed(2)),
        ...(rounds.length > 0
          ? {
              // Every pair, the first above included: [front door, bare proxy] main-thread ms per request each.
              rounds,
              medianFrontDoorOverBareProxy: Number(
                percentile(
                  [frontDoor.closed.requestsPerSecond / bareProxy.closed.requestsPerSecond, ...rounds.map((r) => r.ratio)],
                  50,
                ).toFixed(2),
              ),
            }
          : {}),
      },
      // Latency at a load: RATE requests/s whatever the answers, each timed from when it was due.
      openLoop: {
        requestsPerSecond: RATE,
        direct: direct.open,
        bareProxy: bareProxy.open,
        frontDoor: frontDoor.open,
        addedLatencyMs: {
          p50: Number((frontDoor.open.p50 - direct.open.p50).toFixed(2)),
          p99: Number((frontDoor.open.p99 - direct.open.p99).toFixed(2)),
        },
      },
    };
  }

  if (PARTS.has('streams')) {
    const streamsStarted = Date.now();
    const streamResults = await Promise.allSettled(Array.from({ length: STREAMS }, () => viaFrontDoor(chat(true, 5))));
    const streamFailures = streamResults.filter((r) => r.status === 'rejected' || !r.value.includes('data: [DONE]'));
    report.concurrentStreams = {
      streams: STREAMS,
      failed: streamFailures.length,
      seconds: Number(((Date.now() - streamsStarted) / 1000).toFixed(1)),
      // What the first failures said (an error event in an otherwise complete stream counts as a failure).
      failures: streamFailures.slice(0, 3).map((r) => (r.status === 'rejected' ? String(r.reason).slice(0, 300) : r.value.slice(-300))),
    };
  }

  if (PARTS.has('cold')) report.coldStart = await coldStarts(stack, chat);
  if (PARTS.has('wake')) report.wakeFromStopped = await wakes(stack, chat);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  await stack.stop();
}

/**
 * A pool at zero, COLD_RUNS times: a streaming request's first token minus the mock's boot (which the mock counts
 * from the provider's create call, as a cloud's boot counts from its API call). Each run is split where the
 * request's `X-Zeropool-Cold-Start-Ms` says: its arrival at the pool → its node ready (start, boot, readiness
 * check), the rest being the request's way to the pool and the placement's way back to the API and the node.
 */
async function coldStarts(stack: BenchStack, chat: (stream: boolean, maxTokens?: number) => Record<string, unknown>) {
  await stack.call('POST', '/v1/pools', {
    id: 'cold',
    model: 'cold-model',
    maxNodes: 1,
    slotsPerNode: 8,
    idleTimeoutSeconds: 3600,
    lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1 }],
  });
  const overBoot: number[] = [];
  const readyOverBoot: number[] = [];
  for (let run = 0; run < COLD_RUNS; run++) {
    await until(async () => {
      const pool = await stack.call('GET', '/v1/pools/cold');
      return pool.nodes?.length === 0 && pool.phase === 'idle';
    });
    // A stream's headers go out while it waits, before the cold start is known: the request's workflow has it.
    const { ms, view } = await firstToken(stack, { ...chat(true, 2), model: 'cold-model' });
    overBoot.push(ms - BOOT_SECONDS * 1000);
    const coldStartMs = view.coldStartMs ?? 0;
    if (coldStartMs > 0) readyOverBoot.push(coldStartMs - BOOT_SECONDS * 1000);
    await stack.call('POST', '/v1/pools/cold/scale-to-zero');
  }
  return {
    bootSeconds: BOOT_SECONDS,
    runs: overBoot.length,
    firstTokenMinusBootMs: round(overBoot),
    // The pool's part: the request's cold start (its arrival at the pool to its node ready) minus the boot.
    readyMinusBootMs: round(readyOverBoot),
  };
}

/** p50, min and max of a list of milliseconds, whole. */
const round = (values: number[]) => ({
  p50: Number(percentile(values, 50).toFixed(0)),
  min: Number(Math.min(...values).toFixed(0)),
  max: Number(Math.max(...values).toFixed(0)),
});

/** Sends one streaming request and returns the ms to its first token and the request's view. */
async function firstToken(stack: BenchStack, body: Record<string, unknown>) {
  const sent = performance.now();
  const res = await fetch(`${stack.base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.workspaceKey}` },
    body: JSON.stringify(body),
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let seen = '';
  let ms = Number.NaN;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += decoder.decode(value, { stream: true });
    if (seen.includes('data: {')) {
      ms = performance.now() - sent;
      break;
    }
  }
  await reader.cancel().catch(() => undefined);
  const requestId = res.headers.get('x-zeropool-request-id') ?? '';
  const view = await stack.temporal.client.workflow.getHandle(jobWorkflowId(requestId)).query(jobStateQuery);
  return { ms, view };
}

/**
 * Requests parked on a stopped node: the pool's lane states a stopped price, so its idle node is stopped (not
 * terminated) a second after each request; the next request wakes it. Each run's wake is what the pool timed
 * (`coldStartPhases`: the provider's start call and the boot to healthy); the rest of the first token's wait is
 * zeropool's: the request's way to the pool, the placement's way back, the call to the node.
 */
async function wakes(stack: BenchStack, chat: (stream: boolean, maxTokens?: number) => Record<string, unknown>) {
  await stack.call('POST', '/v1/pools', {
    id: 'stopped',
    model: 'stopped-model',
    maxNodes: 1,
    slotsPerNode: 8,
    idleTimeoutSeconds: 1,
    teardownGraceSeconds: 0,
    keepAlive: { mode: 'fixed' }, // stopped after every request, however many gaps it has seen
    lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1, stoppedPricePerHour: 0.02 }],
  });
  const body = { ...chat(true, 2), model: 'stopped-model' };
  await firstToken(stack, body); // the node's first boot (a cold start, not measured here)
  const overWake: number[] = [];
  const wakeMs: number[] = [];
  const rungs = new Set<string>();
  for (let run = 0; run < COLD_RUNS; run++) {
    await until(async () => {
      const pool = await stack.call('GET', '/v1/pools/stopped');
      return pool.nodes?.length === 1 && pool.nodes[0].state === 'stopped';
    });
    const { ms, view } = await firstToken(stack, body);
    const phases = view.coldStartPhases;
    if (!phases) continue;
    rungs.add(phases.rung);
    wakeMs.push(phases.providerMs + phases.bootMs);
    overWake.push(ms - phases.providerMs - phases.bootMs);
  }
  return { runs: overWake.length, rungs: [...rungs], wakeMs: round(wakeMs), firstTokenMinusWakeMs: round(overWake) };
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  },
);
