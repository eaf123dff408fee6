/** Start-up of the local half: the GPU probe and, when a Docker engine answers, the docker provider. */
import Docker from 'dockerode';
import { type Client, WorkflowUpdateFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { DockerProvider, type PoolControl } from '../activities/providers/docker';
import { loadNodeSecretKey, nodeSecrets } from '../secrets/node-secrets';
import type { LocalGpus } from '../local-gpus/report';
import type { Config } from '../config';
import { GpuProbe } from '../local-gpus/probe';
import { poolWorkflowId } from '../ids';
import { logger } from '../logger';
import { poolStateQuery, stopPoolUpdate } from '../workflows/messages';

/** The local half as started: the API sees it as `LocalGpus`; the worker also drives its docker provider. */
export interface LocalGpuServices extends LocalGpus {
  docker?: DockerProvider;
}

/** Other pools, reached through Temporal: is one idle, stop one (to make room on a GPU). */
export function temporalPoolControl(client: Client): PoolControl {
  return {
    async isIdle(poolKey) {
      const view = await client.workflow.getHandle(poolWorkflowId(poolKey)).query(poolStateQuery);
      return view.queued === 0 && view.running === 0;
    },
    async stopIfIdle(poolKey) {
      try {
        await client.workflow
          .getHandle(poolWorkflowId(poolKey))
          .executeUpdate(stopPoolUpdate, { args: [{ drainTimeoutSeconds: 0, then: 'idle', onlyIfIdle: true }] });
        return true;
      } catch (err) {
        // The pool refused: work arrived between the look and the stop.
        if (err instanceof WorkflowUpdateFailedError && (err.cause as ApplicationFailure | undefined)?.type === 'PoolBusy') return false;
        throw err;
      }
    },
  };
}

/** The probe always; the docker provider when DOCKER_ENABLED allows and the engine answers (required when `true`). */
export async function createLocalGpus(config: Config, db: Pool, client: Client): Promise<LocalGpuServices> {
  const probe = new GpuProbe({ nvidiaSmiPath: config.NVIDIA_SMI_PATH });
  const reserveMiB = config.VRAM_RESERVE_MB;
  if (config.DOCKER_ENABLED === 'false') return { probe, reserveMiB };
  const docker = new Docker(config.DOCKER_SOCKET_PATH ? { socketPath: config.DOCKER_SOCKET_PATH } : undefined);
  try {
    await docker.ping();
  } catch (err) {
    if (config.DOCKER_ENABLED === 'true')
      throw new Error(`DOCKER_ENABLED=true but the Docker engine does not answer: ${(err as Error).message}`);
    logger.info('no Docker engine answers: the docker provider (local GPU services) is off');
    return { probe, reserveMiB };
  }
  const provider = new DockerProvider({
    docker,
    db,
    gpus: probe,
    logger,
    reserveMiB,
    network: config.DOCKER_NETWORK,
    isolatedNetwork: config.DOCKER_ISOLATED_NETWORK,
    secrets: nodeSecrets(loadNodeSecretKey(config.ZEROPOOL_NODE_SECRET_KEY, config.dataDir)),
    gpuDeviceRequests: config.DOCKER_GPU_DEVICE_REQUESTS,
    pools: temporalPoolControl(client),
  });
  return { probe, docker: provider, reserveMiB };
}
