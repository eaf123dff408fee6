/** Activity options more than one workflow uses: one definition, so they cannot drift apart. */
import type { ActivityOptions } from '@temporalio/workflow';

/** Ledger rows and job records: retried until the database answers. */
export const BOOKKEEPING_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '30 seconds' },
};

/** Notifications are best effort: a few tries within a minute, never holding anything up for long. */
export const NOTIFICATION_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 4 },
};
