/** One error body everywhere: { error: { code, message, details } }. */
import type { ErrorRequestHandler, RequestHandler } from 'express';
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

/** Where a NUL character hides in a parsed body (a path like `messages.0.content`), or undefined. */
export function nulCharacterAt(value: unknown, path: string[] = [], depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path.join('.') || 'body' : undefined;
  if (depth > 64 || value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\u0000')) return [...path, key].join('.');
    const found = nulCharacterAt(item, [...path, key], depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * 400 for a NUL character anywhere in the path, query or JSON body: PostgreSQL's text and jsonb cannot hold one,
 * so it would otherwise surface as a 500 deep in a write (schemathesis found it in a workspace name).
 */
export const rejectNulCharacters: RequestHandler = (req, _res, next) => {
  const where = /%00/.test(req.originalUrl) ? 'url' : (nulCharacterAt(req.query, ['query']) ?? nulCharacterAt(req.body));
  if (where === undefined) return next();
  next(
    new ApiError(400, 'invalid_request', `${where}: text may not contain the NUL character (\\u0000)`, [
      { path: where, message: 'contains \\u0000' },
    ]),
  );
};
