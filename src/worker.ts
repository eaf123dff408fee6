/** Worker start-up: registers the workflows and activities on the task queue. */
import { type NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import type { Pool } from 'pg';
import path from 'node:path';
import { createActivities, type ActivityDeps } from './activities';
import { EC2Client } from '@aws-sdk/client-ec2';
import { Ec2Provider } from './activities/providers/aws-ec2';
import { HyperstackProvider } from './activities/providers/hyperstack';
import { RunpodProvider } from './activities/providers/runpod';
import { MockProvider } from './activities/providers/mock';
import { loadNodeSecretKey, type NodeSecrets, nodeSecrets } from './secrets/node-secrets';
import type { Provider } from './activities/providers/provider';
import type { NtfySettings } from './activities/notify';
import { awsEnabled, type Config } from './config';
import { logger } from './logger';
import type { LocalGpuServices } from './stack/local-gpus';
import { workspaceTopic } from './domain/notify-topic';
import { type Tracing, WORKFLOW_TRACING_MODULE, workerTracing } from './tracing';

/** Each node's bearer secret, from ZEROPOOL_NODE_SECRET_KEY or the key kept in the data folder. */
export function nodeSecretsFor(config: Config): NodeSecrets {
  return nodeSecrets(loadNodeSecretKey(config.ZEROPOOL_NODE_SECRET_KEY, config.dataDir));
}

/** Builds the providers enabled by the configuration (mock always); pass the worker the same `secrets`. */
export function createProviders(
  config: Config,
  local?: LocalGpuServices,
  secrets: NodeSecrets = nodeSecretsFor(config),
): Record<string, Provider> & { mock: MockProvider } {
  return {
    ...(local?.docker ? { docker: local.docker } : {}),
    ...(awsEnabled(config)
      ? {
          aws: new Ec2Provider({
            secrets,
            client: new EC2Client({ region: config.AWS_REGION, ...(config.AWS_EC2_ENDPOINT ? { endpoint: config.AWS_EC2_ENDPOINT } : {}) }),
          }),
        }
      : {}),
    ...(config.HYPERSTACK_API_KEY
      ? { hyperstack: new HyperstackProvider({ apiKey: config.HYPERSTACK_API_KEY, baseUrl: config.HYPERSTACK_API_URL, secrets }) }
      : {}),
    ...(config.RUNPOD_API_KEY
      ? {
          runpod: new RunpodProvider({
            apiKey: config.RUNPOD_API_KEY,
            baseUrl: config.RUNPOD_API_URL,
            proxyUrl: config.RUNPOD_PROXY_URL,
            secrets,
          }),
        }
      : {}),
    mock: new MockProvider({
      stateDir: path.join(config.dataDir, 'mock-nodes'),
      coldStartSeconds: config.MOCK_COLD_START_SECONDS,
      tokensPerSecond: config.MOCK_TOKENS_PER_SECOND,
      spotShortageProbability: config.MOCK_SPOT_SHORTAGE_PROBABILITY,
      spotInterruptionsPerHour: config.MOCK_SPOT_INTERRUPTIONS_PER_HOUR,
      seed: config.MOCK_SEED,
      sleepWakeSeconds: config.MOCK_SLEEP_WAKE_SECONDS,
      secrets,
    }),
  };
}

/** Where job notifications go (off unless NTFY_URL and NTFY_TOPIC are set): a topic per workspace. */
export function ntfySettings(config: Config, secrets: NodeSecrets): NtfySettings | undefined {
  const base = config.NTFY_TOPIC;
  if (!config.NTFY_URL || !base) return undefined;
  return {
    url: config.NTFY_URL,
    topic: base,
    token: config.NTFY_TOKEN,
    topicOf: (ws) => workspaceTopic(base, ws, secrets.topicSuffix(ws)),
  };
}

/** Worker settings taken from the configuration beyond the providers. */
export function workerSettings(config: Config): {
  ntfy?: NtfySettings;
  callbackAllowList: string[];
  callbackAllowedPorts: number[];
  apiBaseUrl?: string;
  nodeSecrets: NodeSecrets;
} {
  return {
    nodeSecrets: nodeSecretsFor(config),
    ntfy: ntfySettings(config, nodeSecretsFor(config)),
    callbackAllowList: config.CALLBACK_ALLOWED_HOSTS,
    callbackAllowedPorts: config.CALLBACK_ALLOWED_PORTS,
    apiBaseUrl: config.ZEROPOOL_PUBLIC_URL,
  };
}

const bundles: { plain?: Promise<WorkflowBundleWithSourceMap>; traced?: Promise<WorkflowBundleWithSourceMap> } = {};

/** Workflow code bundled once per process, with the OpenTelemetry workflow interceptors when tracing is on. */
export function workflowBundle(traced = false): Promise<WorkflowBundleWithSourceMap> {
  const key = traced ? 'traced' : 'plain';
  bundles[key] ??= bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    workflowInterceptorModules: traced ? [WORKFLOW_TRACING_MODULE] : [],
    logger: quietBundlerLogger,
  });
  return bundles[key];
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m: string) => logger.warn(m),
  error: (m: string) => logger.error(m),
};

/** Creates (not runs) a worker for the given connection and dependencies. */
export async function createWorker(options: {
  connection: NativeConnection;
  /** The payload codec (TEMPORAL_PAYLOAD_KEYS), as the clients use it. */
  dataConverter?: DataConverter;
  namespace: string;
  taskQueue: string;
  db: Pool;
  providers: Record<string, Provider>;
  healthPollMs?: number;
  /** How often a booting node's model server is probed directly (WORKER_READY_PROBE_MS). */
  readyProbeMs?: number;
  /** 0 turns off the sticky cache (each task replays history): used where workers come and go in tests. */
  maxCachedWorkflows?: number;
  afterLedgerWrite?: ActivityDeps['afterLedgerWrite'];
  ntfy?: ActivityDeps['ntfy'];
  callbackAllowList?: string[];
  callbackAllowedPorts?: number[];
  apiBaseUrl?: string;
  /** Each node's bearer secret (the providers given must use the same); its key marks the ledger rows. */
  nodeSecrets: NodeSecrets;
  /** Trace workflows and activities (see src/tracing.ts). */
  tracing?: Tracing;
}): Promise<Worker> {
  return Worker.create({
    ...(options.tracing ? workerTracing(options.tracing) : {}),
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle: await workflowBundle(options.tracing !== undefined),
    activities: createActivities({
      db: options.db,
      providers: options.providers,
      logger,
      healthPollMs: options.healthPollMs,
      readyProbeMs: options.readyProbeMs,
      afterLedgerWrite: options.afterLedgerWrite,
      ntfy: options.ntfy,
      callbackAllowList: options.callbackAllowList,
      callbackAllowedPorts: options.callbackAllowedPorts,
      apiBaseUrl: options.apiBaseUrl,
      nodeSecrets: options.nodeSecrets,
    }),
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
    maxConcurrentActivityTaskExecutions: 500,
    // A heartbeat is how a preemption or cancel reaches a running inference call: send them within a second.
    maxHeartbeatThrottleInterval: '1 second',
    maxCachedWorkflows: options.maxCachedWorkflows,
  });
}
