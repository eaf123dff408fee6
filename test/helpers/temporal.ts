/** Temporal test environments on the real binaries (paths from TEMPORAL_*_PATH, else the SDK's download). */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ALL_SEARCH_ATTRIBUTES } from '../../src/domain/search-attributes';
import { findTemporalBinary } from '../../src/stack/temporal-binaries';
import devServerConfig from '../../temporal/dev-server.json';

// Worker lifecycle chatter drowns test output; warnings and errors still show.
Runtime.install({ logger: new DefaultLogger('WARN') });

/** The native time-skipping test server. */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = findTemporalBinary('test-server');
  return TestWorkflowEnvironment.createTimeSkipping(path ? { server: { executable: { type: 'existing-path', path } } } : undefined);
}

/** The dev server (the real Temporal server in one binary), with our search attributes and dynamic config. */
export async function devServerEnv(dynamicConfig: Record<string, unknown> = {}): Promise<TestWorkflowEnvironment> {
  const path = findTemporalBinary('cli');
  const merged = { ...devServerConfig.dynamicConfig, ...dynamicConfig };
  return TestWorkflowEnvironment.createLocal({
    server: {
      ...(path ? { executable: { type: 'existing-path' as const, path } } : {}),
      searchAttributes: ALL_SEARCH_ATTRIBUTES,
      extraArgs: Object.entries(merged).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${JSON.stringify(v)}`]),
    },
  });
}
