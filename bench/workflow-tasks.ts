/**
 * Where a workflow's time goes over a window, read from its history: how many workflow tasks it ran, how long each
 * waited to be picked up (scheduled → started) and how long the worker held it (started → completed), and the
 * signals it took in. The pool workflow is every job's meeting point, so this says whether it is the bottleneck.
 * Reads the current run only (a continue-as-new inside the window splits it).
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const EventType = temporal.api.enums.v1.EventType;

export interface WorkflowTaskStats {
  events: number;
  workflowTasks: number;
  signalsIn: number;
  /** Mean and largest wait from a task's scheduling to a worker picking it up. */
  queueMs: { mean: number; max: number };
  /** Mean and largest time a worker held a task; `busyShare` is their sum over the window. */
  runMs: { mean: number; max: number };
  busyShare: number;
}

export async function workflowTaskStats(client: Client, workflowId: string, fromMs: number, toMs: number): Promise<WorkflowTaskStats> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const at = (e: temporal.api.history.v1.IHistoryEvent) =>
    Number(e.eventTime!.seconds) * 1000 + Math.round((e.eventTime!.nanos ?? 0) / 1e6);
  const events = (history.events ?? []).filter((e) => at(e) >= fromMs && at(e) <= toMs);
  const queue: number[] = [];
  const run: number[] = [];
  let scheduledAt: number | undefined;
  let startedAt: number | undefined;
  for (const e of events) {
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) scheduledAt = at(e);
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
      startedAt = at(e);
      if (scheduledAt !== undefined) queue.push(startedAt - scheduledAt);
    }
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED && startedAt !== undefined) run.push(at(e) - startedAt);
  }
  const mean = (xs: number[]) => (xs.length ? Number((xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1)) : 0);
  return {
    events: events.length,
    workflowTasks: run.length,
    signalsIn: events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED).length,
    queueMs: { mean: mean(queue), max: Math.max(0, ...queue) },
    runMs: { mean: mean(run), max: Math.max(0, ...run) },
    busyShare: Number((run.reduce((a, b) => a + b, 0) / Math.max(1, toMs - fromMs)).toFixed(2)),
  };
}
