/**
 * /v1/services: local GPU services (containers from registered definitions). A service is a pool on the
 * docker provider with the same name: jobs are submitted to it like to any pool.
 */
import { Router } from 'express';
import { insertPoolWithinQuota, resizeWithinQuota } from '../../db/quotas';
import { getWorkspace } from '../../db/workspaces';
import { servicePriorityRefusal } from '../../domain/quotas';
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import type { VramFactsSource } from '../../local-gpus/report';
import { setPoolDraining } from '../../db/store';
import { deleteServiceAndPool, getService, listServices, setServiceEnabled } from '../../db/services';
import {
  DOCKER_PROVIDER,
  serviceDefinitionSchema,
  servicePoolConfig,
  type ServiceDefinition,
  type ServiceRecord,
} from '../../domain/service';
import type { PoolView } from '../../domain/types';
import { ENTITY_ID_PATTERN, type PoolKey, poolKey, poolWorkflowId } from '../../ids';
import {
  drainPoolUpdate,
  poolStateQuery,
  resumePoolUpdate,
  stopPoolUpdate,
  updatePoolConfigUpdate,
  warmPoolUpdate,
} from '../../workflows/messages';
import { principalOf } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { ensurePoolWorkflow } from '../pool-workflows';
import { queryWithRetry } from '../query';

export const createServiceSchema = z
  .object({ name: z.string().regex(ENTITY_ID_PATTERN, 'lowercase letters, digits and dashes, at most 63') })
  .passthrough();
/** PATCH takes any subset of the definition; the merged result is validated whole. */
export const serviceDefinitionPatchSchema = z.record(z.unknown());
export const stopServiceSchema = z
  .object({
    drainTimeoutSeconds: z
      .number()
      .min(0)
      .max(24 * 3600)
      .optional(),
  })
  .strict();

/** A service as the API answers it: definition, enabled flag and the live state of its pool. */
function present(service: ServiceRecord, view: PoolView | undefined) {
  return {
    name: service.name,
    enabled: service.enabled,
    definition: service.definition,
    createdAt: service.createdAt,
    updatedAt: service.updatedAt,
    phase: view?.phase ?? 'unknown',
    containers: (view?.nodes ?? []).map((n) => ({
      nodeId: n.id,
      state: n.state,
      url: n.url ?? null,
      busySlots: n.busySlots,
      local: n.lane?.provider === DOCKER_PROVIDER,
    })),
    queued: view?.queued ?? 0,
    running: view?.running ?? 0,
  };
}

