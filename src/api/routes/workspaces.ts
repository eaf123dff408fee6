/** /v1/workspaces: tenants and their API keys. Admin key only. */
import { Router } from 'express';
import { z } from 'zod';
import {
  createWorkspace,
  getWorkspace,
  issueApiKey,
  listApiKeys,
  listWorkspaces,
  revokeApiKey,
  updateWorkspace,
  type Workspace,
} from '../../db/workspaces';
import { NEW_WORKSPACE_QUOTAS } from '../../domain/quotas';
import { ENTITY_ID_PATTERN } from '../../ids';
import { requireAdmin } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';

/** Quotas the admin sets (null: unlimited); see src/domain/quotas.ts. */
const quotaFields = {
  maxPools: z.number().int().min(0).max(10_000).nullable().optional(),
  maxNodes: z.number().int().min(0).max(100_000).nullable().optional(),
  minServicePriority: z.number().int().min(1).max(5).optional(),
  maxVramGb: z.number().min(0).max(1_000_000).nullable().optional(),
  maxParkedRequests: z.number().int().min(0).max(1_000_000).nullable().optional(),
};
export const createWorkspaceSchema = z
  .object({
    id: z.string().regex(ENTITY_ID_PATTERN, 'lowercase letters, digits and dashes, at most 63'),
    name: z.string().min(1).max(200).optional(),
    maxJobsInFlight: z.number().int().min(1).max(1_000_000).optional(),
    ...quotaFields,
  })
  .strict();
export const updateWorkspaceSchema = z
  .object({
    name: z.string().min(1).max(200).optional(),
    maxJobsInFlight: z.number().int().min(1).max(1_000_000).optional(),
    ...quotaFields,
  })
  .strict();
export const issueKeySchema = z.object({ label: z.string().max(200).optional() }).strict();

export function presentWorkspace(w: Workspace, notifyTopicOf?: (workspaceId: string) => string) {
  return {
    id: w.id,
    name: w.name,
    maxJobsInFlight: w.maxJobsInFlight,
    jobsInFlight: w.jobsInFlight,
    maxPools: w.maxPools,
    maxNodes: w.maxNodes,
    minServicePriority: w.minServicePriority,
    maxVramGb: w.maxVramGb,
    maxParkedRequests: w.maxParkedRequests,
    createdAt: w.createdAt.toISOString(),
    // Where this workspace's job notifications go: give it to the workspace's people to subscribe.
    ...(notifyTopicOf ? { notifyTopic: notifyTopicOf(w.id) } : {}),
  };
}

/** Routes for workspaces and keys. */
export function workspaceRoutes(ctx: ApiContext & { defaultMaxJobsInFlight: number }): Router {
  const router = Router();
  router.use(requireAdmin);
  const present = (w: Workspace) => presentWorkspace(w, ctx.notifyTopicOf);

  async function requireWorkspace(id: string): Promise<Workspace> {
    const workspace = ENTITY_ID_PATTERN.test(id) ? await getWorkspace(ctx.db, id) : undefined;
    if (!workspace) throw new ApiError(404, 'not_found', `workspace ${id} does not exist`);
    return workspace;
  }

  router.post('/', async (req, res) => {
    const body = createWorkspaceSchema.parse(req.body);
    const created = await createWorkspace(ctx.db, body.id, body.name ?? body.id, body.maxJobsInFlight ?? ctx.defaultMaxJobsInFlight, {
      maxPools: body.maxPools === undefined ? NEW_WORKSPACE_QUOTAS.maxPools : body.maxPools,
      maxNodes: body.maxNodes === undefined ? NEW_WORKSPACE_QUOTAS.maxNodes : body.maxNodes,
      minServicePriority: body.minServicePriority ?? NEW_WORKSPACE_QUOTAS.minServicePriority,
      maxVramGb: body.maxVramGb === undefined ? NEW_WORKSPACE_QUOTAS.maxVramGb : body.maxVramGb,
      maxParkedRequests: body.maxParkedRequests === undefined ? NEW_WORKSPACE_QUOTAS.maxParkedRequests : body.maxParkedRequests,
    });
    if (!created) throw new ApiError(409, 'conflict', `workspace ${body.id} already exists`);
    res.status(201).location(`/v1/workspaces/${created.id}`).json(present(created));
  });

  router.get('/', async (_req, res) => {
    res.json({ workspaces: (await listWorkspaces(ctx.db)).map(present) });
  });

  router.get('/:id', async (req, res) => {
    res.json(present(await requireWorkspace(req.params.id)));
  });

  router.patch('/:id', async (req, res) => {
    await requireWorkspace(req.params.id);
    const updated = await updateWorkspace(ctx.db, req.params.id, updateWorkspaceSchema.parse(req.body));
    res.json(present(updated!));
  });

  router.post('/:id/keys', async (req, res) => {
    const workspace = await requireWorkspace(req.params.id);
    const body = issueKeySchema.parse(req.body ?? {});
    const issued = await issueApiKey(ctx.db, workspace.id, body.label ?? '');
    // The only time the key is shown: it is stored as a digest.
    res.status(201).json({
      id: issued.id,
      workspace: workspace.id,
      key: issued.key,
      label: body.label ?? '',
      createdAt: issued.createdAt.toISOString(),
    });
  });

  router.get('/:id/keys', async (req, res) => {
    const workspace = await requireWorkspace(req.params.id);
    const keys = await listApiKeys(ctx.db, workspace.id);
    res.json({
      keys: keys.map((k) => ({
        id: k.id,
        label: k.label,
        createdAt: k.createdAt.toISOString(),
        revokedAt: k.revokedAt?.toISOString() ?? null,
      })),
    });
  });

  router.delete('/:id/keys/:keyId', async (req, res) => {
    const workspace = await requireWorkspace(req.params.id);
    if (!(await revokeApiKey(ctx.db, workspace.id, req.params.keyId)))
      throw new ApiError(404, 'not_found', `no live key ${req.params.keyId}`);
    res.status(204).end();
  });

  return router;
}
