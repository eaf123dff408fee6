/**
 * `npm run evaluate`: replays real traces through the pool machine in virtual time, one pool per app, under
 * each keep-alive policy, and reports cost, idle cost, cold starts and waits side by side.
 *
 *   npm run evaluate -- --trace bench/traces/AzureLLMInferenceTrace_code.csv [--trace …]
 *     [--app ID[,ID…]] [--policy NAME[,NAME…]] [--cold-start 60] [--price 2] [--slots 8] [--max-nodes 100]
 *     [--decode-tps 50] [--prefill-tps 5000] [--grace 10] [--seed 1] [--per-app] [--json] [--svg DIR]
 *     [--workers N (default: the CPUs; policies are shared out among worker threads)]
 *     [--stop-price-per-hour 0.0274] [--stop-wake 20]   (the stopped rung: the adaptive-ladder policy, and --ladder)
 *     [--ladder [--sleep-price-per-hour PRICE] [--sleep-wake 3] [--max-stopped 86400] [--cold-slack 0]]
 *       (the warm-state ladder's table: gap-replay.ts)
 *
 * Exit 2 on bad arguments or an unreadable trace.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { costVsColdStartsSvg, timelineSvg } from '../domain/charts';
import { POLICIES, selectPolicies } from './policies';
import { formatTable, totalsByPolicy } from './report';
import { runPolicies, runPoliciesInWorkers } from './run-policies';
import { type AppResult, DEFAULT_KNOBS, type SimulationKnobs, simulateApp } from './simulate';
import { parseTrace } from './trace';
import { DEFAULT_LADDER_KNOBS, type LadderKnobs, runGapPolicies } from './gap-replay';
import { formatLadderTable, gapTotals } from './ladder-report';

function usage(message: string): never {
  process.stderr.write(`evaluate: ${message}\nsee the header of src/evaluator/main.ts or the README's "Keep-alive" section\n`);
  process.exit(2);
}

function positive(name: string, text: string | undefined, fallback: number, integer = false): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (integer && (!Number.isInteger(value) || value < 1))) {
    usage(`--${name} must be ${integer ? 'a whole number ≥ 1' : 'a number ≥ 0'}, not ${text}`);
  }
  return value;
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      options: {
        trace: { type: 'string', multiple: true },
        app: { type: 'string' },
        policy: { type: 'string' },
        'cold-start': { type: 'string' },
        price: { type: 'string' },
        slots: { type: 'string' },
        'max-nodes': { type: 'string' },
        'decode-tps': { type: 'string' },
        'prefill-tps': { type: 'string' },
        grace: { type: 'string' },
        seed: { type: 'string' },
        'per-app': { type: 'boolean' },
        json: { type: 'boolean' },
        svg: { type: 'string' },
        workers: { type: 'string' },
        ladder: { type: 'boolean' },
        'stop-price-per-hour': { type: 'string' },
        'stop-wake': { type: 'string' },
        'sleep-price-per-hour': { type: 'string' },
        'sleep-wake': { type: 'string' },
        'max-stopped': { type: 'string' },
        'cold-slack': { type: 'string' },
      },
      allowPositionals: false,
    });
  } catch (error) {
    usage((error as Error).message);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const traces = (v.trace as string[] | undefined) ?? [];
  if (traces.length === 0) usage('give at least one --trace <csv>');
  const knobs: SimulationKnobs = {
    coldStartS: positive('cold-start', v['cold-start'] as string, DEFAULT_KNOBS.coldStartS),
    pricePerHour: positive('price', v.price as string, DEFAULT_KNOBS.pricePerHour),
    slotsPerNode: positive('slots', v.slots as string, DEFAULT_KNOBS.slotsPerNode, true),
    maxNodes: positive('max-nodes', v['max-nodes'] as string, DEFAULT_KNOBS.maxNodes, true),
    decodeTokensPerS: positive('decode-tps', v['decode-tps'] as string, DEFAULT_KNOBS.decodeTokensPerS),
    prefillTokensPerS: positive('prefill-tps', v['prefill-tps'] as string, DEFAULT_KNOBS.prefillTokensPerS),
    teardownGraceS: positive('grace', v.grace as string, DEFAULT_KNOBS.teardownGraceS),
    stopPricePerHour: positive('stop-price-per-hour', v['stop-price-per-hour'] as string, DEFAULT_KNOBS.stopPricePerHour),
    stopWakeS: positive('stop-wake', v['stop-wake'] as string, DEFAULT_KNOBS.stopWakeS),
    ...(v['sleep-price-per-hour'] !== undefined
      ? { sleepPricePerHour: positive('sleep-price-per-hour', v['sleep-price-per-hour'] as string, DEFAULT_KNOBS.pricePerHour) }
      : {}),
    sleepWakeS: positive('sleep-wake', v['sleep-wake'] as string, DEFAULT_KNOBS.sleepWakeS),
  };
  if (knobs.decodeTokensPerS === 0 || knobs.prefillTokensPerS === 0) usage('token rates must be above 0');
  const ladderKnobs: LadderKnobs = {
    stopPricePerHour: knobs.stopPricePerHour,
    stopWakeS: knobs.stopWakeS,
    ...(knobs.sleepPricePerHour !== undefined ? { sleepPricePerHour: knobs.sleepPricePerHour } : {}),
    sleepWakeS: knobs.sleepWakeS,
    maxStoppedS: positive('max-stopped', v['max-stopped'] as string, DEFAULT_LADDER_KNOBS.maxStoppedS),
    coldSlack: positive('cold-slack', v['cold-slack'] as string, DEFAULT_LADDER_KNOBS.coldSlack),
  };
  if (ladderKnobs.coldSlack > 1) usage('--cold-slack is a rate: 0 to 1');
  const seed = positive('seed', v.seed as string, 1);
  const workers = positive('workers', v.workers as string, availableParallelism(), true);
  let policies = POLICIES;
  try {
    policies = selectPolicies((v.policy as string | undefined)?.split(',').filter(Boolean));
  } catch (error) {
    usage((error as Error).message);
  }
  const apps = (v.app as string | undefined)?.split(',').filter(Boolean);
  const svgDir = v.svg as string | undefined;
  if (svgDir) mkdirSync(svgDir, { recursive: true });

  const report: Array<{
    trace: string;
    knobs: SimulationKnobs;
    totals: ReturnType<typeof totalsByPolicy>;
    ladder?: { knobs: LadderKnobs; totals: ReturnType<typeof gapTotals> };
    perApp?: AppResult[];
    seconds: number;
  }> = [];
  for (const file of traces) {
    let csv: string;
    try {
      csv = readFileSync(file, 'utf8');
    } catch (error) {
      usage(`cannot read ${file}: ${(error as Error).message}`);
    }
    let trace: ReturnType<typeof parseTrace>;
    try {
      trace = parseTrace(csv, file, { seed, ...(apps ? { apps } : {}) });
    } catch (error) {
      usage((error as Error).message);
    }
    const started = performance.now();
    // The picture's timeline: the busiest app under the adaptive policy, recorded during its run (not run again).
    const busiest = [...trace.apps].sort((a, b) => b.arrivals.length - a.arrivals.length)[0];
    const timelineApp = svgDir ? busiest?.app : undefined;
    const results =
      workers > 1
        ? await runPoliciesInWorkers(
            { file, seed, knobs, ...(apps ? { apps } : {}), ...(timelineApp ? { timelineApp } : {}) },
            policies,
            workers,
          )
        : runPolicies(trace, policies, knobs, timelineApp);
    const totals = totalsByPolicy(results);
    const ladder = v.ladder ? gapTotals(runGapPolicies(trace.apps, knobs, ladderKnobs, trace.spanMs)) : undefined;
    const seconds = (performance.now() - started) / 1000;
    const requests = trace.apps.reduce((a, app) => a + app.arrivals.length, 0);
    const title = `${trace.name}: ${trace.apps.length} app(s), ${requests} requests over ${(trace.spanMs / 60_000).toFixed(1)} min`;
    if (!v.json) {
      process.stdout.write(`${formatTable(title, totals)}\n`);
      if (ladder) process.stdout.write(`${formatLadderTable(trace.name, ladder)}\n`);
      if (v['per-app']) {
        for (const r of results) {
          process.stdout.write(
            `${r.app}\t${r.policy}\t$${r.costUsd.toFixed(2)}\tcold ${r.coldStarts}\t${r.finalWindows ? JSON.stringify(r.finalWindows) : ''}\n`,
          );
        }
      }
      process.stderr.write(
        `(${seconds.toFixed(1)} s for ${policies.length} policies on ${Math.min(workers, policies.length)} thread(s))\n`,
      );
    }
    if (svgDir) {
      writeFileSync(join(svgDir, `${trace.name}-cost-vs-cold-starts.svg`), costVsColdStartsSvg(title, totals));
      const adaptive = POLICIES.find((p) => p.name === 'adaptive')!;
      const run =
        results.find((r) => r.policy === 'adaptive' && r.app === busiest.app) ??
        simulateApp(busiest, adaptive, knobs, trace.spanMs, { timeline: true });
      writeFileSync(
        join(svgDir, `${trace.name}-timeline-adaptive.svg`),
        timelineSvg(
          `${trace.name} · ${busiest.app} · adaptive: $${run.costUsd.toFixed(2)}, ${run.coldStarts} cold starts`,
          run.timeline ?? [],
          trace.spanMs / 1000,
        ),
      );
    }
    report.push({
      trace: trace.name,
      knobs,
      totals,
      ...(ladder ? { ladder: { knobs: ladderKnobs, totals: ladder } } : {}),
      ...(v['per-app'] ? { perApp: results.map(({ waitsMs: _w, timeline: _t, ...rest }) => ({ ...rest, waitsMs: [] })) } : {}),
      seconds,
    });
  }
  if (v.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main().catch((error) => {
  process.stderr.write(`evaluate: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
