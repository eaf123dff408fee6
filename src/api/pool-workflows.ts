/** Starting and reaching pool workflows from the API side. */
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import type { PoolConfig } from '../domain/types';
import { poolKey as poolSearchKey } from '../domain/search-attributes';
import { poolWorkflowId } from '../ids';
import type { poolWorkflowV2 } from '../workflows/pool';
import type { ApiContext } from './context';

/** Starts the pool's workflow (by pool key), or leaves the running one alone. */
export async function ensurePoolWorkflow(ctx: Pick<ApiContext, 'client' | 'taskQueue' | 'indexed'>, key: string, config: PoolConfig): Promise<void> {
  await ctx.client.workflow.start<typeof poolWorkflowV2>('poolWorkflowV2', {
    workflowId: poolWorkflowId(key),
    taskQueue: ctx.taskQueue,
    args: [{ poolId: key, config }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: ctx.indexed ? [{ key: poolSearchKey, value: key }] : undefined,
  });
}
