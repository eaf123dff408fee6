/**
 * What a JSON body must be before any code that recurses touches it, and what its text must be before it can
 * be stored.
 *
 * Contract:
 * - Nesting: a body nested deeper than `MAX_JSON_DEPTH` arrays/objects is refused with 400 naming the limit,
 *   decided by one linear scan of the raw bytes, before `JSON.parse` (and before zod, the payload converter,
 *   `JSON.stringify` on the way to a node, or PostgreSQL's jsonb, each of which recurses or refuses deep input).
 * - Text: PostgreSQL's text and jsonb cannot hold the NUL character, and no UTF-8 store can hold a lone UTF-16
 *   surrogate (`"\ud800"` in JSON text parses to one). Either, anywhere in a key or a string value, is refused
 *   with 400 naming where, so it never reaches a write that would fail later and be retried for ever.
 * Failure model: both checks are iterative (no recursion a hostile body could exhaust); they only refuse, never
 * change what they pass.
 */
import express, { type RequestHandler } from 'express';
import { unstorableTextProblem } from '../domain/text';
import { ApiError } from './errors';

/** Deepest nesting of arrays and objects a JSON body may have (chat bodies need about 6). */
export const MAX_JSON_DEPTH = 64;

/** True when the JSON text nests arrays/objects deeper than `max` (brackets inside strings do not count). */
export function jsonNestsDeeperThan(text: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const byte = text[i];
    if (inString) {
      if (byte === 0x5c)
        i++; // a backslash: the next byte is escaped
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x5b || byte === 0x7b) {
      if (++depth > max) return true;
    } else if (byte === 0x5d || byte === 0x7d) depth--;
  }
  return false;
}

/** Where unstorable text hides in a parsed value (a path like `messages.0.content`) and why, or undefined. */
export function unstorableTextAt(value: unknown, prefix = ''): { path: string; problem: string } | undefined {
  const pending: Array<{ value: unknown; path: string }> = [{ value, path: prefix }];
  while (pending.length > 0) {
    const { value: item, path } = pending.pop()!;
    if (typeof item === 'string') {
      const problem = unstorableTextProblem(item);
      if (problem) return { path: path || 'body', problem };
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        const childPath = path ? `${path}.${key}` : key;
        const problem = unstorableTextProblem(key);
        if (problem) return { path: childPath, problem: `a key: ${problem}` };
        pending.push({ value: child, path: childPath });
      }
    }
  }
  return undefined;
}

/** The 400 for unstorable text at a place. */
export function unstorableTextError(found: { path: string; problem: string }): ApiError {
  return new ApiError(400, 'invalid_request', `${found.path}: ${found.problem}`, [{ path: found.path, message: found.problem }]);
}

/** An error the JSON parser's verify step raises: the error handler answers with the ApiError it carries. */
class BodyRefused extends Error {
  readonly status = 400;
  readonly expose = true;
  constructor(readonly apiError: ApiError) {
    super(apiError.message);
  }
}

/** The 400 for a body nested deeper than MAX_JSON_DEPTH. */
export function bodyTooDeepError(): ApiError {
  return new ApiError(400, 'body_too_deep', `request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels, its limit`, [
    { path: 'body', message: `nesting deeper than ${MAX_JSON_DEPTH}` },
  ]);
}

/** express.json with the nesting bound checked on the raw bytes first. */
export function jsonBody(limit: string): RequestHandler {
  const parse = express.json({
    limit,
    verify: (_req, _res, buf) => {
      if (jsonNestsDeeperThan(buf, MAX_JSON_DEPTH)) throw new BodyRefused(bodyTooDeepError());
    },
  });
  return (req, res, next) => {
    // A body that is not declared JSON would pass unparsed and fail validation as "Required": say what is wrong.
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is('application/json') && !req.is('+json'))
      return next(
        new ApiError(
          415,
          'unsupported_media_type',
          `the request body must be JSON, sent with content-type: application/json (got ${req.headers['content-type'] ?? 'no content-type'})`,
        ),
      );
    parse(req, res, next);
  };
}

/** 400 for unstorable text anywhere in the path, query or JSON body. */
export const rejectUnstorableText: RequestHandler = (req, _res, next) => {
  if (/%00/.test(req.originalUrl))
    return next(unstorableTextError({ path: 'url', problem: 'text may not contain the NUL character (\\u0000)' }));
  const found = unstorableTextAt(req.query, 'query') ?? unstorableTextAt(req.body);
  next(found ? unstorableTextError(found) : undefined);
};
