/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the routes parse requests with. Response
 * shapes are described here; a test checks that every route the app serves is in the document.
 */
import { extendZodWithOpenApi, OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { laneSchema, poolConfigFields, poolConfigPatchSchema, poolConfigSchema } from '../domain/pool-config';
import { ENTITY_ID_PATTERN } from '../ids';
import { computeSchema } from './routes/compat';
import { chatCompletionSchema, completionSchema, embeddingSchema } from './routes/openai';
import { listJobsQuerySchema, submitJobSchema } from './routes/jobs';
import { progressReportSchema } from './routes/progress';
import { timelineQuerySchema } from './routes/pools';
import { analyticsQuerySchema, ledgerQuerySchema, ledgerVerifyQuerySchema } from './routes/ledger';
import { createWorkspaceSchema, issueKeySchema, updateWorkspaceSchema } from './routes/workspaces';
import { stopServiceSchema } from './routes/services';
import { serviceDefinitionFields } from '../domain/service';

// Adds .openapi() to zod schemas (named components need it); the API process only, never workflow code.
extendZodWithOpenApi(z);

const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().nullable() }),
});
/**
 * The OpenAI routes answer OpenAI's shape ({ message, type, param, code }); a missing or wrong key is refused
 * before them in zeropool's, so the document admits both (each has `message` and `code`).
 */
const openAiErrorBody = z.object({
  error: z
    .object({
      message: z.string(),
      // A node's own 4xx passes through as it wrote it, where `code` may be missing.
      code: z.string().nullable().optional(),
      type: z.string().optional(),
      param: z.string().nullable().optional(),
      details: z.unknown().optional(),
    })
    .passthrough(),
});

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid request (the details name each bad field)',
  401: 'Missing or invalid API key',
  403: 'The route needs the admin key',
  404: 'No such resource in the caller’s workspace',
  409: 'Conflict with the current state',
  413: 'Request body over the size limit',
  415: 'Request body not declared JSON (send content-type: application/json)',
  429: 'Workspace at its in-flight job limit (see Retry-After)',
  502: 'Every node tried failed before answering (upstream_failed)',
  503: 'A dependency (Temporal worker, PostgreSQL) did not answer, or capacity did not come in time (see Retry-After)',
};

const nodeView = z.object({
  id: z.string(),
  state: z.enum(['provisioning', 'ready', 'terminating', 'terminate_failed', 'stopping', 'stopped', 'sleeping']),
  laneIndex: z.number().int(),
  lane: laneSchema.optional(),
  url: z.string().optional(),
  readyAt: z.number().optional(),
  busySlots: z.number().int(),
  billedSeconds: z.number().optional(),
  stoppedSeconds: z.number().optional(),
  stoppedAt: z.number().optional(),
  sleptSeconds: z.number().optional(),
  wakingFromSleep: z.boolean().optional(),
  waking: z.boolean().optional(),
});
const keepAliveWindows = z.object({
  mode: z.enum(['fixed', 'keep', 'prewarm']),
  keepAliveMs: z.number(),
  prewarmMs: z.number().optional(),
  bootMs: z.number().optional(),
  expectedColdRate: z.number().optional(),
  fixedColdRate: z.number().optional(),
  expectedCostSeconds: z.number().optional(),
  fixedCostSeconds: z.number().optional(),
  down: z.enum(['sleeping', 'stopped', 'terminated']).optional(),
  wakeMs: z.number().optional(),
  sleepWakeMs: z.number().optional(),
  rungs: z
    .record(
      z.enum(['sleeping', 'stopped', 'terminated']),
      z.object({
        keepAliveMs: z.number(),
        prewarmMs: z.number().optional(),
        expectedCostUsd: z.number(),
        coldRate: z.number(),
        waitS: z.number(),
      }),
    )
    .optional(),
  reason: z.string(),
});
const poolView = z.object({
  id: z.string(),
  poolId: z.string(),
  createdAt: z.string().optional(),
  phase: z.enum(['idle', 'scaling_up', 'active', 'waiting_idle', 'tearing_down', 'draining', 'drained', 'stopping']),
  config: poolConfigSchema,
  nodes: z.array(nodeView),
  queued: z.number().int(),
  running: z.number().int(),
  queuedJobIds: z.array(z.string()),
  laneCooldownUntil: z.record(z.number()),
  draining: z.boolean(),
  placedTotal: z.number().int(),
  preemptedTotal: z.number().int(),
  queue: z.array(
    z.object({
      jobId: z.string(),
      priority: z.number().int(),
      effectivePriority: z.number().int(),
      waitingMs: z.number(),
      retryAt: z.number().optional(),
    }),
  ),
  placements: z.array(
    z.object({ jobId: z.string(), nodeId: z.string(), slot: z.number().int(), priority: z.number().int(), preempting: z.boolean() }),
  ),
  keepAlive: z.object({
    mode: z.enum(['fixed', 'adaptive']),
    windows: keepAliveWindows,
    scaleInWindowMs: z.number(),
    runMsAverage: z.number().optional(),
    adaptiveWouldChoose: keepAliveWindows.optional(),
    gapsSeen: z.number().int(),
    gapPercentilesS: z.object({ p5: z.number(), p50: z.number(), p99: z.number() }).optional(),
    bootEstimateMs: z.number().optional(),
    wakeEstimateMs: z.number().optional(),
    sleepWakeEstimateMs: z.number().optional(),
  }),
});
const preemptionCheck = z.object({
  mode: z.enum(['auto', 'manual']),
  gap: z.number().int(),
  preemptions: z.array(
    z.object({
      victim: z.string(),
      victimPriority: z.number().int(),
      nodeId: z.string(),
      preemptor: z.string(),
      preemptorPriority: z.number().int(),
    }),
  ),
  reasons: z.array(z.string()),
});
const coldStartPhasesSchema = z
  .object({
    rung: z.enum(['cold', 'stopped', 'sleeping']).describe('a fresh node, or one woken from stopped or from sleep'),
    capacity_ms: z.number().describe('finding a lane with capacity before the call that worked'),
    provider_ms: z.number().describe("the provider's create or start call"),
    boot_ms: z.number().describe('from accepted to the model server answering healthy'),
  })
  .describe('cold_start_ms split by phase (the phases sum to it)');
