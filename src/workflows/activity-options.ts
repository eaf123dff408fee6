/** Activity options more than one workflow uses: one definition, so they cannot drift apart. */
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';

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

/**
 * Provider calls (provision, terminate): seconds each; a short timeout lets a crashed worker's call be retried
 * soon. After these retries the pool decides what follows (next lane, or a terminate retried with backoff).
 */
export const PROVIDER_CALL_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 5 },
};

/** Waiting for a node to boot: minutes, heartbeating, so a dead worker's wait is noticed within seconds. */
export const BOOT_WAIT_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
};

/** A wake from sleep: the model server reloads its weights (seconds; a large model a minute or two); one retry. */
export const WAKE_FROM_SLEEP_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '3 minutes',
  retry: { initialInterval: '1 second', maximumAttempts: 2 },
};

/** A job's attempt at its node: heartbeating, stopped by a preemption or a cancel, never retried here. */
export const INFERENCE_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  // A preempted or cancelled request must have ended at the node before the slot is given to anyone else.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  // The job retries through its pool (a new placement, after a backoff), never blindly on the same node.
  retry: { maximumAttempts: 1 },
};
