/** Arrival schedules for the simulator: bursts, and replays of the real traces in bench/traces. Pure functions. */
import { seededRandom } from '../domain/random';

/** One request to send, at `atMs` after the start of the run. */
export interface Arrival {
  atMs: number;
  promptTokens: number;
  maxTokens: number;
}

/** Bursts like the earlier gateway's: `batch` requests at once, every `intervalMs`, until `total`. */
export function burstArrivals(total: number, batch: number, intervalMs: number, maxTokens = 16): Arrival[] {
  return Array.from({ length: total }, (_, i) => ({ atMs: Math.floor(i / batch) * intervalMs, promptTokens: 8, maxTokens }));
}

/** Options of a trace replay. */
export interface ReplayOptions {
  /** Trace time runs this many times faster than real time. */
  speedup: number;
  /** At most this many requests (from the start of the trace). */
  limit?: number;
  /** Caps on the tokens of one request (the mock node streams at a fixed rate). */
  maxPromptTokens: number;
  maxTokens: number;
  seed: number;
  /** Functions trace only: the app to replay (default: the busiest app with an http trigger). */
  app?: string;
}

/** Reads either trace by its header. */
export function traceArrivals(csv: string, options: ReplayOptions): Arrival[] {
  const lines = csv.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]?.trim();
  if (header === 'TIMESTAMP,ContextTokens,GeneratedTokens') return llmTraceArrivals(lines.slice(1), options);
  if (header === 'app,triggers,minute,count') return functionsTraceArrivals(lines.slice(1), options);
  throw new Error(
    `unknown trace format (header: ${header ?? 'none'}): expected the Azure LLM inference trace or the Azure Functions trace`,
  );
}

/** `YYYY-MM-DD HH:MM:SS.fffffff` (no zone) to epoch ms, keeping sub-millisecond digits out. */
export function parseTraceTime(value: string): number {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)?$/.exec(value.trim());
  if (!match) throw new Error(`bad TIMESTAMP ${value}`);
  const ms = match[3] ? Number(match[3].slice(0, 4)) * 1000 : 0;
  return Date.parse(`${match[1]}T${match[2]}Z`) + Math.round(ms);
}

/** The Azure LLM inference trace: one row per request with its prompt and output token counts. */
function llmTraceArrivals(rows: string[], options: ReplayOptions): Arrival[] {
  const selected = options.limit ? rows.slice(0, options.limit) : rows;
  let first: number | undefined;
  return selected.map((line) => {
    const [timestamp, context, generated] = line.split(',');
    const at = parseTraceTime(timestamp);
    first ??= at;
    return {
      atMs: Math.round((at - first) / options.speedup),
      promptTokens: Math.max(1, Math.min(options.maxPromptTokens, Number(context))),
      maxTokens: Math.max(1, Math.min(options.maxTokens, Number(generated))),
    };
  });
}

/**
 * The Azure Functions trace: invocations per app per minute. Arrivals inside a minute are spread uniformly
 * at random (seeded), so two runs with one seed send the same schedule.
 */
function functionsTraceArrivals(rows: string[], options: ReplayOptions): Arrival[] {
  const parsed = rows.map((line) => {
    const [app, triggers, minute, count] = line.split(',');
    return { app, triggers, minute: Number(minute), count: Number(count) };
  });
  let app = options.app;
  if (!app) {
    const totals = new Map<string, number>();
    for (const r of parsed) if (r.triggers.split('+').includes('http')) totals.set(r.app, (totals.get(r.app) ?? 0) + r.count);
    app = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
  }
  const appRows = parsed.filter((r) => r.app === app).sort((a, b) => a.minute - b.minute);
  if (appRows.length === 0) throw new Error(`app ${app ?? '(none)'} is not in the trace`);
  const random = seededRandom(options.seed);
  const firstMinute = appRows[0].minute;
  const arrivals: Arrival[] = [];
  for (const r of appRows) {
    for (let i = 0; i < r.count; i++) {
      const traceMs = ((r.minute - firstMinute) * 60 + random() * 60) * 1000;
      arrivals.push({
        atMs: Math.round(traceMs / options.speedup),
        promptTokens: Math.min(options.maxPromptTokens, 64),
        maxTokens: Math.min(options.maxTokens, 32),
      });
    }
  }
  arrivals.sort((a, b) => a.atMs - b.atMs);
  return options.limit ? arrivals.slice(0, options.limit) : arrivals;
}

/** Nearest-rank percentile (p in 0..100) of the values; null for none. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
