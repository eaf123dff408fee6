/** ntfy notifications for job events (off unless NTFY_URL and NTFY_TOPIC are set). */
import { ApplicationFailure } from '@temporalio/activity';
import type { Logger } from 'pino';
import { splitPoolKey, type PoolKey } from '../ids';

/** Job events that are notified. */
export type JobEvent = 'completed' | 'failed' | 'expired' | 'preempted' | 'resumed';

/** Where notifications go. */
export interface NtfySettings {
  /** Server base URL, e.g. https://ntfy.sh */
  url: string;
  topic: string;
  /** Access token for a protected topic. */
  token?: string;
  /** Each workspace's own topic (src/domain/notify-topic.ts); absent: every event goes to `topic`. */
  topicOf?: (workspaceId: string) => string;
}

/** One notification to send. */
export interface JobEventNotice {
  event: JobEvent;
  jobId: string;
  poolId: PoolKey;
  priority: number;
  attempt: number;
  detail?: string;
}

// ntfy priorities: 1 min … 5 max. A failure deserves a louder ping than a success.
const NTFY_PRIORITY: Record<JobEvent, string> = { completed: '3', failed: '4', expired: '4', preempted: '3', resumed: '2' };
const NTFY_TAGS: Record<JobEvent, string> = {
  completed: 'white_check_mark',
  failed: 'x',
  expired: 'hourglass',
  preempted: 'pause_button',
  resumed: 'arrow_forward',
};

/** The ntfy publish request for a notice: POST <url>/<topic>, message in the body, metadata in headers. */
export function ntfyRequest(settings: NtfySettings, notice: JobEventNotice): { url: string; init: RequestInit } {
  const { workspaceId, poolName } = splitPoolKey(notice.poolId);
  const headers: Record<string, string> = {
    Title: `zeropool job ${notice.event}`,
    Priority: NTFY_PRIORITY[notice.event],
    Tags: `${NTFY_TAGS[notice.event]},zeropool,${poolName}`,
  };
  if (settings.token) headers.Authorization = `Bearer ${settings.token}`;
  const lines = [
    `Job ${notice.jobId} ${notice.event} in pool ${poolName} (workspace ${workspaceId}, priority ${notice.priority}, attempt ${notice.attempt}).`,
  ];
  if (notice.detail) lines.push(notice.detail.slice(0, 1000));
  return {
    url: `${settings.url.replace(/\/+$/, '')}/${encodeURIComponent(settings.topicOf?.(workspaceId) ?? settings.topic)}`,
    init: { method: 'POST', headers, body: lines.join('\n') },
  };
}

/** Builds the notification activity. */
export function createNotifyActivities(settings: NtfySettings | undefined, logger: Logger) {
  return {
    /** Publishes one job event to ntfy; does nothing when ntfy is not configured on this worker. */
    async notifyJobEvent(notice: JobEventNotice): Promise<void> {
      if (!settings) {
        logger.debug({ jobId: notice.jobId, event: notice.event }, 'ntfy not configured; notification skipped');
        return;
      }
      const { url, init } = ntfyRequest(settings, notice);
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(8000) });
      if (!response.ok) {
        const message = `ntfy answered ${response.status}`;
        // A wrong token or topic will not fix itself on retry.
        if (response.status >= 400 && response.status < 500 && response.status !== 429)
          throw ApplicationFailure.nonRetryable(message, 'NotifyRefused');
        throw ApplicationFailure.retryable(message, 'NotifyUnavailable');
      }
    },
  };
}
