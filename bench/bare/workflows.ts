/**
 * The bare-Temporal baseline of `npm run bench`: one workflow that runs one activity, nothing else. What a job
 * costs beyond this (the pool, the ledger, the API) is zeropool's own overhead.
 */
import { proxyActivities } from '@temporalio/workflow';

const { bareActivity } = proxyActivities<{ bareActivity(): Promise<void> }>({ startToCloseTimeout: '10 seconds' });

export async function bareWorkflow(): Promise<void> {
  await bareActivity();
}
