/**
 * Authentication: every route but the public ones needs a key, as `Authorization: Bearer <key>` or (for
 * clients of the earlier gateway) `X-ZeroGate-Key: <key>`. The bootstrap admin key from the environment acts
 * in the default workspace and may manage workspaces; workspace keys act in their own workspace only.
 */
import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Pool } from 'pg';
import { findApiKey, keyDigest, parseKeyId, type ApiKeyRecord } from '../db/workspaces';
import { DEFAULT_WORKSPACE } from '../ids';
import { ApiError } from './errors';
import { addLogBindings } from './request-log';

/** Who is calling. */
export interface Principal {
  workspaceId: string;
  admin: boolean;
  /** Id of the workspace key used; null for the admin key or insecure mode. */
  keyId: string | null;
}

/** Compares in constant time over fixed-length digests, so neither content nor length leaks. */
export function keysMatch(presented: string, expected: string): boolean {
  return timingSafeEqual(keyDigest(presented), keyDigest(expected));
}

/** Routes anyone may call: liveness, readiness and the API description. */
export const PUBLIC_PATHS = ['/health', '/ready', '/openapi.json'];
const isPublic = (path: string) => PUBLIC_PATHS.includes(path) || path === '/docs' || path.startsWith('/docs/');

/** The key a request presents, if any. */
export function presentedKey(header: (name: string) => string | undefined): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header('authorization') ?? '')?.[1];
  return bearer ?? (header('x-zerogate-key')?.trim() || undefined);
}

/** How long a looked-up key record is reused: a revoked key stops working within this time. */
const KEY_CACHE_MS = 5000;

export interface AuthOptions {
  /** Bootstrap admin key; required unless `insecure`. */
  adminKey?: string;
  /** Requests without a key act as the admin of the default workspace (ZEROPOOL_INSECURE=1). */
  insecure: boolean;
  db: Pick<Pool, 'query'>;
}

/** Who presented a key: `resolve` checks it (a digest, a cached record); `accepted` knows it only if it passed lately. */
export interface PrincipalResolver {
  resolve(key: string | undefined): Promise<Principal | undefined>;
  /** The caller when this key (or no key, in insecure mode) passed within KEY_CACHE_MS; no work, no I/O. */
  accepted(key: string | undefined): Principal | undefined;
}

/** The bootstrap admin key's caller, and every caller in insecure mode. */
const DEFAULT_ADMIN: Principal = Object.freeze({ workspaceId: DEFAULT_WORKSPACE, admin: true, keyId: null });

/** Resolves presented keys; one per app, shared by the middleware and the OpenAI hot path. */
export function principalResolver(options: AuthOptions): PrincipalResolver {
  const cache = new Map<string, { record: ApiKeyRecord | undefined; at: number }>();

  async function lookup(keyId: string): Promise<{ record: ApiKeyRecord | undefined; at: number }> {
    const hit = cache.get(keyId);
    if (hit && Date.now() - hit.at < KEY_CACHE_MS) return hit;
    const record = await findApiKey(options.db, keyId);
    if (cache.size > 10_000) cache.clear();
    const entry = { record, at: Date.now() };
    cache.set(keyId, entry);
    return entry;
  }

  // Digests computed once: the presented key is hashed once and compared with both.
  const adminDigest = options.adminKey ? keyDigest(options.adminKey) : undefined;
  const emptyDigest = keyDigest('');
  // Keys that passed, by the exact text presented, until their record is looked up again (the same KEY_CACHE_MS,
  // so a revoked key stops as soon as it did before): a warm request hashes nothing. Only accepted keys are kept,
  // so wrong guesses neither fill it nor take a path of their own.
  const passed = new Map<string, { principal: Principal; until: number }>();
  const remember = (key: string, principal: Principal, until: number) => {
    if (passed.size >= 10_000) passed.clear();
    passed.set(key, { principal, until });
    return principal;
  };

  function accepted(key: string | undefined): Principal | undefined {
    if (key === undefined) return options.insecure ? DEFAULT_ADMIN : undefined;
    const known = passed.get(key);
    return known && Date.now() < known.until ? known.principal : undefined;
  }

  async function resolve(key: string | undefined): Promise<Principal | undefined> {
    const known = accepted(key);
    if (known || key === undefined) return known;
    const presented = keyDigest(key);
    if (adminDigest && timingSafeEqual(presented, adminDigest)) return remember(key, DEFAULT_ADMIN, Date.now() + KEY_CACHE_MS);
    const keyId = parseKeyId(key);
    if (!keyId) return undefined;
    const { record, at } = await lookup(keyId);
    // Compare even when the id is unknown, so a miss takes the same time as a wrong secret.
    const matches = timingSafeEqual(presented, record?.keyHash ?? emptyDigest);
    if (!record || !matches || record.revokedAt) return undefined;
    return remember(key, Object.freeze({ workspaceId: record.workspaceId, admin: false, keyId: record.id }), at + KEY_CACHE_MS);
  }

  return { resolve, accepted };
}

/** Middleware that resolves the caller into `res.locals.principal` or answers 401. */
export function authenticate(resolver: PrincipalResolver): RequestHandler {
  const { resolve } = resolver;
  return (req, res, next) => {
    if (isPublic(req.path)) return next();
    const key = presentedKey((name) => req.header(name));
    resolve(key).then(
      (principal) => {
        if (!principal) {
          const authorization = req.header('authorization');
          const message =
            key !== undefined
              ? 'invalid API key'
              : authorization
                ? 'the Authorization header needs the Bearer scheme: send Authorization: Bearer <key>'
                : 'missing API key: send Authorization: Bearer <key>';
          return next(new ApiError(401, 'unauthorized', message));
        }
        res.locals.principal = principal;
        addLogBindings(res.locals, { workspaceId: principal.workspaceId });
        next();
      },
      (err) => next(err),
    );
  };
}

/** Only the admin key may pass. */
export const requireAdmin: RequestHandler = (_req, res, next) => {
  if (!(res.locals.principal as Principal | undefined)?.admin)
    return next(new ApiError(403, 'forbidden', 'this route needs the admin key'));
  next();
};

/** The caller (set by `authenticate`). */
export function principalOf(res: { locals: Record<string, unknown> }): Principal {
  return res.locals.principal as Principal;
}
