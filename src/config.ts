/** Configuration: every environment variable, parsed once by one zod schema. Defaults live here only. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseAllowList } from './domain/callback-target';
import { parsePayloadKeys } from './temporal-codec';
import { temporalConnectionProblems, temporalConnectionSchema } from './temporal-connection';

/** The schema of the environment. `.env.example` lists the same variables. */
export const configSchema = z.object({
  ZEROPOOL_DATA_DIR: z.string().default('.zeropool'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Clients only (the CLI, the simulator): the API to call when it is not at HOST:PORT on this machine. */
  ZEROPOOL_URL: z.string().url().optional(),
  /** Clients only: the key they send (unset: the admin key `npm start` keeps in the data folder). */
  ZEROPOOL_KEY: z.string().min(1).optional(),
  HOST: z.string().default('127.0.0.1'),
  ZEROPOOL_API_KEY: z.string().min(16, 'ZEROPOOL_API_KEY must be at least 16 characters').optional(),
  ZEROPOOL_INSECURE: z
    .enum(['', '0', '1', 'false', 'true'])
    .default('0')
    .transform((v) => v === '1' || v === 'true'),
  DEFAULT_MAX_JOBS_IN_FLIGHT: z.coerce.number().int().min(1).default(1000),
  /** Where nodes reach the API, handed to them for progress reports; `npm start` defaults it to its own URL. */
  ZEROPOOL_PUBLIC_URL: z.string().url().optional(),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  BODY_LIMIT: z.string().default('1mb'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TEMPORAL_ADDRESS: z.string().optional(),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('zeropool'),
  ...temporalConnectionSchema,
  /**
   * Encrypt every payload given to Temporal (AES-256-GCM, src/temporal-codec.ts): comma-separated 32-byte keys in
   * base64, the first encrypts, all decrypt. Every API and worker process needs the same list.
   */
  TEMPORAL_PAYLOAD_KEYS: z
    .string()
    .optional()
    .superRefine((value, ctx) => {
      if (!value) return;
      try {
        parsePayloadKeys(value);
      } catch (err) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
      }
    }),
  /** OpenTelemetry traces go here over OTLP/HTTP (e.g. http://collector:4318); unset: tracing off. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  /** The traces' service name (default zeropool-api, zeropool-worker, or zeropool for npm start). */
  OTEL_SERVICE_NAME: z.string().optional(),
  TEMPORAL_UI_PORT: z.coerce.number().int().default(8233),
  TEMPORAL_PORT: z.coerce.number().int().default(7233),
  TEMPORAL_CLI_PATH: z.string().optional(),
  TEMPORAL_TEST_SERVER_PATH: z.string().optional(),
  DATABASE_URL: z.string().optional(),
  /** The schema owner's login: migrations and grants run as it, the services' pool uses DATABASE_URL. */
  DATABASE_OWNER_URL: z.string().optional(),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().default(5433),
  DEFAULT_JOB_TTL_SECONDS: z.coerce.number().int().min(1).default(3600),
  DEFAULT_JOB_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
  MOCK_COLD_START_SECONDS: z.coerce.number().min(0).default(3),
  MOCK_TOKENS_PER_SECOND: z.coerce.number().positive().default(50),
  MOCK_SPOT_SHORTAGE_PROBABILITY: z.coerce.number().min(0).max(1).default(0),
  MOCK_SPOT_INTERRUPTIONS_PER_HOUR: z.coerce.number().min(0).default(0),
  MOCK_SEED: z.coerce.number().int().default(42),
  /** How long a mock node's model server takes to wake from vLLM-style sleep (POST /wake_up). */
  MOCK_SLEEP_WAKE_SECONDS: z.coerce.number().min(0).default(1.5),
  WORKER_HEALTH_POLL_MS: z.coerce.number().int().min(50).default(500),
  WORKER_READY_PROBE_MS: z.coerce.number().int().min(10).default(50),
  PREEMPT_PRIORITY_GAP: z.coerce.number().int().min(1).max(4).default(2),
  /** OpenAI routes take warm slots from leases the pools grant this process (0: every request through a workflow). */
  /** Where the fast path's ledger rows wait on disk until written (default <ZEROPOOL_DATA_DIR>/ledger-spool). */
  FRONT_DOOR_LEDGER_SPOOL_DIR: z
    .string()
    .optional()
    .transform((v) => v || undefined),
  /** The fast path's ledger rows go to PostgreSQL in one statement at most this long after the first of them. */
  FRONT_DOOR_LEDGER_BATCH_MS: z.coerce.number().int().min(1).max(600_000).default(200),
  FRONT_DOOR_FAST_PATH: z
    .enum(['', '0', '1', 'false', 'true'])
    .default('1')
    .transform((v) => v !== '0' && v !== 'false'),
  NTFY_URL: z.string().url().optional(),
  NTFY_TOPIC: z
    .string()
    .regex(/^[-_A-Za-z0-9]{1,64}$/, 'ntfy topics are letters, digits, - and _')
    .optional(),
  NTFY_TOKEN: z.string().optional(),
  /** The aws provider (EC2): `auto` turns it on when AWS_REGION is set; credentials come from the SDK's standard chain. */
  /** Derives each node's bearer secret and the ledger's writer marks (32+ characters; every API and worker shares it). Absent: generated into the data folder. */
  ZEROPOOL_NODE_SECRET_KEY: z.string().min(32, 'at least 32 characters').optional(),
  AWS_EC2_ENABLED: z.enum(['auto', 'true', 'false']).default('auto'),
  AWS_REGION: z.string().optional(),
  /** Another EC2 endpoint (an emulator such as moto, a VPC endpoint); absent: the region's public one. */
  AWS_EC2_ENDPOINT: z.string().url().optional(),
  /** The hyperstack provider: on when a key is set (Hyperstack console → API keys). */
  HYPERSTACK_API_KEY: z.string().min(1).optional(),
  HYPERSTACK_API_URL: z.string().url().optional(),
  /** The runpod provider: on when a key is set (RunPod console → Settings → API keys). */
  RUNPOD_API_KEY: z.string().min(1).optional(),
  RUNPOD_API_URL: z.string().url().optional(),
  /** Where a pod's HTTP port is reached, with {podId} and {port}; absent: RunPod's proxy. */
  RUNPOD_PROXY_URL: z
    .string()
    .refine((v) => v.includes('{podId}') && /^https?:\/\//.test(v), 'a URL template holding {podId} (and usually {port})')
    .optional(),
  DOCKER_ENABLED: z.enum(['auto', 'true', 'false']).default('auto'),
  DOCKER_SOCKET_PATH: z.string().optional(),
  /** isolated: an internal bridge network of zeropool's own (no host loopback); host: the host's network (admin's choice). */
  DOCKER_NETWORK: z.enum(['isolated', 'host', 'bridge']).default('isolated'),
  DOCKER_ISOLATED_NETWORK: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/)
    .default('zeropool-services'),
  DOCKER_GPU_DEVICE_REQUESTS: z
    .enum(['0', '1', 'false', 'true'])
    .default('true')
    .transform((v) => v === '1' || v === 'true'),
  NVIDIA_SMI_PATH: z.string().default('nvidia-smi'),
  VRAM_RESERVE_MB: z.coerce.number().int().min(0).default(1024),
  /** Ports a public callback target may use besides 80 and 443, comma-separated (e.g. 8443). */
  CALLBACK_ALLOWED_PORTS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map(Number),
    )
    .refine((ports) => ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65_535), 'ports from 1 to 65535'),
  CALLBACK_ALLOWED_HOSTS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .superRefine((entries, ctx) => {
      try {
        parseAllowList(entries);
      } catch (err) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
      }
    }),
});

