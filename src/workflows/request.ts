/**
 * A front-door request (OpenAI routes): a job whose attempt runs in the API process. The workflow parks it in
 * its pool and holds its slot, while the API process that took the request runs it against the node and streams
 * the answer itself (tokens never pass through Temporal). The API asks for the slot with an update that
 * resolves once the pool places the request, renews a lease while it runs, and reports the end; the workflow
 * gives the slot back and writes the ledger row. A lease not renewed for REQUEST_LEASE_MS ends it too. The rules
 * are the job machine's (src/domain/job-machine.ts), run by the same interpreter as a job's.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { RequestInput } from '../domain/front-door-protocol';
import { newRequestMachine } from '../domain/job-machine';
import type { JobView } from '../domain/types';
import { interpretJob } from './job-interpreter';
import { legacyRequestWorkflow } from './request-legacy';

export async function requestWorkflow(input: RequestInput): Promise<JobView> {
  if (!input.machine) return legacyRequestWorkflow(input);
  const state = newRequestMachine(input, workflowInfo().startTime.getTime());
  return interpretJob({ kind: 'request', input, state, arrivalSignalled: false });
}
