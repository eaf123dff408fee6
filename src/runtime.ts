/** Connects the pieces a zeropool process needs: PostgreSQL, Temporal, search attributes. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import pg from 'pg';
import { parseAllowList } from './domain/callback-target';
import { ensureAppRole, grantAppPrivileges, roleOf } from './db/roles';
import { migrate, SCHEMA_VERSION, schemaVersion } from './db/schema';
import { ALL_SEARCH_ATTRIBUTES } from './domain/search-attributes';
import { listPools } from './db/store';
import type { AppOptions } from './api/app';
import type { ApiContext } from './api/context';
import type { Config } from './config';
import { logger } from './logger';
import { loadNodeSecretKey, nodeSecrets } from './secrets/node-secrets';
import { ensurePoolWorkflow } from './api/pool-workflows';
import { poolKey } from './ids';
import { ntfySettings } from './worker';
import { clientTracingInterceptors, type Tracing } from './tracing';
import { describeTemporalSecurity, type TemporalConnectionOptions, temporalConnectionOptions } from './temporal-connection';
import { payloadDataConverter } from './temporal-codec';

/**
 * Migrates with the owner's login and grants the application role its rows (least privilege: see
 * src/db/roles.ts). Run by `npm start`, by a process given DATABASE_OWNER_URL, or on its own (`npm run migrate`).
 */
export async function migrateAsOwner(ownerUrl: string, appUrl: string): Promise<void> {
  const owner = new pg.Pool({ connectionString: ownerUrl, max: 1 });
  try {
    await migrate(owner);
    const appRole = roleOf(appUrl);
    if (appRole === roleOf(ownerUrl)) return;
    // The services' login is made (or its password set) from DATABASE_URL when the owner may manage roles;
    // where a DBA manages roles instead, it must exist already.
    const password = decodeURIComponent(new URL(appUrl).password);
    if (password)
      await ensureAppRole(owner, password, appRole).catch((err: Error) =>
        logger.warn({ role: appRole, err: err.message }, 'could not create or update the services’ database role: it must exist'),
      );
    await grantAppPrivileges(owner, appRole);
  } finally {
    await owner.end();
  }
}

/**
 * Opens the application's PostgreSQL pool. With `ownerUrl` the schema is migrated as the owner first; without
 * it the schema must be current, or this login must be allowed to migrate it (one role for everything, as
 * before least privilege).
 */
export async function openDatabase(url: string, ownerUrl?: string): Promise<pg.Pool> {
  if (ownerUrl) await migrateAsOwner(ownerUrl, url);
  const db = new pg.Pool({ connectionString: url, max: 20 });
  // An idle connection closed by the server (restart, shutdown) must not crash the process.
  // A server that is shutting down (57P01, as on Ctrl-C of npm start) is expected: no warning for it.
  db.on('error', (err) => {
    const shutdown = (err as { code?: string }).code === '57P01';
    logger[shutdown ? 'debug' : 'warn']({ err: err.message }, 'idle PostgreSQL connection closed');
  });
  // A client checked out (db.connect(), a transaction) has no pool listener: its socket closing (a restart)
  // emits 'error' on the client itself, which unheard crashes the process. Its queries reject anyway, and
  // the pool drops a dead client on release, so hearing it is enough.
  db.on('connect', (client) => {
    client.on('error', (err) => logger.debug({ err: err.message }, 'PostgreSQL connection in use closed'));
  });
  const version = await schemaVersion(db);
  if (version < SCHEMA_VERSION) {
    try {
      await migrate(db);
    } catch (err) {
      await db.end();
      throw new Error(
        `the database schema is at version ${version}, this release needs ${SCHEMA_VERSION}, and ${roleOf(url)} may not migrate it ` +
          `(${(err as Error).message}): run \`npm run migrate\` with DATABASE_OWNER_URL, or give this process DATABASE_OWNER_URL`,
      );
    }
  }
  return db;
}

