/** Workflow queries from the API: bounded in time and retried, since a query is read-only. */
import type { WorkflowHandle } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';

/** Resolves to undefined if the promise has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Queries a workflow, giving each try `timeoutMs`. A query sent as a run continues-as-new can be dropped
 * with the closing run (the SDK evicts it with the query still buffered), and the next try reaches the
 * new run. Undefined when no try answered; errors other than timeouts are thrown at once.
 */
export async function queryWithRetry<T>(
  handle: WorkflowHandle,
  query: QueryDefinition<T>,
  tries = 3,
  timeoutMs = 2000,
): Promise<T | undefined> {
  for (let i = 0; i < tries; i++) {
    const answer = await withTimeout(handle.query(query), timeoutMs);
    if (answer !== undefined) return answer;
  }
  return undefined;
}
