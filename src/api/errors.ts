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

/** The 400 for a body that is not JSON (the body parser's failure, or the hot path's). */
export const invalidJsonError = (): ApiError => new ApiError(400, 'invalid_json', 'the request body is not valid JSON');

/** 400 from a zod failure, naming each bad field. */
export function validationError(error: ZodError): ApiError {
  return new ApiError(
    400,
    'invalid_request',
    'request failed validation',
    error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  );
}

/** The OpenAI-compatible routes: their errors are in OpenAI's shape, whatever raised them (auth, body, route). */
export const OPENAI_PATHS = /^\/v1\/(chat\/completions|completions|embeddings|models)(\/|$)/;

/** OpenAI's error `type` for a status (what the official clients map to their exception classes). */
function openAiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** Turns whatever was thrown into an ApiError (undefined: an unexpected failure, a 500). */
function asApiError(err: unknown): ApiError | undefined {
  if (err instanceof ZodError) return validationError(err);
  // A refusal raised inside the body parser (src/api/body.ts) carries its answer.
  const carried = (err as { apiError?: unknown } | undefined)?.apiError;
  if (carried instanceof ApiError) return carried;
  if (err instanceof ApiError) return err;
  const { status, type, limit } = (err ?? {}) as { status?: number; type?: string; limit?: number };
  if (status === 413) {
    const bound = typeof limit === 'number' ? ` of ${limit} bytes (BODY_LIMIT)` : ' (BODY_LIMIT)';
    return new ApiError(413, 'payload_too_large', `the request body is larger than the limit${bound}: send less, or raise BODY_LIMIT`);
  }
  if (status === 400 && type === 'entity.parse.failed') return invalidJsonError();
  if (status === 415 || type === 'encoding.unsupported')
    return new ApiError(415, 'unsupported_media_type', 'the request body must be JSON (content-type: application/json)');
  return undefined;
}

/** Express error handler producing the one error body ({ error: { code, message, details } }), or OpenAI's on its routes. */
export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const api = asApiError(err);
  if (!api) {
    (res.locals.log ?? logger).error({ err }, 'unhandled error');
  }
  const answer = api ?? new ApiError(500, 'internal', 'internal error');
  if (res.headersSent) return;
  for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
  if (OPENAI_PATHS.test(req.path)) {
    // A validation failure names its first field as OpenAI's `param`.
    const issue = err instanceof ZodError ? err.issues[0] : undefined;
    const param = issue ? issue.path.join('.') || null : null;
    const message = issue ? `${param ?? 'body'}: ${issue.message}` : answer.message;
    res.status(answer.status).json({ error: { message, type: openAiType(answer.status), param, code: answer.code } });
    return;
  }
  res.status(answer.status).json({ error: { code: answer.code, message: answer.message, details: answer.details ?? null } });
};
