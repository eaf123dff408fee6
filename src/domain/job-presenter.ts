/** The public shape of a job: the API's answer and the body of its callback. Pure. */
import type { CallbackState } from './callback-target';
import { splitPoolKey } from '../ids';
import { basePriority } from './placement';
import type { JobView } from './types';

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

/** A job as clients see it (snake_case timings, as clients of the earlier gateway expect). */
export function presentJob(view: JobView, callback?: CallbackState | null) {
  return {
    id: view.id,
    pool: splitPoolKey(view.pool).poolName,
    status: view.status,
    priority: basePriority(view),
    attempt: view.attempt,
    failures: view.failures ?? 0,
    preemptions: view.preemptions ?? 0,
    node_id: view.nodeId ?? null,
    submitted_at: new Date(view.submittedAt).toISOString(),
    started_at: iso(view.startedAt),
    finished_at: iso(view.finishedAt),
    retry_at: iso(view.retryAt),
    queue_ms: view.queueMs ?? null,
    cold_start_ms: view.coldStartMs ?? null,
    cold_start_phases: view.coldStartPhases
      ? {
          rung: view.coldStartPhases.rung,
          capacity_ms: view.coldStartPhases.capacityMs,
          provider_ms: view.coldStartPhases.providerMs,
          boot_ms: view.coldStartPhases.bootMs,
        }
      : null,
    run_ms: view.runMs ?? null,
    tokens: view.usage ? { prompt: view.usage.promptTokens, completion: view.usage.completionTokens } : null,
    progress: view.progress
      ? {
          completion_tokens: view.progress.completionTokens,
          source: view.progress.source,
          attempt: view.progress.attempt,
          reported_at: iso(view.progress.at),
        }
      : null,
    result: view.result ?? null,
    error: view.error ?? null,
    ...(callback
      ? {
          callback: {
            url: callback.url,
            state: callback.state,
            attempts: callback.attempts,
            last_status: callback.lastStatus ?? null,
            last_error: callback.lastError ?? null,
            delivered_at: callback.deliveredAt ?? null,
          },
        }
      : {}),
  };
}