const jobStatus = z.enum(['queued', 'provisioning', 'running', 'completed', 'failed', 'expired', 'cancelled']);
const job = z.object({
  id: z.string().uuid(),
  pool: z.string(),
  status: jobStatus,
  priority: z.number().int().min(1).max(5),
  attempt: z.number().int(),
  failures: z.number().int(),
  preemptions: z.number().int(),
  node_id: z.string().nullable(),
  submitted_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  retry_at: z.string().nullable(),
  queue_ms: z.number().nullable(),
  cold_start_ms: z.number().nullable(),
  cold_start_phases: coldStartPhasesSchema.nullable(),
  run_ms: z.number().nullable(),
  tokens: z.object({ prompt: z.number(), completion: z.number() }).nullable(),
  progress: z
    .object({
      completion_tokens: z.number().int(),
      source: z.enum(['heartbeat', 'node']),
      attempt: z.number().int(),
      reported_at: z.string().nullable(),
    })
    .nullable(),
  result: z.unknown().nullable(),
  error: z.string().nullable(),
  callback: z
    .object({
      url: z.string(),
      state: z.enum(['retrying', 'delivered', 'refused', 'failed']),
      attempts: z.number().int(),
      last_status: z.number().int().nullable(),
      last_error: z.string().nullable(),
      delivered_at: z.string().nullable(),
    })
    .optional(),
});
const workspace = z.object({
  id: z.string(),
  name: z.string(),
  maxJobsInFlight: z.number().int(),
  jobsInFlight: z.number().int(),
  maxPools: z.number().int().nullable().describe('pools it may have (null: unlimited)'),
  maxNodes: z.number().int().nullable().describe('nodes its pools may reach together, the sum of their maxNodes (null: unlimited)'),
  minServicePriority: z.number().int().describe('the most urgent service priority it may use (1 most urgent … 5)'),
  maxVramGb: z.number().nullable().describe('GB of VRAM its services may claim together, each vramGb × maxNodes (null: unlimited)'),
  maxParkedRequests: z
    .number()
    .int()
    .nullable()
    .describe('OpenAI requests it may have waiting for capacity at once, per API process (null: unlimited)'),
  createdAt: z.string(),
  notifyTopic: z.string().optional().describe('the ntfy topic of this workspace’s job notifications (when ntfy is configured)'),
});
const figures = z.object({
  jobs: z.object({ completed: z.number(), failed: z.number(), expired: z.number(), cancelled: z.number() }),
  jobs_processed: z.number(),
  tokens: z.object({ input: z.number(), output: z.number() }),
  gpu_seconds_billed: z.number(),
  cost_usd: z.number(),
  idle_seconds: z.number(),
  idle_tax_usd: z.number(),
  peak_nodes: z.number().int(),
  always_on_cost_usd: z.number(),
  savings_usd: z.number(),
  cold_starts: z.object({ count: z.number(), p50_seconds: z.number().nullable(), p95_seconds: z.number().nullable() }),
  queue_overhead_ms: z.object({ average: z.number().nullable(), p95: z.number().nullable() }),
});
const analytics = figures.extend({
  workspace: z.string(),
  window: z.object({ from: z.string(), to: z.string() }),
  pools: z.array(figures.extend({ pool: z.string(), reference_price_per_hour: z.number().nullable(), active_window_seconds: z.number() })),
  formula: z.record(z.string()),
  total_inferences_processed: z.number(),
  total_tokens_generated: z.number(),
  aggregated_idle_tax_saved_usd: z.number(),
  average_queue_overhead_ms: z.number().nullable(),
});
const ledgerEvent = z.object({
  seq: z.number().int(),
  event_key: z.string(),
  event_type: z.string(),
  occurred_at: z.string(),
  pool_id: z.string().nullable(),
  node_id: z.string().nullable(),
  job_id: z.string().nullable(),
  provider: z.string().nullable(),
  market: z.string().nullable(),
  gpu: z.string().nullable(),
  price_per_hour: z.number().nullable(),
  details: z.record(z.unknown()),
  prev_hash: z.string(),
  row_hash: z.string(),
});
const legacyStatus = z.object({
  job_id: z.string(),
  status: z.enum(['queued', 'processing', 'completed', 'failed', 'expired', 'cancelled']),
  result: z.string().nullable(),
  error: z.string().nullable(),
  queue_time_ms: z.number().nullable(),
  cold_start_ms: z.number().nullable(),
  processing_time_ms: z.number().nullable(),
  tokens_generated: z.number().nullable(),
  created_at: z.string(),
  completed_at: z.string().nullable(),
});

