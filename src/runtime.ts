/** Connects the pieces a zeropool process needs: PostgreSQL, Temporal, search attributes. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pg from 'pg';
import { migrate } from './db/schema';
import { listPools } from './db/store';
import { logger } from './logger';
import { ensurePoolWorkflow } from './api/pool-workflows';

/** Opens a PostgreSQL pool and applies the schema. */
export async function openDatabase(url: string): Promise<pg.Pool> {
  const db = new pg.Pool({ connectionString: url, max: 20 });
  // An idle connection closed by the server (restart, shutdown) must not crash the process.
  db.on('error', (err) => logger.warn({ err: err.message }, 'idle PostgreSQL connection closed'));
  await migrate(db);
  return db;
}

/** Whether the custom search attributes exist on the server (they are needed to index jobs). */
export async function searchAttributesRegistered(connection: Connection, namespace: string): Promise<boolean> {
  try {
    const result = await connection.operatorService.listSearchAttributes({ namespace });
    const custom = result.customAttributes ?? {};
    return 'ZeropoolPool' in custom && 'ZeropoolStatus' in custom;
  } catch {
    return false;
  }
}

/** A client plus the native connection workers use. */
export interface TemporalHandles {
  connection: Connection;
  nativeConnection: NativeConnection;
  client: Client;
  indexed: boolean;
}

/** Connects to Temporal at `address`. */
export async function connectTemporal(address: string, namespace: string): Promise<TemporalHandles> {
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const client = new Client({ connection, namespace });
  const indexed = await searchAttributesRegistered(connection, namespace);
  if (!indexed) logger.warn('search attributes ZeropoolPool/ZeropoolStatus are not registered: jobs will not be indexed in the Web UI');
  return { connection, nativeConnection, client, indexed };
}

/** Makes sure every stored pool has its workflow running (after a restart, or on a new Temporal server). */
export async function resumePools(db: pg.Pool, temporal: TemporalHandles, taskQueue: string): Promise<number> {
  const pools = await listPools(db);
  for (const pool of pools) await ensurePoolWorkflow({ client: temporal.client, taskQueue, indexed: temporal.indexed }, pool.id, pool.config);
  return pools.length;
}
