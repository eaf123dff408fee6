/** One error body everywhere: { error: { code, message, details } }. */
import type { ErrorRequestHandler } from 'express';
import { ZodError } from 'zod';
import { logger } from '../logger';

/** An error that maps to an HTTP answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Extra response headers (e.g. Retry-After). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/** 400 from a zod failure, naming each bad field. */
export function validationError(error: ZodError): ApiError {
  return new ApiError(
    400,
    'invalid_request',
    'request failed validation',
    error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  );
}

/** Express error handler producing the one error body. */
export const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  if (err instanceof ZodError) err = validationError(err);
  // A refusal raised inside the body parser (src/api/body.ts) carries its answer.
  const carried = (err as { apiError?: unknown } | undefined)?.apiError;
  if (carried instanceof ApiError) err = carried;
  if (err instanceof ApiError) {
    for (const [name, value] of Object.entries(err.headers ?? {})) res.setHeader(name, value);
    res.status(err.status).json({ error: { code: err.code, message: err.message, details: err.details ?? null } });
    return;
  }
  const status = (err as { status?: number; type?: string }).status;
  if (status === 413) {
    res.status(413).json({ error: { code: 'payload_too_large', message: 'request body exceeds the size limit', details: null } });
    return;
  }
  if (status === 400 && (err as { type?: string }).type === 'entity.parse.failed') {
    res.status(400).json({ error: { code: 'invalid_json', message: 'request body is not valid JSON', details: null } });
    return;
  }
  (res.locals.log ?? logger).error({ err }, 'unhandled error');
  res.status(500).json({ error: { code: 'internal', message: 'internal error', details: null } });
};
