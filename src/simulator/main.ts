/**
 * `npm run simulate`: fires load at a running zeropool and reports what happened.
 *   bursts:       --requests 20 --batch 20 [--interval 1]     (or SIM_TOTAL_REQUESTS / SIM_BATCH_SIZE)
 *   trace replay: --trace bench/traces/AzureLLMInferenceTrace_code.csv --speedup 60 --seed 1 [--limit 500]
 * It exits 1 if any accepted job is lost (not terminal when the run ends), 2 on bad arguments.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { burstArrivals, percentile, traceArrivals, type Arrival } from './arrivals';
import { loadClientConfig } from '../client-config';

const TERMINAL = ['completed', 'failed', 'expired', 'cancelled'];

interface Options {
  url: string;
  /** What set the URL (named when it cannot be reached). */
  urlFrom: string;
  key?: string;
  pool: string;
  model: string;
  arrivals: Arrival[];
  describe: string;
  timeoutMs: number;
  json: boolean;
}

function usage(message: string): never {
  process.stderr.write(`simulate: ${message}\nsee the header of src/simulator/main.ts or the README for the options\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      pool: { type: 'string', default: 'sim' },
      model: { type: 'string', default: 'sim-model' },
      requests: { type: 'string' },
      batch: { type: 'string' },
      interval: { type: 'string', default: '1' },
      trace: { type: 'string' },
      speedup: { type: 'string', default: '60' },
      seed: { type: 'string', default: '1' },
      limit: { type: 'string' },
      app: { type: 'string' },
      'max-tokens': { type: 'string', default: '256' },
      'max-prompt-tokens': { type: 'string', default: '2048' },
      timeout: { type: 'string', default: '600' },
      json: { type: 'boolean', default: false },
    },
  });
  const num = (name: string, value: string | undefined, min: number): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) usage(`--${name} must be a number ≥ ${min}`);
    return n;
  };
  const maxTokens = num('max-tokens', values['max-tokens'], 1)!;
  let arrivals: Arrival[];
  let describe: string;
  if (values.trace) {
    let csv: string;
    try {
      csv = readFileSync(values.trace, 'utf8');
    } catch (err) {
      usage(`cannot read trace ${values.trace}: ${(err as Error).message}`);
    }
    const speedup = num('speedup', values.speedup, 0.001)!;
    arrivals = traceArrivals(csv, {
      speedup,
      limit: num('limit', values.limit, 1),
      maxPromptTokens: num('max-prompt-tokens', values['max-prompt-tokens'], 1)!,
      maxTokens,
      seed: num('seed', values.seed, 0)!,
      app: values.app,
    });
    describe = `trace ${values.trace} at ${speedup}× (seed ${values.seed}${values.limit ? `, first ${values.limit}` : ''})`;
  } else {
    const total = num('requests', values.requests ?? process.env.SIM_TOTAL_REQUESTS ?? '20', 1)!;
    const batch = num('batch', values.batch ?? process.env.SIM_BATCH_SIZE ?? String(total), 1)!;
    const interval = num('interval', values.interval, 0)!;
    arrivals = burstArrivals(total, batch, interval * 1000, Math.min(maxTokens, 16));
    describe = `${total} requests in batches of ${batch} every ${interval} s`;
  }
  const client = loadClientConfig();
  return {
    url: (values.url ?? client.apiUrl).replace(/\/$/, ''),
    urlFrom: values.url ? '--url' : client.apiUrlFrom,
    key: values.key ?? client.key,
    pool: values.pool!,
    model: values.model!,
    arrivals,
    describe,
    timeoutMs: num('timeout', values.timeout, 1)! * 1000,
    json: values.json!,
  };
}

/** A small client for the zeropool API. */
function api(options: Options) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    let res: Response;
    try {
      res = await fetch(`${options.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new Error(`cannot reach the API at ${options.url}: ${(err as Error).cause ?? (err as Error).message} (set ${options.urlFrom})`);
    }
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

interface Tracked {
  id: string;
  status: string;
  queueMs: number | null;
  coldStartMs: number | null;
}

class Progress {
  private lastLine = 0;
  constructor(
    private readonly total: number,
    private readonly quiet: boolean,
  ) {}

  draw(sent: number, accepted: number, terminal: number, nodes: number, final = false): void {
    if (this.quiet) return;
    const tty = process.stderr.isTTY;
    if (!tty && !final && Date.now() - this.lastLine < 5000) return;
    this.lastLine = Date.now();
    const width = 30;
    const done = this.total === 0 ? width : Math.round((terminal / Math.max(1, accepted || this.total)) * width);
    const bar = `${'#'.repeat(Math.min(width, done))}${'-'.repeat(Math.max(0, width - done))}`;
    const line = `[${bar}] sent ${sent}/${this.total}  accepted ${accepted}  finished ${terminal}  nodes ${nodes}`;
    process.stderr.write(tty ? `\r${line}${final ? '\n' : ''}` : `${line}\n`);
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const call = api(options);
  const startedAt = new Date();
  const pool = await call('GET', `/v1/pools/${options.pool}`);
  if (pool.status === 404) {
    const created = await call('POST', '/v1/pools', {
      id: options.pool,
      model: options.model,
      maxNodes: 4,
      slotsPerNode: 8,
      idleTimeoutSeconds: 30,
      lanes: [
        { provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.45 },
        { provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1.1 },
      ],
    });
    if (created.status !== 201) usage(`cannot create pool ${options.pool}: ${created.status} ${JSON.stringify(created.body)}`);
  } else if (pool.status !== 200) {
    usage(`cannot reach pool ${options.pool} at ${options.url}: ${pool.status} ${JSON.stringify(pool.body)}`);
  }
  if (!options.json) process.stderr.write(`simulating ${options.describe} against ${options.url}, pool ${options.pool}\n`);

  const tracked: Tracked[] = [];
  let refused = 0;
  let sent = 0;
  let peakNodes = 0;
  let currentNodes = 0;
  const progress = new Progress(options.arrivals.length, options.json);
  const terminalCount = () => tracked.filter((t) => TERMINAL.includes(t.status)).length;

  const watcher = setInterval(async () => {
    const view = await call('GET', `/v1/pools/${options.pool}`).catch(() => undefined);
    if (view?.status === 200) {
      currentNodes = view.body.nodes.length;
      peakNodes = Math.max(peakNodes, currentNodes);
    }
    progress.draw(sent, tracked.length, terminalCount(), currentNodes);
  }, 500);

  // Send on schedule; submissions run concurrently so one slow answer does not delay the next arrival.
  const submissions: Promise<void>[] = [];
  const t0 = Date.now();
  for (const arrival of options.arrivals) {
    const wait = t0 + arrival.atMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sent += 1;
    submissions.push(
      call('POST', '/v1/jobs', {
        pool: options.pool,
        payload: { prompt: 'tok '.repeat(arrival.promptTokens).trim(), max_tokens: arrival.maxTokens },
      })
        .then((res) => {
          if (res.status === 202) tracked.push({ id: res.body.id, status: 'queued', queueMs: null, coldStartMs: null });
          else refused += 1;
        })
        .catch(() => {
          refused += 1;
        }),
    );
  }
  await Promise.all(submissions);

  // Follow every accepted job to its end (or the timeout).
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    const open = tracked.filter((t) => !TERMINAL.includes(t.status));
    if (open.length === 0) break;
    for (let i = 0; i < open.length; i += 16) {
      await Promise.all(
        open.slice(i, i + 16).map(async (t) => {
          const res = await call('GET', `/v1/jobs/${t.id}`).catch(() => undefined);
          if (res?.status === 200) {
            t.status = res.body.status;
            t.queueMs = res.body.queue_ms;
            t.coldStartMs = res.body.cold_start_ms;
          } else if (res?.status === 404) {
            t.status = 'lost';
          }
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  clearInterval(watcher);
  progress.draw(sent, tracked.length, terminalCount(), currentNodes, true);

  const analytics = await call('GET', `/v1/analytics?pool=${options.pool}&from=${encodeURIComponent(startedAt.toISOString())}`);
  const count = (status: string) => tracked.filter((t) => t.status === status).length;
  const queue = tracked.map((t) => t.queueMs).filter((v): v is number => typeof v === 'number');
  const cold = tracked.map((t) => t.coldStartMs).filter((v): v is number => typeof v === 'number' && v > 0);
  const lost = tracked.filter((t) => !TERMINAL.includes(t.status)).map((t) => t.id);
  const summary = {
    scenario: options.describe,
    sent,
    accepted: tracked.length,
    refused,
    completed: count('completed'),
    failed: count('failed'),
    expired: count('expired'),
    cancelled: count('cancelled'),
    lost: lost.length,
    queue_ms: { p50: percentile(queue, 50), p99: percentile(queue, 99) },
    cold_start_ms: { jobs_that_waited: cold.length, p50: percentile(cold, 50), p99: percentile(cold, 99) },
    peak_nodes: peakNodes,
    cost_usd: analytics.body?.cost_usd ?? null,
    idle_tax_usd: analytics.body?.idle_tax_usd ?? null,
    savings_usd: analytics.body?.savings_usd ?? null,
    savings_formula: analytics.body?.formula?.savings_usd ?? null,
    note: 'cost and savings cover the window from the start of this run; nodes still up keep billing until they are torn down',
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    const lines = [
      '',
      `accepted ${summary.accepted} of ${summary.sent} (refused ${summary.refused})`,
      `completed ${summary.completed}  failed ${summary.failed}  expired ${summary.expired}  cancelled ${summary.cancelled}  lost ${summary.lost}`,
      `queue time       p50 ${summary.queue_ms.p50 ?? '-'} ms   p99 ${summary.queue_ms.p99 ?? '-'} ms`,
      `cold start wait  p50 ${summary.cold_start_ms.p50 ?? '-'} ms   p99 ${summary.cold_start_ms.p99 ?? '-'} ms   (${cold.length} jobs waited for a node)`,
      `peak nodes ${summary.peak_nodes}   cost $${summary.cost_usd ?? '-'}   idle tax $${summary.idle_tax_usd ?? '-'}   savings $${summary.savings_usd ?? '-'}`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  }
  if (lost.length > 0) {
    process.stderr.write(`LOST ${lost.length} accepted job(s): ${lost.slice(0, 10).join(', ')}\n`);
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`simulate failed: ${(err as Error).message}\n`);
  process.exit(1);
});
