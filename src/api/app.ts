/** The HTTP API (express 5): request ids, structured logs, auth, routes, docs, metrics, one error body. */
import { randomUUID } from 'node:crypto';
import { httpTracing } from '../tracing';
import bytes from 'bytes';
import express from 'express';
import { logger } from '../logger';
import { lazyRequestLog } from './request-log';
import { listPools } from '../db/store';
import type { PoolView } from '../domain/types';
import { poolKey, poolWorkflowId } from '../ids';
import { httpRequests, metricsText, registry, setLocalGpuSource, setPoolMoneySource, setPoolStateSource } from '../metrics';
import { computeAnalytics } from '../db/analytics';
import { listWorkspaces } from '../db/workspaces';
import { poolStateQuery } from '../workflows/messages';
import { withTimeout } from './query';
import { authenticate, principalResolver, requireAdmin } from './auth';
import type { ApiContext } from './context';
import { docsRoutes } from './docs';
import { uiRoutes } from './ui';
import { API_PATHS } from './openapi';
import { ApiError, errorHandler } from './errors';
import { jsonBody, rejectUnstorableText } from './body';
import { JobService } from './job-service';
import { compatRoutes } from './routes/compat';
import { openAiRoutes } from './routes/openai';
import { FrontDoor } from './front-door';
import { openAiHotPath } from './openai-hot-path';
import { AbandonedRequests } from './abandoned-requests';
import { LeaseBook } from './lease-book';
import { LedgerBatch } from './ledger-batch';
import { LedgerSpool } from './ledger-spool';
import type { NodeSecrets } from '../secrets/node-secrets';
import { callbackSecretRoutes } from './routes/callbacks';
import { jobRoutes } from './routes/jobs';
import { jobProgressRoute } from './routes/progress';
import { ledgerRoutes } from './routes/ledger';
import { poolRoutes } from './routes/pools';
import { serviceRoutes } from './routes/services';
import { gpuRoutes } from './routes/gpu';
import { type LocalGpus, vramReport } from '../local-gpus/report';
import { GpuProbe } from '../local-gpus/probe';
import { workspaceRoutes } from './routes/workspaces';

/** Options of the app beyond the route context. */
export interface AppOptions {
  /** Bootstrap admin key (ZEROPOOL_API_KEY). */
  apiKey?: string;
  /** Accept requests without a key, as the admin of the default workspace (ZEROPOOL_INSECURE=1). */
  insecure?: boolean;
  bodyLimit: string;
  providers: string[];
  /** In-flight job limit of workspaces created through the API. */
  defaultMaxJobsInFlight?: number;
  /** The host's GPUs and the docker provider (GET /v1/gpu, /v1/vram, /v1/available); default: probe only. */
  local?: LocalGpus;
  /** Readiness: resolves when Temporal and PostgreSQL answer. */
  checkReady?: () => Promise<Record<string, boolean>>;
  /** Each node's bearer secret (the OpenAI routes call nodes themselves); its key also marks ledger rows. */
  nodeSecrets: NodeSecrets;
  /** The OpenAI routes' warm fast path: slot leases and batched ledger rows (default on). */
  fastPath?: boolean;
  /** Where the fast path's ledger rows wait on disk until PostgreSQL has them (absent: in memory only). */
  ledgerSpoolDir?: string;
  /** How long the fast path's rows gather before they are written (default 200 ms). */
  ledgerBatchMs?: number;
  /** A server span per request (tracing on: see src/tracing.ts). */
  tracing?: boolean;
}

