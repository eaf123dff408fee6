/** Starting and reaching pool workflows from the API side. */
import { WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter, WorkflowIdConflictPolicy, type QueryDefinition } from '@temporalio/common';
import type { BootProgress } from '../domain/pool-protocol';
import type { PoolConfig } from '../domain/types';
import { poolKey as poolSearchKey } from '../domain/search-attributes';
import { POOL_WORKFLOW_TYPE, type PoolKey, poolWorkflowId, splitPoolKey, workspacePriority } from '../ids';
import type { poolEntityWorkflow } from '../workflows/pool';
import { poolStateQuery } from '../workflows/messages';
import type { PoolView } from '../domain/types';
import type { ApiContext } from './context';
import { ApiError } from './errors';
import { queryWithRetry } from './query';

/** Starts the pool's workflow (by pool key), or leaves the running one alone. */
export async function ensurePoolWorkflow(
  ctx: Pick<ApiContext, 'client' | 'taskQueue' | 'indexed'>,
  key: PoolKey,
  config: PoolConfig,
): Promise<void> {
  await ctx.client.workflow.start<typeof poolEntityWorkflow>(POOL_WORKFLOW_TYPE, {
    workflowId: poolWorkflowId(key),
    taskQueue: ctx.taskQueue,
    args: [{ poolId: key, config }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: ctx.indexed ? [{ key: poolSearchKey, value: key }] : undefined,
    priority: workspacePriority(splitPoolKey(key).workspaceId),
  });
}

/**
 * Asks a pool's workflow a query. A pool whose workflow cannot answer (no worker, a failing workflow task,
 * no workflow at all) is a 503 that says which, never a bare 500: the pool's record is fine, its engine is not.
 */
export async function queryPool<T>(ctx: Pick<ApiContext, 'client'>, key: PoolKey, name: string, query: QueryDefinition<T>): Promise<T> {
  let answer: T | undefined;
  try {
    answer = await queryWithRetry(ctx.client.workflow.getHandle(poolWorkflowId(key)), query);
  } catch (err) {
    const reason =
      err instanceof WorkflowNotFoundError ? 'its workflow is not running' : `its workflow is unhealthy: ${(err as Error).message}`;
    throw new ApiError(503, 'pool_unavailable', `pool ${name} cannot answer now (${reason})`, null, { 'Retry-After': '5' });
  }
  if (answer === undefined) {
    throw new ApiError(503, 'pool_unavailable', `pool ${name} did not answer in time: is a worker running?`, null, { 'Retry-After': '5' });
  }
  return answer;
}

/** A pool's live view (see queryPool). */
export function poolView(ctx: Pick<ApiContext, 'client'>, key: PoolKey, name: string): Promise<PoolView> {
  return queryPool(ctx, key, name, poolStateQuery);
}

/**
 * What each booting node's provider says now (`pod STARTING`, `VM BUILD`, `model server not answering`), from
 * the heartbeats of the pool's pending boot waits: they live on the server, not in the pool's state. Empty
 * when the server cannot say; never fails the view.
 */
export async function bootProgress(ctx: Pick<ApiContext, 'client'>, key: PoolKey): Promise<Record<string, string>> {
  try {
    const described = await ctx.client.workflow.getHandle(poolWorkflowId(key)).describe();
    const out: Record<string, string> = {};
    for (const pending of described.raw.pendingActivities ?? []) {
      const payload = pending.activityType?.name === 'waitNodeReady' ? pending.heartbeatDetails?.payloads?.[0] : undefined;
      if (!payload) continue;
      const beat = defaultPayloadConverter.fromPayload<BootProgress>(payload as Parameters<typeof defaultPayloadConverter.fromPayload>[0]);
      if (beat?.nodeId && beat.reason) out[beat.nodeId] = beat.reason;
    }
    return out;
  } catch {
    return {};
  }
}
