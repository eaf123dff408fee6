/**
 * OpenAI-compatible routes: `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `GET /v1/models`,
 * with workspace keys as `Authorization: Bearer` (what OpenAI clients send). `model` picks the workspace's pool
 * serving it; errors come in OpenAI's shape.
 */
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { listPools, type StoredPool } from '../../db/store';
import { POOL_CACHE_MS } from '../job-service';
import { parkedRequestQuota } from '../../db/quotas';
import { MAX_TOKENS_LIMIT } from '../../domain/inference-request';
import { poolKey } from '../../ids';
import { principalOf } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import type { FrontDoor, OpenAiRoute } from '../front-door';

// OpenAI bodies carry many fields zeropool passes through untouched; only what routing needs is checked.
/** A message as OpenAI's API takes it: an object with a role (content and the rest pass through to the node). */
const chatMessageSchema = z.object({ role: z.string().min(1).max(64) }).passthrough();
/** A prompt or an input: text, or a list of texts or of token ids (or lists of token ids). */
const textOrTokens = z.union([
  z.string(),
  z.array(z.union([z.string(), z.number().int().min(0), z.array(z.number().int().min(0))])).min(1),
]);
const maxTokens = z.number().int().min(1).max(MAX_TOKENS_LIMIT).optional();

export const chatCompletionSchema = z
  .object({
    model: z.string().min(1).max(200),
    messages: z.array(chatMessageSchema).min(1),
    stream: z.boolean().optional(),
    max_tokens: maxTokens,
  })
  .passthrough();
export const completionSchema = z
  .object({ model: z.string().min(1).max(200), prompt: textOrTokens, stream: z.boolean().optional(), max_tokens: maxTokens })
  .passthrough();
export const embeddingSchema = z.object({ model: z.string().min(1).max(200), input: textOrTokens }).passthrough();

const CHAT: OpenAiRoute = { name: 'chat.completions', nodePath: '/v1/chat/completions', streams: true };
const COMPLETIONS: OpenAiRoute = { name: 'completions', nodePath: '/v1/completions', streams: true };
const EMBEDDINGS: OpenAiRoute = { name: 'embeddings', nodePath: '/v1/embeddings', streams: false };

/** The proxied routes' handlers, by path under /v1: the router serves them, and so does the hot path (openai-hot-path.ts). */
export type OpenAiHandlers = Record<'/chat/completions' | '/completions' | '/embeddings', (req: Request, res: Response) => Promise<void>>;

export function openAiRoutes(ctx: Pick<ApiContext, 'db'>, frontDoor: FrontDoor): { router: Router; handlers: OpenAiHandlers } {
  const router = Router();
  // A warm request must not cost a PostgreSQL round trip: a workspace's pools are read at most once a second
  // (a model not in the cached list is looked up at once, so a pool just created is found).
  const cached = new Map<string, { at: number; pools: StoredPool[] }>();
  const poolsOf = async (workspaceId: string, model: string): Promise<StoredPool[]> => {
    const hit = cached.get(workspaceId);
    if (hit && Date.now() - hit.at < POOL_CACHE_MS && hit.pools.some((p) => p.config.model === model)) return hit.pools;
    const pools = await listPools(ctx.db, workspaceId);
    if (cached.size > 10_000) cached.clear();
    cached.set(workspaceId, { at: Date.now(), pools });
    return pools;
  };

  // The parked-request quota is read only when a request is about to park, and at most once a second.
  const parkedQuotas = new Map<string, { at: number; limit: number | null }>();
  const parkedQuotaOf = (workspaceId: string) => async (): Promise<number | null> => {
    const hit = parkedQuotas.get(workspaceId);
    if (hit && Date.now() - hit.at < POOL_CACHE_MS) return hit.limit;
    const limit = await parkedRequestQuota(ctx.db, workspaceId);
    if (parkedQuotas.size > 10_000) parkedQuotas.clear();
    parkedQuotas.set(workspaceId, { at: Date.now(), limit });
    return limit;
  };

  /** Parks and runs a request at the workspace's pool serving its model. */
  const proxied = (route: OpenAiRoute, schema: z.ZodType<Record<string, unknown>>) => async (req: Request, res: Response) => {
    const body = schema.parse(req.body);
    const workspaceId = principalOf(res).workspaceId;
    const model = String(body.model);
    const pools = (await poolsOf(workspaceId, model)).filter((p) => p.config.model === model);
    const pool = pools.find((p) => !p.draining);
    if (!pool) {
      if (pools.length > 0) throw new ApiError(409, 'pool_draining', `every pool serving ${model} is draining`);
      throw new ApiError(404, 'model_not_found', `The model \`${model}\` does not exist or you do not have access to it.`);
    }
    await frontDoor.handle(
      req,
      res,
      route,
      { key: poolKey(workspaceId, pool.id), config: pool.config, workspaceMaxParked: parkedQuotaOf(workspaceId) },
      body,
    );
  };
  const handlers: OpenAiHandlers = {
    '/chat/completions': proxied(CHAT, chatCompletionSchema),
    '/completions': proxied(COMPLETIONS, completionSchema),
    '/embeddings': proxied(EMBEDDINGS, embeddingSchema),
  };
  for (const [path, handler] of Object.entries(handlers)) router.post(path, handler);

  // Every model the workspace's pools serve, those at zero included: a model does not vanish when idle.
  router.get('/models', async (_req, res) => {
    const workspaceId = principalOf(res).workspaceId;
    const pools = await listPools(ctx.db, workspaceId);
    const models = new Map<string, number>();
    for (const p of pools) if (!models.has(p.config.model)) models.set(p.config.model, Math.floor(p.createdAt.getTime() / 1000));
    res.json({ object: 'list', data: [...models].map(([id, created]) => ({ id, object: 'model', created, owned_by: workspaceId })) });
  });

  return { router, handlers };
}