/** Builds the express app. */
export function createApp(ctx: ApiContext, options: AppOptions): express.Express {
  if (!options.apiKey && !options.insecure)
    throw new Error('refusing to serve without an API key: set ZEROPOOL_API_KEY, or ZEROPOOL_INSECURE=1 for a trusted network');
  const frontDoor = new FrontDoor(
    ctx,
    options.nodeSecrets,
    options.fastPath === false
      ? undefined
      : {
          leases: new LeaseBook(ctx.client, logger),
          abandoned: new AbandonedRequests(ctx.client, logger),
          ledger: new LedgerBatch(ctx.db, options.nodeSecrets, logger, {
            ...(options.ledgerSpoolDir ? { spool: new LedgerSpool(options.ledgerSpoolDir, logger) } : {}),
            ...(options.ledgerBatchMs ? { maxDelayMs: options.ledgerBatchMs } : {}),
          }),
        },
  );
  const openAi = openAiRoutes(ctx, frontDoor);
  const principals = principalResolver({ adminKey: options.apiKey, insecure: options.insecure ?? false, db: ctx.db });
  const app = express();
  // Called at shutdown: leases go back to their pools and the last ledger rows are written.
  app.locals.close = () => frontDoor.close();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  if (options.tracing) app.use(httpTracing());
  app.use((req, res, next) => {
    const requestId = req.header('x-request-id')?.slice(0, 100) || randomUUID();
    res.setHeader('x-request-id', requestId);
    lazyRequestLog(res, logger, { requestId });
    const stopTimer = httpRequests.startTimer({ method: req.method });
    res.on('finish', () => stopTimer({ route: routeLabel(req, res), status: String(res.statusCode) }));
    next();
  });
  // Warm OpenAI requests first, past the router and the body parser (what it does not take goes on below).
  app.use(openAiHotPath(principals, openAi.handlers, bytes.parse(options.bodyLimit) ?? 0));
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    const checks = options.checkReady ? await options.checkReady() : {};
    const ready = Object.values(checks).every(Boolean);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  app.use(docsRoutes());
  app.use(uiRoutes());
  // Nodes report progress with the job's own token, not an API key.
  app.use(jobProgressRoute(ctx, options.bodyLimit));
  app.use(authenticate(principals));
  app.use(jsonBody(options.bodyLimit));
  app.use(rejectUnstorableText);
  app.get('/metrics', requireAdmin, async (_req, res) => {
    res.setHeader('content-type', registry.contentType);
    res.send(await metricsText());
  });
  setPoolStateSource(async () => {
    const pools = await listPools(ctx.db);
    const views = await Promise.all(
      pools.map((p) =>
        withTimeout(ctx.client.workflow.getHandle(poolWorkflowId(poolKey(p.workspaceId, p.id))).query(poolStateQuery), 1000).catch(
          () => undefined,
        ),
      ),
    );
    return views.filter((v): v is PoolView => v !== undefined);
  });
  setPoolMoneySource(async () => {
    const from = new Date(Date.now() - 24 * 3600_000);
    const figures = await Promise.all(
      (await listWorkspaces(ctx.db)).map(async (w) => {
        const analytics = await computeAnalytics(ctx.db, { workspaceId: w.id, from });
        return analytics.pools.map((p) => ({ ...p, workspace: w.id }));
      }),
    );
    return figures.flat();
  });
  const local = options.local ?? { probe: new GpuProbe({ nvidiaSmiPath: 'nvidia-smi' }), reserveMiB: 1024 };
  setLocalGpuSource(async () => {
    const report = await local.probe.probe();
    return { gpus: report.gpus, vram: await vramReport(local, report) };
  });
  const jobs = new JobService({ ...ctx, nodeSecrets: ctx.nodeSecrets ?? options.nodeSecrets });
  app.use('/v1/workspaces', workspaceRoutes({ ...ctx, defaultMaxJobsInFlight: options.defaultMaxJobsInFlight ?? 1000 }));
  app.use('/v1/pools', poolRoutes({ ...ctx, providers: options.providers }));
  app.use('/v1/jobs', jobRoutes(ctx, jobs));
  app.use('/v1/services', serviceRoutes({ ...ctx, providers: options.providers, docker: options.local?.docker }));
  app.use('/v1', gpuRoutes({ ...ctx, local }));
  app.use('/v1/callback-secret', callbackSecretRoutes(ctx));
  app.use('/v1', ledgerRoutes(ctx, options.nodeSecrets));
  app.use('/v1', openAi.router);
  app.use('/v1', compatRoutes(jobs));
  // A known path asked with a method it does not serve: 405 naming the methods it does (as the document lists them).
  const documented = API_PATHS.map((p) => ({
    pattern: new RegExp(`^${p.path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
    method: p.method.toUpperCase(),
  }));
  app.use((req, res, next) => {
    const allowed = [...new Set(documented.filter((d) => d.pattern.test(req.path)).map((d) => d.method))];
    if (allowed.length === 0) return next();
    res.setHeader('Allow', allowed.join(', '));
    next(new ApiError(405, 'method_not_allowed', `${req.method} is not allowed on ${req.path}; allowed: ${allowed.join(', ')}`));
  });
  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler);
  return app;
}

/** The matched route pattern (not the raw path: ids would explode the label set). */
function routeLabel(req: express.Request, res: express.Response): string {
  if (typeof res.locals.route === 'string') return res.locals.route; // set by the hot path
  const route = (req as { route?: { path?: string } }).route?.path;
  return route ? `${req.baseUrl}${route === '/' ? '' : route}` || '/' : 'unmatched';
}
