/** What route handlers need: the Temporal client, PostgreSQL and settings. */
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';

/** Dependencies shared by the routes. */
export interface ApiContext {
  client: Client;
  db: Pool;
  taskQueue: string;
  /** Whether the ZeropoolPool/ZeropoolStatus search attributes are registered. */
  indexed: boolean;
  defaultTtlSeconds: number;
  defaultMaxAttempts: number;
}
