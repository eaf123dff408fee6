/** All activities, built from their dependencies so tests can pass real ones pointed at test servers. */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { LedgerEvent } from '../db/ledger';
import { createCallbackActivities } from './callbacks/deliver';
import { parseAllowList } from '../domain/callback-target';
import { createInferenceActivities } from './inference';
import { createNodeActivities } from './nodes';
import { createNotifyActivities, type NtfySettings } from './notify';
import { createRecordActivities } from './records';
import type { NodeSecrets } from '../secrets/node-secrets';
import type { Provider } from './providers/provider';

/** What the activities need from the outside world. */
export interface ActivityDeps {
  db: Pool;
  providers: Record<string, Provider>;
  logger: Logger;
  healthPollMs?: number;
  /** How often a booting node's model server is probed directly (see waitNodeReady). */
  readyProbeMs?: number;
  /** Test seam: called after each ledger insert; throwing there proves a retried write adds no second row. */
  afterLedgerWrite?: (event: LedgerEvent) => void;
  /** ntfy target; notifications are skipped without one. */
  ntfy?: NtfySettings;
  /** Private or loopback callback targets that are allowed (host names, addresses, CIDR ranges). */
  callbackAllowList?: string[];
  /** Ports a public callback target may use besides 80 and 443. */
  callbackAllowedPorts?: number[];
  /** Where nodes reach the API (ZEROPOOL_PUBLIC_URL): handed to them with the job's progress token. */
  apiBaseUrl?: string;
  /** Each node's bearer secret, sent with every inference call; its key also marks the ledger rows written. */
  nodeSecrets: NodeSecrets;
}

/** Returns every activity implementation, keyed by name. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createNodeActivities({
      providers: deps.providers,
      logger: deps.logger,
      healthPollMs: deps.healthPollMs,
      readyProbeMs: deps.readyProbeMs,
      secrets: deps.nodeSecrets,
      ledger: { db: deps.db, marks: deps.nodeSecrets },
    }),
    ...createInferenceActivities({ apiBaseUrl: deps.apiBaseUrl, secrets: deps.nodeSecrets }),
    ...createRecordActivities(deps.db, deps.nodeSecrets, deps.afterLedgerWrite),
    ...createNotifyActivities(deps.ntfy, deps.logger),
    ...createCallbackActivities({
      db: deps.db,
      allowList: parseAllowList(deps.callbackAllowList ?? [], deps.callbackAllowedPorts),
      logger: deps.logger,
    }),
  };
}

/** The activity interface workflows proxy (import it as a type only). */
export type Activities = ReturnType<typeof createActivities>;