const service = z.object({
  name: z.string(),
  enabled: z.boolean(),
  definition: z.record(z.unknown()),
  createdAt: z.string(),
  updatedAt: z.string(),
  phase: z.string(),
  containers: z.array(
    z.object({ nodeId: z.string(), state: z.string(), url: z.string().nullable(), busySlots: z.number().int(), local: z.boolean() }),
  ),
  queued: z.number().int(),
  running: z.number().int(),
});
const gpuReport = z.object({
  available: z.boolean(),
  reason: z.string().optional(),
  probedAt: z.string(),
  gpus: z.array(
    z.object({
      index: z.number().int(),
      uuid: z.string().nullable(),
      name: z.string().nullable(),
      utilizationPercent: z.number().nullable(),
      memory: z.object({
        totalMiB: z.number().nullable(),
        usedMiB: z.number().nullable(),
        freeMiB: z.number().nullable(),
        source: z.enum(['nvidia-smi', 'meminfo']),
      }),
      unifiedMemory: z.boolean(),
      migEnabled: z.boolean().nullable(),
      temperatureC: z.number().nullable(),
      powerDrawW: z.number().nullable(),
      powerLimitW: z.number().nullable(),
      processes: z.array(z.object({ pid: z.number().nullable(), name: z.string().nullable(), usedMemoryMiB: z.number().nullable() })),
    }),
  ),
});
const vram = z.object({
  available: z.boolean(),
  reason: z.string().optional(),
  reserveMiBPerGpu: z.number(),
  gpus: z.array(
    z.object({
      index: z.number().int(),
      name: z.string().nullable(),
      totalMiB: z.number(),
      usedMiB: z.number(),
      reserveMiB: z.number(),
      foreignMiB: z.number(),
      allocatedMiB: z.number(),
      availableMiB: z.number(),
    }),
  ),
  allocations: z.array(
    z.object({
      service: z.string(),
      nodeId: z.string(),
      gpu: z.number().int(),
      declaredMiB: z.number(),
      actualMiB: z.number().nullable(),
      priority: z.number().int(),
    }),
  ),
  otherWorkspacesMiB: z.number(),
  totals: z.object({
    totalMiB: z.number(),
    reservedMiB: z.number(),
    foreignMiB: z.number(),
    allocatedMiB: z.number(),
    availableMiB: z.number(),
  }),
  largestFreeMiB: z.number(),
});
const availability = z.object({
  pool: z.string(),
  decision: z.enum(['use_local', 'use_cloud', 'queue']),
  reasons: z.array(z.string()),
  gpus: z.array(z.number().int()).optional(),
  lane: z.number().int().optional(),
});
const nameParam = z.object({ name: z.string().regex(ENTITY_ID_PATTERN) });
const callbackSecret = z.object({ workspace: z.string(), secret: z.string(), scheme: z.string() });
const idParam = z.object({ id: z.string().regex(ENTITY_ID_PATTERN) });
const jobIdParam = z.object({ id: z.string().uuid() });
/** One server-sent event's data: a JSON chunk in OpenAI's shape, or the closing `[DONE]`. */
const sseEvent = z.unknown().openapi({ description: 'data: a chat.completion.chunk / text_completion chunk, then [DONE]' });
const json = (schema: z.ZodTypeAny, description: string) => ({ description, content: { 'application/json': { schema } } });

