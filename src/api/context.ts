/** What route handlers need: the Temporal client, PostgreSQL and settings. */
import type { Client } from '@temporalio/client';
import type { NodeSecrets } from '../secrets/node-secrets';
import type { Pool } from 'pg';
import type { AllowList } from '../domain/callback-target';

/** Dependencies shared by the routes. */
export interface ApiContext {
  client: Client;
  db: Pool;
  taskQueue: string;
  /** Whether zeropool's search attributes (pool, status, workspace, priority) are registered. */
  indexed: boolean;
  defaultTtlSeconds: number;
  defaultMaxAttempts: number;
  /** Private callback targets allowed (CALLBACK_ALLOWED_HOSTS); checked again at delivery. */
  callbackAllowList: AllowList;
  /** ntfy is configured: jobs ask for notifications. */
  notify: boolean;
  /**
   * A client over the same native connection as an in-process worker (embedded mode): job workflows are
   * started eagerly, their first workflow task handed straight to that worker instead of through matching.
   */
  eagerClient?: Client;
  /** Preemption gap of pools created without one (PREEMPT_PRIORITY_GAP). */
  defaultPreemptPriorityGap: number;
  /** Each workspace's notification topic, when ntfy is configured (shown to the admin with the workspace). */
  notifyTopicOf?: (workspaceId: string) => string;
  /** Derives jobs' progress tokens as the workers do (absent: a random token travels in the job's input). */
  nodeSecrets?: NodeSecrets;
}
