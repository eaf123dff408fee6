/**
 * `zeropool`: the command line for a running zeropool. Finds it as every client tool does (src/client-config.ts):
 * ZEROPOOL_URL, else the server's HOST and PORT; the key from ZEROPOOL_KEY, else the data folder's admin key. Every command takes --json for scripts (the API's answer, unchanged).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiClient, CliApiError } from './client';
import { table } from './format';
import { loadClientConfig } from '../client-config';

const USAGE = `usage: zeropool <command> [options]   (--json: machine-readable output)

  status                         API health, pools, services, GPUs
  pools                          pools with phase, nodes, queued and running jobs
  services                       local GPU services with their containers
  register <name> --image IMG    register a service; also --vram-gb N --port N --health PATH --priority 1-5
                                 --gpus N --max-nodes N --slots N --idle-timeout S --drain-timeout S
                                 --model NAME --env K=V (repeat) --cmd ARG (repeat) --adopt CONTAINER,
                                 or --file definition.json
  start <service>                start a container now
  stop <service>                 stop its containers (--drain-timeout S: give running jobs that long)
  restart <service>              stop, then start a fresh container
  delete-pool <pool>             delete a pool with no nodes and no jobs left (drain it first)
  submit <pool> --prompt TEXT    submit a job; --priority 1-5, --max-tokens N, --wait (until it ends)
  jobs                           jobs, newest first; --pool P, --status open|completed|failed|expired|cancelled,
                                 --limit N, --cursor C (the next page's, printed under the table)
  job <id>                       a job's status, timings and result
  cancel <id>                    cancel a job
  chat <model> TEXT              ask a model through the OpenAI front door (waits through a cold start);
                                 --max-tokens N
  gpu                            the host's GPUs (nvidia-smi)
  vram                           VRAM per GPU and per service

environment (and .env): ZEROPOOL_URL, else HOST and PORT (default http://127.0.0.1:8080); ZEROPOOL_KEY, else
the admin key npm start keeps in ZEROPOOL_DATA_DIR (default .zeropool)`;

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  image: { type: 'string' },
  'vram-gb': { type: 'string' },
  port: { type: 'string' },
  health: { type: 'string' },
  priority: { type: 'string' },
  gpus: { type: 'string' },
  'max-nodes': { type: 'string' },
  slots: { type: 'string' },
  'idle-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  model: { type: 'string' },
  env: { type: 'string', multiple: true },
  cmd: { type: 'string', multiple: true },
  adopt: { type: 'string' },
  file: { type: 'string' },
  prompt: { type: 'string' },
  'max-tokens': { type: 'string' },
  wait: { type: 'boolean' },
  pool: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
} as const;

/** A usage mistake: exit code 2. */
class UsageError extends Error {}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function numberOption(values: Values, name: keyof Values): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${String(name)} must be a number`);
  return value;
}

function requireArg(positionals: string[], index: number, what: string): string {
  const value = positionals[index];
  if (!value) throw new UsageError(`missing ${what}`);
  return value;
}

/** The service definition from flags or --file. */
function definitionFrom(name: string, values: Values): Record<string, unknown> {
  if (values.file) {
    const fromFile = JSON.parse(readFileSync(values.file, 'utf8')) as Record<string, unknown>;
    return { ...fromFile, name };
  }
  if (!values.image) throw new UsageError('register needs --image (or --file)');
  const env: Record<string, string> = {};
  for (const pair of values.env ?? []) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--env takes KEY=VALUE, got ${pair}`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const definition: Record<string, unknown> = {
    name,
    image: values.image,
    vramGb: numberOption(values, 'vram-gb'),
    port: numberOption(values, 'port'),
    healthPath: values.health,
    priority: numberOption(values, 'priority'),
    gpuCount: numberOption(values, 'gpus'),
    maxNodes: numberOption(values, 'max-nodes'),
    slotsPerNode: numberOption(values, 'slots'),
    idleTimeoutSeconds: numberOption(values, 'idle-timeout'),
    drainTimeoutSeconds: numberOption(values, 'drain-timeout'),
    model: values.model,
    adoptContainer: values.adopt,
    command: values.cmd,
    env: Object.keys(env).length > 0 ? env : undefined,
  };
  return Object.fromEntries(Object.entries(definition).filter(([, v]) => v !== undefined));
}

const mib = (value: number | null | undefined) => (value === null || value === undefined ? '-' : `${(value / 1024).toFixed(1)} GiB`);

