/**
 * Traces for the evaluator: each app of a trace becomes one pool's arrivals, in ms from the trace's start.
 * - Azure LLM inference trace: one app (named after the file), one arrival per row with its token counts.
 * - Azure Functions 2019 trace: one app per `app`; a minute's invocations are spread uniformly at random
 *   inside it (seeded by the seed and the app id, so one seed gives one schedule); each stands for a request
 *   of FUNCTION_PROMPT_TOKENS in and FUNCTION_OUTPUT_TOKENS out (the trace has no sizes).
 */
import { basename } from 'node:path';
import { hashString, seededRandom } from '../domain/random';
import { parseTraceTime } from '../simulator/arrivals';

export const FUNCTION_PROMPT_TOKENS = 64;
export const FUNCTION_OUTPUT_TOKENS = 32;

export interface TraceArrival {
  atMs: number;
  promptTokens: number;
  outputTokens: number;
}

export interface TraceApp {
  /** The app id (functions trace) or the file's name (LLM trace). */
  app: string;
  /** Trigger kinds (functions trace only). */
  triggers?: string;
  arrivals: TraceArrival[];
}

export interface Trace {
  name: string;
  kind: 'llm' | 'functions';
  /** Length of the trace, ms from its start (policies are billed up to here). */
  spanMs: number;
  apps: TraceApp[];
}

/** Parses either trace by its header. `apps` keeps only those apps (functions trace). */
export function parseTrace(csv: string, fileName: string, options: { seed: number; apps?: string[] }): Trace {
  const lines = csv.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]?.trim();
  const name = basename(fileName).replace(/\.csv$/, '');
  if (header === 'TIMESTAMP,ContextTokens,GeneratedTokens') return llmTrace(lines.slice(1), name);
  if (header === 'app,triggers,minute,count') return functionsTrace(lines.slice(1), name, options);
  throw new Error(
    `${fileName}: unknown trace format (header: ${header ?? 'none'}); expected the Azure LLM inference or Azure Functions trace`,
  );
}

function llmTrace(rows: string[], name: string): Trace {
  const times = rows.map((line, i) => {
    const [timestamp, context, generated] = line.split(',');
    const promptTokens = Number(context);
    const outputTokens = Number(generated);
    if (!Number.isFinite(promptTokens) || !Number.isFinite(outputTokens)) throw new Error(`${name}: bad token counts on row ${i + 2}`);
    return { at: parseTraceTime(timestamp), promptTokens, outputTokens };
  });
  if (times.length === 0) throw new Error(`${name}: no rows`);
  const first = Math.min(...times.map((t) => t.at));
  const arrivals = times
    .map((t) => ({ atMs: t.at - first, promptTokens: t.promptTokens, outputTokens: t.outputTokens }))
    .sort((a, b) => a.atMs - b.atMs);
  return { name, kind: 'llm', spanMs: arrivals[arrivals.length - 1].atMs + 1, apps: [{ app: name, arrivals }] };
}

function functionsTrace(rows: string[], name: string, options: { seed: number; apps?: string[] }): Trace {
  const byApp = new Map<string, { triggers: string; minutes: Array<[number, number]> }>();
  let firstMinute = Infinity;
  let lastMinute = -Infinity;
  rows.forEach((line, i) => {
    const [app, triggers, minuteText, countText] = line.split(',');
    const minute = Number(minuteText);
    const count = Number(countText);
    if (!app || !Number.isInteger(minute) || !Number.isInteger(count) || count < 0) throw new Error(`${name}: bad row ${i + 2}: ${line}`);
    firstMinute = Math.min(firstMinute, minute);
    lastMinute = Math.max(lastMinute, minute);
    const entry = byApp.get(app) ?? { triggers, minutes: [] };
    if (count > 0) entry.minutes.push([minute, count]);
    byApp.set(app, entry);
  });
  if (options.apps) {
    const missing = options.apps.filter((a) => !byApp.has(a));
    if (missing.length > 0) throw new Error(`${name}: no app ${missing.join(', ')} in the trace`);
  }
  const apps: TraceApp[] = [];
  for (const [app, entry] of [...byApp.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (options.apps && !options.apps.includes(app)) continue;
    if (entry.minutes.length === 0) continue;
    const random = seededRandom(options.seed ^ hashString(app));
    const arrivals: TraceArrival[] = [];
    for (const [minute, count] of entry.minutes) {
      for (let i = 0; i < count; i++) {
        arrivals.push({
          atMs: Math.floor(((minute - firstMinute) * 60 + random() * 60) * 1000),
          promptTokens: FUNCTION_PROMPT_TOKENS,
          outputTokens: FUNCTION_OUTPUT_TOKENS,
        });
      }
    }
    arrivals.sort((a, b) => a.atMs - b.atMs);
    apps.push({ app, triggers: entry.triggers, arrivals });
  }
  return { name, kind: 'functions', spanMs: (lastMinute - firstMinute + 1) * 60_000, apps };
}
