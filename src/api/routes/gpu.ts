/** GET /v1/gpu, /v1/vram and /v1/available/:pool: the host's GPUs, their VRAM, and where a job would run now. */
import { Router } from 'express';
import { grantedPriorities } from '../../db/quotas';
import { getServiceByPoolKey } from '../../db/services';
import { getPool } from '../../db/store';
import { DOCKER_PROVIDER, serviceVramMiB, serviceVramRequest } from '../../domain/service';
import { planVramAdmission } from '../../domain/vram';
import { temporalPoolControl } from '../../stack/local-gpus';
import { availableLanes } from '../../domain/scaling';
import { ENTITY_ID_PATTERN, type PoolKey, poolKey, splitPoolKey } from '../../ids';
import { principalOf } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';
import { type LocalGpus, vramReport } from '../../local-gpus/report';
import { poolView } from '../pool-workflows';

/** Where a job for a pool would run if it were submitted now. */
export type Availability = 'use_local' | 'use_cloud' | 'queue';

export function gpuRoutes(ctx: ApiContext & { local: LocalGpus }): Router {
  const router = Router();

  router.get('/gpu', async (_req, res) => {
    const { rawProcesses: _raw, ...report } = await ctx.local.probe.probe();
    if (principalOf(res).admin) return void res.json(report);
    // The host's GPU processes belong to every workspace (and to the host): a workspace sees only how many
    // there are and what they hold, not their pids or names.
    res.json({
      ...report,
      gpus: report.gpus.map(({ processes, ...gpu }) => ({
        ...gpu,
        processes: [],
        otherProcesses: { count: processes.length, usedMemoryMiB: processes.reduce((sum, p) => sum + (p.usedMemoryMiB ?? 0), 0) },
      })),
    });
  });

  router.get('/vram', async (_req, res) => {
    const principal = principalOf(res);
    const report = await vramReport(ctx.local);
    // VRAM is the host's, shared by every workspace; other workspaces' services are shown only as a sum.
    const mine = report.allocations.filter((a) => principal.admin || splitPoolKey(a.poolKey).workspaceId === principal.workspaceId);
    const others = report.allocations.filter((a) => !mine.includes(a));
    res.json({
      ...report,
      allocations: mine.map((a) => ({
        service: principal.admin ? a.poolKey : splitPoolKey(a.poolKey).poolName,
        nodeId: a.nodeId,
        gpu: a.gpuIndex,
        declaredMiB: a.declaredMiB,
        actualMiB: a.actualMiB,
        priority: a.priority,
      })),
      otherWorkspacesMiB: others.reduce((sum, a) => sum + a.declaredMiB, 0),
    });
  });

  const pools = temporalPoolControl(ctx.client);

  router.get('/available/:pool', async (req, res) => {
    const workspaceId = principalOf(res).workspaceId;
    // Other workspaces' services are named only as "another workspace's service".
    const nameOf = (key: PoolKey) =>
      splitPoolKey(key).workspaceId === workspaceId ? splitPoolKey(key).poolName : "another workspace's service";
    const name = req.params.pool;
    const pool = ENTITY_ID_PATTERN.test(name) ? await getPool(ctx.db, workspaceId, name) : undefined;
    if (!pool) throw new ApiError(404, 'not_found', `pool ${name} does not exist`);
    const key = poolKey(workspaceId, pool.id);
    const view = await poolView(ctx, key, name);
    const reasons: string[] = [];
    const answer = (decision: Availability, extra: Record<string, unknown> = {}) => res.json({ pool: name, decision, reasons, ...extra });

    if (view.draining || pool.draining) {
      reasons.push('the pool is draining or disabled: it takes no new jobs');
      return answer('queue');
    }
    if (view.phase === 'stopping') reasons.push('the pool is stopping: a new job waits until the stop is done, then starts it again');
    const freeOn = view.nodes.filter((n) => n.state === 'ready' && n.busySlots < view.config.slotsPerNode);
    const freeLocal = freeOn.find((n) => n.lane?.provider === DOCKER_PROVIDER);
    if (freeLocal && view.phase !== 'stopping') {
      reasons.push(`local container ${freeLocal.id} is ready with a free slot`);
      return answer('use_local');
    }
    const freeCloud = freeOn.find((n) => n.lane && n.lane.provider !== DOCKER_PROVIDER);
    if (freeCloud && view.phase !== 'stopping') {
      reasons.push(`${freeCloud.lane!.provider} node ${freeCloud.id} is ready with a free slot`);
      return answer('use_cloud');
    }
    const active = view.nodes.filter((n) => n.state !== 'terminating').length;
    if (active >= view.config.maxNodes) {
      reasons.push(`every slot is busy and the pool is at maxNodes (${view.config.maxNodes})`);
      return answer('queue');
    }
    const open = availableLanes(view.config, view.laneCooldownUntil, Date.now()).map((i) => ({ index: i, lane: view.config.lanes[i]! }));
    const local = open.find((l) => l.lane.provider === DOCKER_PROVIDER);
    if (local) {
      const service = await getServiceByPoolKey(ctx.db, key);
      const vramMiB = service ? serviceVramMiB(service.definition) : 0;
      if (!service) reasons.push('no registered service for this pool: the docker lane cannot start a container');
      else if (!ctx.local.docker) reasons.push('the docker provider is not enabled on this server');
      else if (vramMiB === 0) {
        reasons.push('the service needs no GPU: a container can start now');
        return answer('use_local');
      } else {
        const facts = await ctx.local.docker.vramFacts();
        if (facts.gpus === null) reasons.push(`no local GPU (${facts.reason ?? 'unknown'})`);
        else {
          const plan = await planVramAdmission(
            facts.gpus,
            facts.allocations,
            ctx.local.reserveMiB,
            serviceVramRequest(service.definition, key),
            (k) => pools.isIdle(k),
            await grantedPriorities(
              ctx.db,
              [key, ...facts.allocations.map((a) => a.poolKey)].map((k) => splitPoolKey(k).workspaceId),
            ),
          );
          if (plan.fits) {
            reasons.push(`fits on GPU ${plan.gpuIndexes.join(', ')}: needs ${plan.perGpuMiB} MiB per GPU`);
            return answer('use_local', { gpus: plan.gpuIndexes });
          }
          reasons.push(`local GPUs have no room: ${plan.reason}`);
          // The provider would stop idle services of lower priority to make room: say so rather than "queue".
          if (plan.stopForRoom.length > 0) {
            reasons.push(`stopping idle lower-priority service(s) ${plan.stopForRoom.map(nameOf).join(', ')} makes room`);
            return answer('use_local');
          }
        }
      }
    } else if (view.config.lanes.some((l) => l.provider === DOCKER_PROVIDER)) {
      reasons.push('the local lane is cooling down after a shortage');
    }
    const cloud = open.find((l) => l.lane.provider !== DOCKER_PROVIDER);
    if (cloud) {
      reasons.push(`lane ${cloud.index} (${cloud.lane.provider} ${cloud.lane.market} ${cloud.lane.gpu}) can add a node`);
      return answer('use_cloud', { lane: cloud.index });
    }
    reasons.push('no lane can add capacity now: the job would wait in the queue');
    return answer('queue');
  });

  return router;
}