/** Parsed configuration. */
export type Config = z.infer<typeof configSchema> & { dataDir: string };

/** Parses the environment (or the given object); throws one readable error listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  if (env === process.env) loadDotEnv();
  // An empty variable (as `.env.example` leaves them) means "not set".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n  ');
    throw new Error(`invalid configuration:\n  ${problems}`);
  }
  const connectionProblems = temporalConnectionProblems(parsed.data);
  if (connectionProblems.length > 0) throw new Error(`invalid configuration:\n  ${connectionProblems.join('\n  ')}`);
  if (parsed.data.AWS_EC2_ENABLED === 'true' && !parsed.data.AWS_REGION)
    throw new Error('invalid configuration:\n  AWS_REGION: required when AWS_EC2_ENABLED=true');
  return { ...parsed.data, dataDir: path.resolve(parsed.data.ZEROPOOL_DATA_DIR) };
}

/**
 * `.env` in the working folder, when there is one, for the server and every tool alike (Node's own parser).
 * Variables already in the environment win over the file.
 */
export function loadDotEnv(file = path.resolve('.env')): void {
  if (existsSync(file)) process.loadEnvFile(file);
}

/** Whether the configuration turns the aws (EC2) provider on. */
export function awsEnabled(config: Config): boolean {
  return config.AWS_EC2_ENABLED === 'true' || (config.AWS_EC2_ENABLED === 'auto' && config.AWS_REGION !== undefined);
}

/** Names of the providers this configuration enables (what the API accepts in lanes). */
export function enabledProviderNames(config: Config, dockerOn: boolean): string[] {
  return [
    'mock',
    ...(dockerOn ? ['docker'] : []),
    ...(awsEnabled(config) ? ['aws'] : []),
    ...(config.HYPERSTACK_API_KEY ? ['hyperstack'] : []),
    ...(config.RUNPOD_API_KEY ? ['runpod'] : []),
  ];
}
