/** Bearer-token auth: every route but /health needs `Authorization: Bearer <ZEROPOOL_API_KEY>` when a key is set. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ApiError } from './errors';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares in constant time (over fixed-length digests, so the key's length does not leak either). */
export function keysMatch(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** Middleware; a no-op when no key is configured. */
export function requireApiKey(apiKey: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (!apiKey || req.path === '/health') return next();
    const header = req.header('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) return next(new ApiError(401, 'unauthorized', 'missing Authorization: Bearer <key>'));
    if (!keysMatch(match[1].trim(), apiKey)) return next(new ApiError(401, 'unauthorized', 'invalid API key'));
    next();
  };
}
