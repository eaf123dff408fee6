/**
 * Delivers a finished job's callback and terminal notification. A child of the job that outlives it
 * (parent-close policy ABANDON): the callback is retried with backoff for up to a day.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { BOOKKEEPING_ACTIVITY, NOTIFICATION_ACTIVITY } from './activity-options';
import { basePriority } from '../domain/placement';
import type { JobView } from '../domain/types';

/** Input of the delivery workflow. */
export interface JobDeliveryInput {
  view: JobView;
  callbackUrl?: string;
  notify: boolean;
}

const callbacks = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  // 5 s, 10 s, 20 s … then every 15 minutes, for a day: a receiver down for hours still gets the call.
  scheduleToCloseTimeout: '24 hours',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '15 minutes',
    nonRetryableErrorTypes: ['CallbackRefused'],
  },
});
const bookkeeping = proxyActivities<Activities>(BOOKKEEPING_ACTIVITY);
const notifications = proxyActivities<Activities>(NOTIFICATION_ACTIVITY);

/** Notified terminal states (a cancel was asked for by the user, who needs no telling). */
const NOTIFIED = ['completed', 'failed', 'expired'];

/** The delivery workflow. */
export async function jobDeliveryWorkflow(input: JobDeliveryInput): Promise<void> {
  const { view } = input;
  const work: Promise<void>[] = [];
  if (input.notify && NOTIFIED.includes(view.status)) {
    const event = view.status as 'completed' | 'failed' | 'expired';
    work.push(
      notifications
        .notifyJobEvent({
          event,
          jobId: view.id,
          poolId: view.pool,
          priority: basePriority(view),
          attempt: view.attempt,
          detail: view.error,
        })
        .catch((err) => log.warn('notification failed', { jobId: view.id, error: String(err) })),
    );
  }
  if (input.callbackUrl) {
    const url = input.callbackUrl;
    work.push(
      callbacks.deliverCallback({ view, url }).catch(async (err) => {
        const cause = (err as { cause?: Error }).cause ?? err;
        log.warn('callback given up', { jobId: view.id, error: String(cause) });
        await bookkeeping.recordCallbackGivenUp({ jobId: view.id, url, error: (cause as Error).message ?? String(cause) });
      }),
    );
  }
  await Promise.all(work);
}