export function serviceRoutes(ctx: ApiContext & { providers: string[]; docker?: Pick<VramFactsSource, 'imageProblem'> }): Router {
  const router = Router();

  function requireDocker(): void {
    if (!ctx.providers.includes(DOCKER_PROVIDER)) {
      // A 4xx: the server is healthy, it just does not run local services (nothing to retry).
      throw new ApiError(
        409,
        'docker_disabled',
        'the docker provider is not enabled on this server (DOCKER_ENABLED, and a reachable Docker engine)',
      );
    }
  }

  async function requireService(res: Parameters<typeof principalOf>[0], name: string) {
    const workspaceId = principalOf(res).workspaceId;
    const service = ENTITY_ID_PATTERN.test(name) ? await getService(ctx.db, workspaceId, name) : undefined;
    if (!service) throw new ApiError(404, 'not_found', `service ${name} does not exist`);
    return { service, key: poolKey(workspaceId, name), handle: ctx.client.workflow.getHandle(poolWorkflowId(poolKey(workspaceId, name))) };
  }

  /** Adopting reaches a container zeropool did not make (any on the host): only the admin may name one. */
  function checkAdoption(res: Parameters<typeof principalOf>[0], definition: ServiceDefinition): void {
    if (definition.adoptContainer && !principalOf(res).admin) {
      throw new ApiError(
        403,
        'forbidden',
        'adoptContainer needs the admin key: it hands an existing container on the host to this service',
      );
    }
    if (definition.runAsRoot && !principalOf(res).admin)
      throw new ApiError(403, 'forbidden', 'runAsRoot needs the admin key: a tenant’s image runs as an unprivileged user');
  }

  /** The image must be on the engine (an adopted container brings its own). */
  async function checkImage(definition: ServiceDefinition): Promise<void> {
    if (definition.adoptContainer || !ctx.docker) return;
    const problem = await ctx.docker.imageProblem(definition.image, definition.command);
    if (problem) throw new ApiError(400, 'image_not_found', problem, [{ path: 'image', message: problem }]);
  }

  /** The caller's workspace row carries its quotas (it exists: the caller's key belongs to it). */
  const workspaceQuotas = async (workspaceId: string) => (await getWorkspace(ctx.db, workspaceId))!;

  const liveView = (key: PoolKey) => queryWithRetry(ctx.client.workflow.getHandle(poolWorkflowId(key)), poolStateQuery);

  router.post('/', async (req, res) => {
    requireDocker();
    const { name, ...rest } = createServiceSchema.parse(req.body);
    const definition = serviceDefinitionSchema.parse(rest);
    checkAdoption(res, definition);
    await checkImage(definition);
    const workspaceId = principalOf(res).workspaceId;
    const config = servicePoolConfig(name, definition, { preemptPriorityGap: ctx.defaultPreemptPriorityGap });
    const priorityRefusal = servicePriorityRefusal(await workspaceQuotas(workspaceId), definition.priority);
    if (priorityRefusal) throw new ApiError(403, 'quota_exceeded', priorityRefusal);
    if (await getService(ctx.db, workspaceId, name)) throw new ApiError(409, 'conflict', `service ${name} already exists`);
    // The pool and the service in one transaction that takes the workspace's quota (pools, nodes, VRAM) under a lock.
    const inserted = await insertPoolWithinQuota(ctx.db, workspaceId, name, config, definition);
    if (inserted === 'exists') throw new ApiError(409, 'conflict', `a pool or service named ${name} already exists`);
    if (inserted !== 'inserted') throw new ApiError(403, 'quota_exceeded', inserted.refused);
    await ensurePoolWorkflow(ctx, poolKey(workspaceId, name), config);
    const service = (await getService(ctx.db, workspaceId, name))!;
    res.status(201).location(`/v1/services/${name}`).json(present(service, undefined));
  });

  router.get('/', async (_req, res) => {
    const workspaceId = principalOf(res).workspaceId;
    const services = await listServices(ctx.db, workspaceId);
    const views = await Promise.all(services.map((s) => liveView(poolKey(workspaceId, s.name)).catch(() => undefined)));
    res.json({ services: services.map((s, i) => present(s, views[i])) });
  });

  router.get('/:name', async (req, res) => {
    const { service, key } = await requireService(res, req.params.name);
    res.json(present(service, await liveView(key).catch(() => undefined)));
  });

  router.patch('/:name', async (req, res) => {
    const { service, handle } = await requireService(res, req.params.name);
    const patch = serviceDefinitionPatchSchema.parse(req.body);
    const merged = serviceDefinitionSchema.safeParse({ ...service.definition, ...patch });
    if (!merged.success)
      throw new ApiError(400, 'invalid_request', merged.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    checkAdoption(res, merged.data);
    if (
      merged.data.image !== service.definition.image ||
      JSON.stringify(merged.data.command) !== JSON.stringify(service.definition.command)
    )
      await checkImage(merged.data);
    const priorityRefusal = servicePriorityRefusal(await workspaceQuotas(service.workspaceId), merged.data.priority);
    if (priorityRefusal) throw new ApiError(403, 'quota_exceeded', priorityRefusal);
    // Merged onto the definition as stored under the workspace's lock (a racing PATCH's change is kept), counted
    // against the node and VRAM quotas there, and written only once the pool's workflow took it.
    const outcome = await resizeWithinQuota(
      ctx.db,
      service.workspaceId,
      service.name,
      (current) => {
        const fresh = serviceDefinitionSchema.safeParse({ ...(current.service ?? service.definition), ...patch });
        if (!fresh.success)
          throw new ApiError(400, 'invalid_request', fresh.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
        checkAdoption(res, fresh.data);
        return {
          service: fresh.data,
          config: servicePoolConfig(service.name, fresh.data, { preemptPriorityGap: ctx.defaultPreemptPriorityGap }),
        };
      },
      async (next) => {
        try {
          await handle.executeUpdate(updatePoolConfigUpdate, { args: [next.config] });
        } catch (err) {
          throw new ApiError(409, 'conflict', String((err as { cause?: Error }).cause?.message ?? (err as Error).message));
        }
      },
    );
    if (outcome === 'missing') throw new ApiError(404, 'not_found', `service ${service.name} does not exist`);
    if ('refused' in outcome) throw new ApiError(403, 'quota_exceeded', outcome.refused);
    // Running containers keep the definition they were made from until a restart.
    res.json(
      present((await getService(ctx.db, service.workspaceId, service.name))!, await liveView(poolKey(service.workspaceId, service.name))),
    );
  });

  router.delete('/:name', async (req, res) => {
    const { service, key, handle } = await requireService(res, req.params.name);
    const view = await liveView(key).catch(() => undefined);
    if (view && (view.nodes.length > 0 || view.queued > 0 || view.running > 0)) {
      throw new ApiError(
        409,
        'conflict',
        `service ${service.name} still has ${view.nodes.length} container(s) and ${view.queued + view.running} job(s): disable it and wait until it is drained`,
      );
    }
    await deleteServiceAndPool(ctx.db, service.workspaceId, service.name);
    await handle.terminate('service deleted').catch((err) => {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    });
    res.status(204).end();
  });

  router.post('/:name/start', async (req, res) => {
    requireDocker();
    const { service, handle } = await requireService(res, req.params.name);
    if (!service.enabled) throw new ApiError(409, 'conflict', `service ${service.name} is disabled: enable it first`);
    res.json(present(service, await handle.executeUpdate(warmPoolUpdate, { args: [{ nodes: 1 }] })));
  });

  const stopAction = (path: 'stop' | 'restart') =>
    router.post(`/:name/${path}`, async (req, res) => {
      const { service, handle } = await requireService(res, req.params.name);
      const body = stopServiceSchema.parse(req.body ?? {});
      const drainTimeoutSeconds = body.drainTimeoutSeconds ?? service.definition.drainTimeoutSeconds;
      if (path === 'restart' && !service.enabled)
        throw new ApiError(409, 'conflict', `service ${service.name} is disabled: enable it first`);
      const view = await handle.executeUpdate(stopPoolUpdate, {
        args: [{ drainTimeoutSeconds, then: path === 'restart' ? 'warm' : 'idle' }],
      });
      res.status(202).json(present(service, view));
    });
  stopAction('stop');
  stopAction('restart');

  router.post('/:name/disable', async (req, res) => {
    const { service, handle } = await requireService(res, req.params.name);
    // Refused from now on at the API; what is queued and running finishes, then the containers go.
    await setServiceEnabled(ctx.db, service.workspaceId, service.name, false);
    await setPoolDraining(ctx.db, service.workspaceId, service.name, true);
    const view = await handle.executeUpdate(drainPoolUpdate);
    res.json(present({ ...service, enabled: false }, view));
  });

  router.post('/:name/enable', async (req, res) => {
    const { service, handle } = await requireService(res, req.params.name);
    await setServiceEnabled(ctx.db, service.workspaceId, service.name, true);
    await setPoolDraining(ctx.db, service.workspaceId, service.name, false);
    const view = await handle.executeUpdate(resumePoolUpdate);
    res.json(present({ ...service, enabled: true }, view));
  });

  return router;
}
