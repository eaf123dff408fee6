/** A worker process on its own (docker-compose, scaling out): needs TEMPORAL_ADDRESS and DATABASE_URL. */
import { createServer } from 'node:http';
import { loadConfig } from './config';
import { metricsText, registry, setSdkMetricsSource } from './metrics';
import { installSdkMetrics } from './sdk-metrics';
import { logger } from './logger';
import { startTracing } from './tracing';
import { createLocalGpus } from './stack/local-gpus';
import { connectConfiguredTemporal, openDatabase } from './runtime';
import { createProviders, createWorker, workerSettings } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.TEMPORAL_ADDRESS || !config.DATABASE_URL) throw new Error('TEMPORAL_ADDRESS and DATABASE_URL are required');
  const db = await openDatabase(config.DATABASE_URL, config.DATABASE_OWNER_URL);
  // The SDK's metrics exporter is set before the first native connection; served on this worker's /metrics.
  if (config.METRICS_PORT !== undefined) setSdkMetricsSource(await installSdkMetrics());
  const tracing = startTracing(config, 'zeropool-worker');
  const temporal = await connectConfiguredTemporal({ ...config, TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS }, tracing);
  const local = await createLocalGpus(config, db, temporal.client);
  if (local.docker) await local.docker.removeOrphans();
  const worker = await createWorker({
    connection: temporal.nativeConnection,
    dataConverter: temporal.dataConverter,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    db,
    providers: createProviders(config, local),
    healthPollMs: config.WORKER_HEALTH_POLL_MS,
    readyProbeMs: config.WORKER_READY_PROBE_MS,
    ...workerSettings(config),
    tracing,
  });
  if (config.METRICS_PORT !== undefined) {
    // Counters fed by this worker's activities (job outcomes, queue time, cold starts, GPU-seconds, cost), then the SDK's.
    createServer(async (req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': registry.contentType }).end(await metricsText());
    }).listen(config.METRICS_PORT, config.HOST, () => logger.info({ port: config.METRICS_PORT }, 'metrics listening'));
  }
  process.on('SIGTERM', () => worker.shutdown());
  process.on('SIGINT', () => worker.shutdown());
  logger.info({ taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker running');
  await worker.run();
  await db.end();
  await tracing?.shutdown();
  // Stopped: the metrics server and Temporal's connection would hold the process open otherwise.
  process.exit(0);
}

main().catch((err) => {
  logger.fatal({ err }, 'worker failed');
  process.exit(1);
});