interface PathSpec {
  method: RouteConfig['method'];
  path: string;
  summary: string;
  tag: string;
  ok: [number, z.ZodTypeAny | null, string];
  errors: number[];
  request?: RouteConfig['request'];
  /** No key needed. */
  public?: boolean;
  /** Authenticated by the job's progress token instead of an API key. */
  progressToken?: boolean;
  /** The body may be left out (every other body is required: the server answers 400 without one). */
  optionalBody?: boolean;
  /** Errors in OpenAI's shape. */
  openAiErrors?: boolean;
  /** With `stream: true` the answer is server-sent events instead of JSON. */
  streams?: boolean;
}

/** Every route the API serves. */
export const API_PATHS: PathSpec[] = [
  {
    method: 'get',
    path: '/health',
    summary: 'Liveness',
    tag: 'service',
    ok: [200, z.object({ status: z.literal('ok') }), 'Alive'],
    errors: [],
    public: true,
  },
  {
    method: 'get',
    path: '/ready',
    summary: 'Readiness: Temporal and PostgreSQL reachable',
    tag: 'service',
    ok: [200, z.object({ status: z.string(), checks: z.record(z.boolean()) }), 'Ready'],
    errors: [503],
    public: true,
  },
  {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    tag: 'service',
    ok: [200, z.record(z.unknown()), 'OpenAPI 3.1'],
    errors: [],
    public: true,
  },
  { method: 'get', path: '/docs', summary: 'Interactive API docs', tag: 'service', ok: [200, null, 'HTML page'], errors: [], public: true },
  {
    method: 'get',
    path: '/ui',
    summary: 'Dashboard: pools, nodes by state, queue, cost today against always-on, timelines (the page asks the API with your key)',
    tag: 'service',
    ok: [200, null, 'HTML page'],
    errors: [],
    public: true,
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics (admin key)',
    tag: 'service',
    ok: [200, null, 'Prometheus text format'],
    errors: [401, 403],
  },

  {
    method: 'post',
    path: '/v1/workspaces',
    summary: 'Create a workspace (admin key)',
    tag: 'workspaces',
    request: { body: { content: { 'application/json': { schema: createWorkspaceSchema } } } },
    ok: [201, workspace, 'Created'],
    errors: [400, 401, 403, 409, 413],
  },
  {
    method: 'get',
    path: '/v1/workspaces',
    summary: 'List workspaces (admin key)',
    tag: 'workspaces',
    ok: [200, z.object({ workspaces: z.array(workspace) }), 'Workspaces'],
    errors: [401, 403],
  },
  {
    method: 'get',
    path: '/v1/workspaces/{id}',
    summary: 'Read a workspace (admin key)',
    tag: 'workspaces',
    request: { params: idParam },
    ok: [200, workspace, 'Workspace'],
    errors: [401, 403, 404],
  },
  {
    method: 'patch',
    path: '/v1/workspaces/{id}',
    summary: 'Rename or change the in-flight limit (admin key)',
    tag: 'workspaces',
    request: { params: idParam, body: { content: { 'application/json': { schema: updateWorkspaceSchema } } } },
    ok: [200, workspace, 'Updated'],
    errors: [400, 401, 403, 404],
  },
  {
    method: 'post',
    path: '/v1/workspaces/{id}/keys',
    summary: 'Issue an API key for the workspace; the key is shown only in this answer (admin key)',
    tag: 'workspaces',
    request: { params: idParam, body: { content: { 'application/json': { schema: issueKeySchema } } } },
    ok: [201, z.object({ id: z.string(), workspace: z.string(), key: z.string(), label: z.string(), createdAt: z.string() }), 'Issued'],
    errors: [400, 401, 403, 404],
  },
  {
    method: 'get',
    path: '/v1/workspaces/{id}/keys',
    summary: 'List the workspace’s keys, without secrets (admin key)',
    tag: 'workspaces',
    request: { params: idParam },
    ok: [
      200,
      z.object({ keys: z.array(z.object({ id: z.string(), label: z.string(), createdAt: z.string(), revokedAt: z.string().nullable() })) }),
      'Keys',
    ],
    errors: [401, 403, 404],
  },
  {
    method: 'delete',
    path: '/v1/workspaces/{id}/keys/{keyId}',
    summary: 'Revoke a key (admin key)',
    tag: 'workspaces',
    request: { params: idParam.extend({ keyId: z.string() }) },
    ok: [204, null, 'Revoked'],
    errors: [401, 403, 404],
  },

  {
    method: 'post',
    path: '/v1/pools',
    summary: 'Create a pool',
    tag: 'pools',
    request: {
      body: {
        content: {
          'application/json': {
            schema: poolConfigFields
              .extend({
                id: z.string().regex(ENTITY_ID_PATTERN),
                keepAlive: poolConfigFields.shape.keepAlive.describe(
                  'absent: { "mode": "adaptive" } for a pool created here (pools stored without one are fixed)',
                ),
              })
              .strict(),
          },
        },
      },
    },
    ok: [201, z.object({ id: z.string(), config: poolConfigSchema }), 'Created'],
    errors: [400, 401, 403, 409, 413],
  },
  {
    method: 'get',
    path: '/v1/pools',
    summary: 'List the workspace’s pools',
    tag: 'pools',
    ok: [
      200,
      z.object({ pools: z.array(z.object({ id: z.string(), config: poolConfigSchema, createdAt: z.string(), draining: z.boolean() })) }),
      'Pools',
    ],
    errors: [401],
  },
  {
    method: 'get',
    path: '/v1/pools/{id}',
    summary: 'Live state of a pool: nodes, queue, phase',
    tag: 'pools',
    request: { params: idParam },
    ok: [200, poolView, 'Pool'],
    errors: [401, 404, 503],
  },
  {
    method: 'patch',
    path: '/v1/pools/{id}',
    summary: 'Change a pool’s config',
    tag: 'pools',
    request: { params: idParam, body: { content: { 'application/json': { schema: poolConfigPatchSchema } } } },
    ok: [200, poolView, 'Updated'],
    errors: [400, 401, 403, 404, 409],
  },
  {
    method: 'delete',
    path: '/v1/pools/{id}',
    summary: 'Delete a pool with no nodes and no jobs left (drain it first); its ledger rows and job records stay',
    tag: 'pools',
    request: { params: idParam },
    ok: [204, null, 'Deleted'],
    errors: [401, 404, 409, 503],
  },
  {
    method: 'post',
    path: '/v1/pools/{id}/drain',
    summary: 'Stop taking jobs; finish what is queued and running, then release nodes',
    tag: 'pools',
    request: { params: idParam },
    ok: [200, poolView, 'Draining'],
    errors: [401, 404],
  },
  {
    method: 'post',
    path: '/v1/pools/{id}/resume',
    summary: 'Take jobs again after a drain',
    tag: 'pools',
    request: { params: idParam },
    ok: [200, poolView, 'Resumed'],
    errors: [401, 404],
  },
  {
    method: 'post',
    path: '/v1/pools/{id}/scale-to-zero',
    summary: 'Release idle nodes now (the baseline returns with the next job)',
    tag: 'pools',
    request: { params: idParam },
    ok: [200, poolView, 'Scaling to zero'],
    errors: [401, 404],
  },
  {
    method: 'get',
    path: '/v1/pools/{id}/timeline',
    summary:
      "The pool's activity from the ledger: [seconds since `from`, nodes billed, requests running] at every change, and marks (cold starts, wakes, to zero, lane moves); without hours or minutes the window fits the activity",
    tag: 'pools',
    request: { params: idParam, query: timelineQuerySchema },
    ok: [
      200,
      z.object({
        from: z.string(),
        to: z.string(),
        fitted: z.boolean().describe('the window was fitted to the activity (no hours or minutes given)'),
        points: z.array(z.array(z.number()).min(3).max(3)),
        marks: z.array(
          z.object({
            at: z.number().describe('seconds since `from`'),
            kind: z.enum(['cold_start', 'wake', 'to_zero', 'lane_move']),
            detail: z.string(),
          }),
        ),
        peakNodes: z.number().int(),
        requests: z.number().int(),
        nodeHours: z.number(),
        costUsd: z.number(),
      }),
      'Timeline',
    ],
    errors: [400, 401, 404],
  },
  {
    method: 'get',
    path: '/v1/pools/{id}/timeline.svg',
    summary: 'The same window as an SVG: nodes billed and requests running, the marks on the time axis, node-hours and cost',
    tag: 'pools',
    request: { params: idParam, query: timelineQuerySchema },
    ok: [200, null, 'image/svg+xml'],
    errors: [400, 401, 404],
  },
  {
    method: 'get',
    path: '/v1/pools/{id}/preempt/check',
    summary: 'What a preemption round would do now, or why it would do nothing',
    tag: 'pools',
    request: { params: idParam },
    ok: [200, preemptionCheck, 'Check'],
    errors: [401, 404, 503],
  },
  {
    method: 'post',
    path: '/v1/pools/{id}/preempt',
    summary: 'Run a preemption round now (also for pools in manual mode)',
    tag: 'pools',
    request: { params: idParam },
    ok: [200, preemptionCheck, 'Preemptions made'],
    errors: [401, 404],
  },

  {
    method: 'post',
    path: '/v1/services',
    summary: 'Register a local GPU service (a container definition run as the pool of the same name on the docker provider)',
    tag: 'services',
    request: {
      body: {
        content: { 'application/json': { schema: serviceDefinitionFields.extend({ name: z.string().regex(ENTITY_ID_PATTERN) }).strict() } },
      },
    },
    ok: [201, service, 'Registered'],
    errors: [400, 401, 403, 409, 413, 503],
  },
  {
    method: 'get',
    path: '/v1/services',
    summary: 'List the workspace’s services with their containers',
    tag: 'services',
    ok: [200, z.object({ services: z.array(service) }), 'Services'],
    errors: [401],
  },
  {
    method: 'get',
    path: '/v1/services/{name}',
    summary: 'A service: definition, enabled, containers, jobs',
    tag: 'services',
    request: { params: nameParam },
    ok: [200, service, 'Service'],
    errors: [401, 404],
  },
  {
    method: 'patch',
    path: '/v1/services/{name}',
    summary: 'Change a service’s definition (running containers keep theirs until a restart)',
    tag: 'services',
    request: { params: nameParam, body: { content: { 'application/json': { schema: z.record(z.unknown()) } } } },
    ok: [200, service, 'Updated'],
    errors: [400, 401, 403, 404, 409],
  },
  {
    method: 'delete',
    path: '/v1/services/{name}',
    summary: 'Delete a service with no containers and no jobs (disable it first)',
    tag: 'services',
    request: { params: nameParam },
    ok: [204, null, 'Deleted'],
    errors: [401, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/services/{name}/start',
    summary: 'Start a container now (the idle timer stops it again if no job comes)',
    tag: 'services',
    request: { params: nameParam },
    ok: [200, service, 'Starting'],
    errors: [401, 404, 409, 503],
  },
  {
    method: 'post',
    path: '/v1/services/{name}/stop',
    summary: 'Stop its containers: running jobs get drainTimeoutSeconds, then are preempted (progress kept); new jobs start it again',
    tag: 'services',
    request: { params: nameParam, body: { content: { 'application/json': { schema: stopServiceSchema } } } },
    optionalBody: true,
    ok: [202, service, 'Stopping'],
    errors: [400, 401, 404],
  },
  {
    method: 'post',
    path: '/v1/services/{name}/restart',
    summary: 'Stop as above, then start a fresh container from the current definition',
    tag: 'services',
    request: { params: nameParam, body: { content: { 'application/json': { schema: stopServiceSchema } } } },
    optionalBody: true,
    ok: [202, service, 'Restarting'],
    errors: [400, 401, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/services/{name}/disable',
    summary: 'Refuse new jobs; finish queued and running ones, then stop the containers',
    tag: 'services',
    request: { params: nameParam },
    ok: [200, service, 'Disabled'],
    errors: [401, 404],
  },
  {
    method: 'post',
    path: '/v1/services/{name}/enable',
    summary: 'Take jobs again',
    tag: 'services',
    request: { params: nameParam },
    ok: [200, service, 'Enabled'],
    errors: [401, 404],
  },
  {
    method: 'get',
    path: '/v1/gpu',
    summary: 'The host’s GPUs from nvidia-smi (available: false without one)',
    tag: 'local',
    ok: [200, gpuReport, 'GPUs'],
    errors: [401],
  },
  {
    method: 'get',
    path: '/v1/vram',
    summary: 'VRAM per GPU: total, reserve, used by others, allocated to services, available for new ones',
    tag: 'local',
    ok: [200, vram, 'VRAM'],
    errors: [401],
  },
  {
    method: 'get',
    path: '/v1/available/{pool}',
    summary: 'Where a job for this pool would run now: use_local, use_cloud or queue, with the reasons',
    tag: 'local',
    request: { params: z.object({ pool: z.string().regex(ENTITY_ID_PATTERN) }) },
    ok: [200, availability, 'Decision'],
    errors: [401, 404, 503],
  },

  {
    method: 'post',
    path: '/v1/jobs',
    summary: 'Submit a job',
    tag: 'jobs',
    request: { body: { content: { 'application/json': { schema: submitJobSchema } } } },
    ok: [
      202,
      z.object({
        id: z.string().uuid(),
        status: z.literal('queued'),
        status_url: z.string(),
        priority: z.number().int(),
        progress_token: z.string(),
      }),
      'Accepted (progress_token is for the node that reports progress)',
    ],
    errors: [400, 401, 404, 409, 413, 429],
  },
  {
    method: 'get',
    path: '/v1/jobs',
    summary: 'The workspace’s jobs, newest first: filters (pool, status or open, since, until) and cursor pages',
    tag: 'jobs',
    request: { query: listJobsQuerySchema },
    ok: [
      200,
      z.object({
        jobs: z.array(job.omit({ result: true })),
        next_cursor: z.string().nullable().describe('pass as cursor for the next page; null on the last'),
      }),
      'Jobs (results on GET /v1/jobs/{id})',
    ],
    errors: [400, 401],
  },
  {
    method: 'get',
    path: '/v1/jobs/{id}',
    summary: 'A job’s status, timings, tokens and result',
    tag: 'jobs',
    request: { params: jobIdParam },
    ok: [200, job, 'Job'],
    errors: [401, 404],
  },
  {
    method: 'delete',
    path: '/v1/jobs/{id}',
    summary: 'Cancel a job in any non-terminal state (a running request is aborted at its node)',
    tag: 'jobs',
    request: { params: jobIdParam },
    ok: [202, z.object({ id: z.string(), status: z.literal('cancelling') }), 'Cancelling'],
    errors: [401, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/jobs/{id}/progress',
    summary: 'A node reports a job’s progress (Authorization: Bearer <progress_token>, not an API key)',
    tag: 'jobs',
    request: { params: jobIdParam, body: { content: { 'application/json': { schema: progressReportSchema } } } },
    ok: [202, z.object({ id: z.string(), accepted: z.literal(true) }), 'Taken'],
    errors: [400, 401, 409, 413],
    progressToken: true,
  },
  {
    method: 'get',
    path: '/v1/callback-secret',
    summary: 'The secret the workspace’s callbacks are signed with',
    tag: 'jobs',
    ok: [200, callbackSecret, 'Secret'],
    errors: [401],
  },
  {
    method: 'post',
    path: '/v1/callback-secret/rotate',
    summary: 'Replace the workspace’s callback secret',
    tag: 'jobs',
    ok: [200, callbackSecret, 'New secret'],
    errors: [401],
  },

  {
    method: 'get',
    path: '/v1/analytics',
    summary: 'Jobs, tokens, cost, idle tax, savings, cold starts and queue overhead',
    tag: 'money',
    request: { query: analyticsQuerySchema },
    ok: [200, analytics, 'Analytics'],
    errors: [400, 401],
  },
  {
    method: 'get',
    path: '/v1/ledger',
    summary: 'Ledger rows of the workspace, in chain order',
    tag: 'money',
    request: { query: ledgerQuerySchema },
    ok: [200, z.object({ events: z.array(ledgerEvent), next_after: z.number().nullable() }), 'Rows'],
    errors: [400, 401],
  },
  {
    method: 'get',
    path: '/v1/ledger/verify',
    summary:
      'Recompute the workspace’s hash chain and name the first broken row; with an anchor kept outside the database, also catch a chain rewritten wholesale',
    tag: 'money',
    request: { query: ledgerVerifyQuerySchema },
    ok: [
      200,
      z.object({
        workspace: z.string(),
        ok: z.boolean(),
        rows_checked: z.number(),
        head_hash: z.string().nullable(),
        first_broken: z.object({ seq: z.number(), event_key: z.string(), reason: z.string() }).nullable(),
      }),
      'Verification',
    ],
    errors: [400, 401],
  },

  {
    method: 'post',
    path: '/v1/compute',
    summary: 'Earlier gateway: submit a prompt to the pool serving the model',
    tag: 'compatibility',
    request: { body: { content: { 'application/json': { schema: computeSchema } } } },
    ok: [202, z.object({ job_id: z.string(), status: z.literal('queued'), pool: z.string(), status_url: z.string() }), 'Accepted'],
    errors: [400, 401, 404, 409, 413, 429],
  },
  {
    method: 'get',
    path: '/v1/jobs/{id}/result',
    summary: 'A completed job’s answer as the node gave it (a service job’s image as an image; a chat job’s text)',
    tag: 'jobs',
    request: { params: jobIdParam },
    ok: [200, null, 'The answer, with its content type'],
    errors: [401, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/chat/completions',
    summary: 'OpenAI chat completion (streams with `stream: true`); parks while the pool serving `model` cold-starts',
    tag: 'openai',
    request: { body: { content: { 'application/json': { schema: chatCompletionSchema } } } },
    ok: [200, z.record(z.unknown()), 'The node’s answer (JSON, or text/event-stream when streaming)'],
    errors: [400, 401, 404, 409, 429, 502, 503],
    openAiErrors: true,
    streams: true,
  },
  {
    method: 'post',
    path: '/v1/completions',
    summary: 'OpenAI text completion (streams with `stream: true`)',
    tag: 'openai',
    request: { body: { content: { 'application/json': { schema: completionSchema } } } },
    ok: [200, z.record(z.unknown()), 'The node’s answer'],
    errors: [400, 401, 404, 409, 429, 502, 503],
    openAiErrors: true,
    streams: true,
  },
  {
    method: 'post',
    path: '/v1/embeddings',
    summary: 'OpenAI embeddings',
    tag: 'openai',
    request: { body: { content: { 'application/json': { schema: embeddingSchema } } } },
    ok: [200, z.record(z.unknown()), 'The node’s answer'],
    errors: [400, 401, 404, 409, 429, 502, 503],
    openAiErrors: true,
  },
  {
    method: 'get',
    path: '/v1/models',
    summary: 'Every model the workspace’s pools serve (pools at zero included)',
    tag: 'openai',
    ok: [
      200,
      z.object({
        object: z.literal('list'),
        data: z.array(z.object({ id: z.string(), object: z.literal('model'), created: z.number(), owned_by: z.string() })),
      }),
      'Models',
    ],
    errors: [401],
  },
  {
    method: 'get',
    path: '/v1/status/{id}',
    summary: 'Earlier gateway: a job’s status',
    tag: 'compatibility',
    request: { params: jobIdParam },
    ok: [200, legacyStatus, 'Status'],
    errors: [401, 404],
  },
];

/** Builds the document. */
export function openApiDocument() {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <key>' });
  registry.registerComponent('securitySchemes', 'zerogateKey', {
    type: 'apiKey',
    in: 'header',
    name: 'X-ZeroGate-Key',
    description: 'The earlier gateway’s header',
  });
  registry.registerComponent('securitySchemes', 'progressToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'A job’s progress_token (from its submission), for the node doing the work',
  });
  const zeropoolErrorSchema = registry.register('Error', errorBody);
  const openAiErrorSchema = registry.register('OpenAIError', openAiErrorBody);
  for (const spec of API_PATHS) {
    const errorSchema = spec.openAiErrors ? openAiErrorSchema : zeropoolErrorSchema;
    const responses: RouteConfig['responses'] = {
      [spec.ok[0]]: spec.ok[1] ? json(spec.ok[1], spec.ok[2]) : { description: spec.ok[2] },
    };
    if (spec.streams && spec.ok[1]) {
      const ok = json(spec.ok[1], spec.ok[2]);
      responses[spec.ok[0]] = { ...ok, content: { ...ok.content, 'text/event-stream': { schema: sseEvent } } };
    }
    for (const status of spec.errors) responses[status] = json(errorSchema, ERROR_TEXT[status]);
    // Any route that takes a body refuses one that is not declared JSON, or over the size limit (src/api/body.ts):
    // the fuzzer found a PATCH /v1/pools/{id} of 764 KB answered with an undocumented 413.
    if (spec.request?.body) {
      responses[413] = json(errorSchema, ERROR_TEXT[413]);
      responses[415] = json(errorSchema, ERROR_TEXT[415]);
    }
    responses[500] = json(errorSchema, 'Internal error');
    registry.registerPath({
      method: spec.method,
      path: spec.path,
      summary: spec.summary,
      tags: [spec.tag],
      security: spec.public ? [] : spec.progressToken ? [{ progressToken: [] }] : [{ bearer: [] }, { zerogateKey: [] }],
      request: spec.request?.body ? { ...spec.request, body: { ...spec.request.body, required: !spec.optionalBody } } : spec.request,
      responses,
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'zeropool',
      version: '1.0.0',
      description: 'Scale-to-zero control plane for GPU inference capacity. Every error answers { error: { code, message, details } }.',
    },
  });
}
