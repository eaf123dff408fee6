/** The HTTP API (express 5): request ids, structured logs, auth, routes, one error body. */
import { randomUUID } from 'node:crypto';
import express from 'express';
import { logger } from '../logger';
import { requireApiKey } from './auth';
import type { ApiContext } from './context';
import { ApiError, errorHandler } from './errors';
import { jobRoutes } from './routes/jobs';
import { poolRoutes } from './routes/pools';

/** Options of the app beyond the route context. */
export interface AppOptions {
  apiKey?: string;
  bodyLimit: string;
  providers: string[];
}

/** Builds the express app. */
export function createApp(ctx: ApiContext, options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    const requestId = req.header('x-request-id')?.slice(0, 100) || randomUUID();
    res.setHeader('x-request-id', requestId);
    res.locals.log = logger.child({ requestId });
    next();
  });
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use(requireApiKey(options.apiKey));
  app.use(express.json({ limit: options.bodyLimit }));
  app.use('/v1/pools', poolRoutes({ ...ctx, providers: options.providers }));
  app.use('/v1/jobs', jobRoutes(ctx));
  app.use((req, _res, next) => next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler);
  return app;
}
