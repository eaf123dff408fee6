/**
 * The job workflow: one per job. It asks its pool for a slot, waits with its TTL as deadline, runs the request as
 * a heartbeating activity, gives the slot back, and ends in exactly one terminal state; it retries failed
 * attempts with backoff, obeys preemption (stops, keeps its progress, queues again and resumes from the
 * snapshot), and hands its callback and notification to a child that outlives it. Every rule is the job
 * machine's (src/domain/job-machine.ts); this runs it (job-interpreter.ts).
 */
import { workflowInfo } from '@temporalio/workflow';
import { newJobMachine } from '../domain/job-machine';
import type { JobInput, JobView } from '../domain/types';
import { interpretJob } from './job-interpreter';
import { legacyJobWorkflow } from './job-legacy';

/** The job workflow. Returns the job's final view. */
export async function jobWorkflow(input: JobInput): Promise<JobView> {
  // Runs started before the job machine (no `machine` in their input) replay through the body they ran.
  if (!input.machine) return legacyJobWorkflow(input);
  // The TTL runs on the workflow clock from the job's start, not the API's: retries and preemption never restart it.
  const state = newJobMachine(input, workflowInfo().startTime.getTime());
  return interpretJob({
    kind: 'job',
    input,
    state,
    arrivalSignalled: input.arrivalSignalled ?? false,
    outcomeGivesSlotBack: input.machine === 2,
  });
}
