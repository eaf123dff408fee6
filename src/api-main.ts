/** The API process on its own (docker-compose): needs TEMPORAL_ADDRESS and DATABASE_URL. */
import { createApp } from './api/app';
import { enabledProviderNames, loadConfig } from './config';
import { createLocalGpus } from './stack/local-gpus';
import { logger } from './logger';
import { startTracing } from './tracing';
import { apiContext, apiOptions, connectConfiguredTemporal, openDatabase, readinessCheck, resumePools } from './runtime';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.TEMPORAL_ADDRESS || !config.DATABASE_URL) throw new Error('TEMPORAL_ADDRESS and DATABASE_URL are required');
  const db = await openDatabase(config.DATABASE_URL, config.DATABASE_OWNER_URL);
  const tracing = startTracing(config, 'zeropool-api');
  const temporal = await connectConfiguredTemporal({ ...config, TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS }, tracing);
  await resumePools(db, temporal, config.TEMPORAL_TASK_QUEUE);
  // The API sees the same Docker engine and GPUs as the workers on this host (for /v1/vram and /v1/available).
  const local = await createLocalGpus(config, db, temporal.client);
  const providers = enabledProviderNames(config, local.docker !== undefined);
  const options = { ...apiOptions(config, config.ZEROPOOL_API_KEY, providers, readinessCheck(db, temporal.connection)), local };
  const app = createApp(apiContext(config, db, temporal), options);
  const server = app.listen(config.PORT, config.HOST, () => logger.info({ port: config.PORT }, 'API listening'));
  // Leases go back to their pools and the fast path's last ledger rows are written before the process ends.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      server.close();
      void (app.locals.close as () => Promise<void>)()
        .then(() => tracing?.shutdown())
        // Said, not swallowed: a close that failed may have left spooled rows for the next process.
        .catch((err) => logger.error({ err }, 'API shutdown did not finish cleanly'))
        .finally(() => process.exit(0));
    });
  }
}

main().catch((err) => {
  logger.fatal({ err }, 'API failed to start');
  process.exit(1);
});