/** Runs one command; returns what to print. */
export async function run(argv: string[], env: Record<string, string | undefined>): Promise<string> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command, ...args] = positionals;
  if (values.help || !command) return USAGE;
  const client = loadClientConfig(env);
  const api = new ApiClient({ baseUrl: client.apiUrl, key: client.key, urlFrom: client.apiUrlFrom, keyFrom: client.keyFrom });
  const out = (data: unknown, human: () => string) => (values.json ? JSON.stringify(data, null, 2) : human());

  switch (command) {
    case 'status': {
      const [health, pools, services, gpu] = await Promise.all([
        api.call('GET', '/health'),
        api.call('GET', '/v1/pools'),
        api.call('GET', '/v1/services').catch(() => ({ services: [] })),
        api.call('GET', '/v1/gpu'),
      ]);
      const data = {
        api: health.status,
        url: client.apiUrl,
        pools: pools.pools.length,
        services: services.services.length,
        gpu,
      };
      return out(data, () =>
        [
          `API:       ${data.url} (${data.api})`,
          `Pools:     ${data.pools}`,
          `Services:  ${data.services}`,
          `GPUs:      ${gpu.available ? gpu.gpus.map((g: any) => `${g.index}: ${g.name} ${mib(g.memory.usedMiB)} / ${mib(g.memory.totalMiB)}`).join('; ') : `none (${gpu.reason})`}`,
        ].join('\n'),
      );
    }
    case 'pools': {
      const list = await api.call('GET', '/v1/pools');
      const views = await Promise.all(list.pools.map((p: { id: string }) => api.call('GET', `/v1/pools/${p.id}`).catch(() => undefined)));
      return out(views.filter(Boolean), () =>
        table(
          ['POOL', 'MODEL', 'PHASE', 'NODES', 'QUEUED', 'RUNNING'],
          list.pools.map((p: any, i: number) => [
            p.id,
            p.config.model,
            views[i]?.phase ?? '?',
            String(views[i]?.nodes.length ?? '?'),
            String(views[i]?.queued ?? '?'),
            String(views[i]?.running ?? '?'),
          ]),
        ),
      );
    }
    case 'services': {
      const { services } = await api.call('GET', '/v1/services');
      return out(services, () =>
        table(
          ['SERVICE', 'ENABLED', 'PHASE', 'CONTAINERS', 'VRAM', 'PRIORITY', 'IMAGE'],
          services.map((s: any) => [
            s.name,
            s.enabled ? 'yes' : 'no',
            s.phase,
            String(s.containers.length),
            `${s.definition.vramGb} GB`,
            String(s.definition.priority),
            s.definition.image,
          ]),
        ),
      );
    }
    case 'register': {
      const name = requireArg(args, 0, 'service name');
      const created = await api.call('POST', '/v1/services', definitionFrom(name, values));
      return out(
        created,
        () =>
          `registered ${created.name} (${created.definition.image}, ${created.definition.vramGb} GB VRAM, priority ${created.definition.priority})`,
      );
    }
    case 'start':
    case 'stop':
    case 'restart': {
      const name = requireArg(args, 0, 'service name');
      const drain = numberOption(values, 'drain-timeout');
      const body = command === 'start' ? undefined : drain === undefined ? {} : { drainTimeoutSeconds: drain };
      const result = await api.call('POST', `/v1/services/${encodeURIComponent(name)}/${command}`, body);
      return out(
        result,
        () =>
          `${name}: ${command === 'start' ? 'starting' : command === 'stop' ? 'stopping' : 'restarting'} (phase ${result.phase}, ${result.running} running, ${result.queued} queued)`,
      );
    }
    case 'submit': {
      const pool = requireArg(args, 0, 'pool name');
      if (!values.prompt) throw new UsageError('submit needs --prompt');
      const maxTokens = numberOption(values, 'max-tokens');
      const payload = {
        messages: [{ role: 'user', content: values.prompt }],
        ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
      };
      const priority = numberOption(values, 'priority');
      const accepted = await api.call('POST', '/v1/jobs', { pool, payload, ...(priority !== undefined ? { priority } : {}) });
      if (!values.wait) return out(accepted, () => `${accepted.id} ${accepted.status} (priority ${accepted.priority})`);
      for (;;) {
        const job = await api.call('GET', `/v1/jobs/${accepted.id}`);
        if (['completed', 'failed', 'expired', 'cancelled'].includes(job.status)) return out(job, () => describeJob(job));
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    case 'delete-pool': {
      const pool = requireArg(args, 0, 'pool name');
      await api.call('DELETE', `/v1/pools/${encodeURIComponent(pool)}`);
      return out({ id: pool, deleted: true }, () => `deleted pool ${pool}`);
    }
    case 'jobs': {
      const query = new URLSearchParams();
      for (const name of ['pool', 'status', 'limit', 'cursor'] as const) {
        const value = values[name];
        if (value !== undefined) query.set(name, value);
      }
      const page = await api.call('GET', `/v1/jobs${query.size > 0 ? `?${query}` : ''}`);
      return out(page, () =>
        [
          page.jobs.length === 0
            ? 'no jobs'
            : table(
                ['JOB', 'POOL', 'STATUS', 'PRIORITY', 'SUBMITTED', 'QUEUED', 'RAN'],
                page.jobs.map((j: any) => [
                  j.id,
                  j.pool,
                  j.status,
                  String(j.priority),
                  j.submitted_at,
                  j.queue_ms === null ? '-' : `${j.queue_ms} ms`,
                  j.run_ms === null ? '-' : `${j.run_ms} ms`,
                ]),
              ),
          ...(page.next_cursor ? [`more: zeropool jobs --cursor ${page.next_cursor}`] : []),
        ].join('\n'),
      );
    }
    case 'chat': {
      const model = requireArg(args, 0, 'model');
      const text = args.slice(1).join(' ');
      if (!text) throw new UsageError('chat needs the text to send: zeropool chat <model> "…"');
      const maxTokens = numberOption(values, 'max-tokens');
      const answer = await api.call('POST', '/v1/chat/completions', {
        model,
        messages: [{ role: 'user', content: text }],
        ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
      });
      return out(answer, () => String(answer.choices?.[0]?.message?.content ?? ''));
    }
    case 'job': {
      const job = await api.call('GET', `/v1/jobs/${encodeURIComponent(requireArg(args, 0, 'job id'))}`);
      return out(job, () => describeJob(job));
    }
    case 'cancel': {
      const id = requireArg(args, 0, 'job id');
      const result = await api.call('DELETE', `/v1/jobs/${encodeURIComponent(id)}`);
      return out(result, () => `${id} ${result.status}`);
    }
    case 'gpu': {
      const gpu = await api.call('GET', '/v1/gpu');
      if (!gpu.available) return out(gpu, () => `no GPU: ${gpu.reason}`);
      return out(gpu, () =>
        table(
          ['GPU', 'NAME', 'UTIL', 'MEMORY USED', 'TOTAL', 'TEMP', 'POWER', 'PROCESSES'],
          gpu.gpus.map((g: any) => [
            String(g.index),
            g.name ?? '-',
            g.utilizationPercent === null ? '-' : `${g.utilizationPercent}%`,
            mib(g.memory.usedMiB),
            `${mib(g.memory.totalMiB)}${g.unifiedMemory ? ' (unified)' : ''}`,
            g.temperatureC === null ? '-' : `${g.temperatureC} C`,
            g.powerDrawW === null ? '-' : `${g.powerDrawW} W`,
            String(g.processes.length),
          ]),
        ),
      );
    }
    case 'vram': {
      const vram = await api.call('GET', '/v1/vram');
      return out(vram, () =>
        [
          table(
            ['GPU', 'TOTAL', 'RESERVED', 'OTHERS', 'SERVICES', 'AVAILABLE'],
            vram.gpus.map((g: any) => [
              String(g.index),
              mib(g.totalMiB),
              mib(g.reserveMiB),
              mib(g.foreignMiB),
              mib(g.allocatedMiB),
              mib(g.availableMiB),
            ]),
          ),
          '',
          vram.allocations.length === 0
            ? 'no service holds VRAM'
            : table(
                ['SERVICE', 'CONTAINER', 'GPU', 'DECLARED', 'IN USE'],
                vram.allocations.map((a: any) => [a.service, a.nodeId, String(a.gpu), mib(a.declaredMiB), mib(a.actualMiB)]),
              ),
          `available for a new service: ${mib(vram.largestFreeMiB)} on one GPU`,
        ].join('\n'),
      );
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function describeJob(job: any): string {
  const lines = [`${job.id}  ${job.status}  pool ${job.pool}  priority ${job.priority}  attempt ${job.attempt}`];
  if (job.queue_ms !== null) lines.push(`queued ${job.queue_ms} ms, cold start ${job.cold_start_ms ?? 0} ms, ran ${job.run_ms ?? '-'} ms`);
  if (job.tokens) lines.push(`tokens: ${job.tokens.prompt} in, ${job.tokens.completion} out`);
  if (job.error) lines.push(`error: ${job.error}`);
  const text = job.result?.choices?.[0]?.message?.content;
  if (typeof text === 'string') lines.push(text);
  return lines.join('\n');
}

/** Runs the CLI as a process: prints the answer, exit code 1 for an API error, 2 for a usage mistake. */
export function cliMain(argv: string[]): void {
  run(argv, process.env).then(
    (text) => process.stdout.write(`${text}\n`),
    (err) => {
      if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`zeropool: ${(err as Error).message}\n\n${USAGE}\n`);
        process.exit(2);
      }
      process.stderr.write(`zeropool: ${err instanceof CliApiError ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) cliMain(process.argv.slice(2));