/** Whether the custom search attributes exist on the server (they are needed to index jobs). */
export async function searchAttributesRegistered(connection: Connection, namespace: string): Promise<boolean> {
  try {
    const result = await connection.operatorService.listSearchAttributes({ namespace });
    const custom = result.customAttributes ?? {};
    return ALL_SEARCH_ATTRIBUTES.every((key) => key.name in custom);
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
  /** The payload codec's converter when TEMPORAL_PAYLOAD_KEYS is set: every client and worker must use it. */
  dataConverter?: DataConverter;
}

/** Connects to Temporal at `address`, over TLS / with an API key when the configuration says so. */
export async function connectTemporal(
  address: string,
  namespace: string,
  security: TemporalConnectionOptions = {},
  tracing?: Tracing,
  dataConverter?: DataConverter,
): Promise<TemporalHandles> {
  const connection = await Connection.connect({ address, ...security });
  const nativeConnection = await NativeConnection.connect({ address, ...security });
  logger.info({ address, namespace, security: describeTemporalSecurity(security) }, 'connected to Temporal');
  const client = new Client({ connection, namespace, interceptors: clientTracingInterceptors(tracing), dataConverter });
  const indexed = await searchAttributesRegistered(connection, namespace);
  if (!indexed) {
    const names = ALL_SEARCH_ATTRIBUTES.map((key) => key.name).join(', ');
    logger.warn(
      `search attributes ${names} are not all registered (temporal/setup.sh registers them): jobs will not be indexed in the Web UI`,
    );
  }
  return { connection, nativeConnection, client, indexed, ...(dataConverter ? { dataConverter } : {}) };
}

/** The configured Temporal server (TEMPORAL_ADDRESS), with its TLS / API key and the payload codec as configured. */
export function connectConfiguredTemporal(config: Config & { TEMPORAL_ADDRESS: string }, tracing?: Tracing): Promise<TemporalHandles> {
  return connectTemporal(
    config.TEMPORAL_ADDRESS,
    config.TEMPORAL_NAMESPACE,
    temporalConnectionOptions(config),
    tracing,
    payloadDataConverter(config.TEMPORAL_PAYLOAD_KEYS),
  );
}

/** Makes sure every stored pool has its workflow running (after a restart, or on a new Temporal server). */
export async function resumePools(db: pg.Pool, temporal: TemporalHandles, taskQueue: string): Promise<number> {
  const pools = await listPools(db);
  for (const pool of pools)
    await ensurePoolWorkflow(
      { client: temporal.client, taskQueue, indexed: temporal.indexed },
      poolKey(pool.workspaceId, pool.id),
      pool.config,
    );
  return pools.length;
}

/** Readiness: PostgreSQL answers a query and the Temporal frontend answers its health check (2 s each). */
export function readinessCheck(db: pg.Pool, connection: Connection): () => Promise<Record<string, boolean>> {
  const within = <T>(promise: Promise<T>) =>
    Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000).unref())]).catch(
      () => false,
    );
  return async () => {
    const [postgres, temporal] = await Promise.all([within(db.query('SELECT 1')), within(connection.healthService.check({}))]);
    return { postgres, temporal };
  };
}

/**
 * The admin key of the embedded stack: ZEROPOOL_API_KEY if set; otherwise the one generated on first run
 * and kept (mode 0600) in the data folder, so `npm start` stays one command and is never open.
 */
export function embeddedAdminKey(config: Config): { key: string; generated: boolean; file?: string } | undefined {
  if (config.ZEROPOOL_API_KEY) return { key: config.ZEROPOOL_API_KEY, generated: false };
  if (config.ZEROPOOL_INSECURE) return undefined;
  const file = path.join(config.dataDir, 'admin-key');
  if (existsSync(file)) return { key: readFileSync(file, 'utf8').trim(), generated: false, file };
  mkdirSync(config.dataDir, { recursive: true });
  const key = `zp_admin_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, generated: true, file };
}

/** The API's options from the configuration; refuses an open server unless ZEROPOOL_INSECURE=1 says so. */
export function apiOptions(
  config: Config,
  adminKey: string | undefined,
  providers: string[],
  checkReady: AppOptions['checkReady'],
): AppOptions {
  if (!adminKey && !config.ZEROPOOL_INSECURE) {
    throw new Error('no API key: set ZEROPOOL_API_KEY (16+ characters), or ZEROPOOL_INSECURE=1 to serve without auth on a trusted network');
  }
  if (!adminKey)
    logger.warn('!!! ZEROPOOL_INSECURE=1: the API accepts requests WITHOUT A KEY; anyone who can reach it controls it and its spend !!!');
  return {
    apiKey: adminKey,
    insecure: config.ZEROPOOL_INSECURE,
    bodyLimit: config.BODY_LIMIT,
    providers,
    defaultMaxJobsInFlight: config.DEFAULT_MAX_JOBS_IN_FLIGHT,
    checkReady,
    // The OpenAI routes call nodes from the API process: it derives the same secrets the workers do.
    nodeSecrets: nodeSecrets(loadNodeSecretKey(config.ZEROPOOL_NODE_SECRET_KEY, config.dataDir)),
    fastPath: config.FRONT_DOOR_FAST_PATH,
    ledgerSpoolDir: config.FRONT_DOOR_LEDGER_SPOOL_DIR ?? path.join(config.dataDir, 'ledger-spool'),
    ledgerBatchMs: config.FRONT_DOOR_LEDGER_BATCH_MS,
    tracing: config.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined,
  };
}

/** The route context from the configuration and connections. */
export function apiContext(config: Config, db: pg.Pool, temporal: TemporalHandles): ApiContext {
  return {
    client: temporal.client,
    db,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    indexed: temporal.indexed,
    defaultTtlSeconds: config.DEFAULT_JOB_TTL_SECONDS,
    defaultMaxAttempts: config.DEFAULT_JOB_MAX_ATTEMPTS,
    callbackAllowList: parseAllowList(config.CALLBACK_ALLOWED_HOSTS, config.CALLBACK_ALLOWED_PORTS),
    notify: Boolean(config.NTFY_URL && config.NTFY_TOPIC),
    notifyTopicOf: ntfySettings(config, nodeSecrets(loadNodeSecretKey(config.ZEROPOOL_NODE_SECRET_KEY, config.dataDir)))?.topicOf,
    defaultPreemptPriorityGap: config.PREEMPT_PRIORITY_GAP,
  };
}
