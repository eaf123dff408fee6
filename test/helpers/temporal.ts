/** Temporal test environments on the real binaries (paths from TEMPORAL_*_PATH, else the SDK's download). */
import os from 'node:os';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ensureTemporalBinary } from '../../src/stack/temporal-binaries';
import { freePort } from '../../src/stack/free-port';
import { startDevServer } from '../../src/stack/temporal-dev';

// Worker lifecycle chatter drowns test output; warnings and errors still show.
Runtime.install({ logger: new DefaultLogger('WARN') });

/**
 * Retries a server start: the SDK gives an ephemeral server 5 s to answer, which a loaded CI machine can miss
 * (a CI run lost five test files to "did not start within 5s").
 */
async function withStartRetries<T>(what: string, start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= attempts) throw err;
      console.warn(`${what} did not start (attempt ${attempt} of ${attempts}): ${(err as Error).message}`);
    }
  }
}

/** The native time-skipping test server. */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const binary = ensureTemporalBinary('test-server');
  return withStartRetries('time-skipping test server', () =>
    TestWorkflowEnvironment.createTimeSkipping(binary ? { server: { executable: { type: 'existing-path', path: binary } } } : undefined),
  );
}

/**
 * The dev server (the real Temporal server in one binary), in memory, with our search attributes and dynamic
 * config. Started by our own launcher, which waits up to a minute for it, rather than the SDK's (5 s).
 */
export async function devServerEnv(dynamicConfig: Record<string, unknown> = {}): Promise<TestWorkflowEnvironment> {
  const cliPath = ensureTemporalBinary('cli');
  if (!cliPath) throw new Error('no Temporal CLI: run `npm test` (it installs one) or set TEMPORAL_CLI_PATH');
  const server = await withStartRetries('temporal dev server', async () =>
    startDevServer({
      cliPath,
      dataDir: os.tmpdir(),
      port: await freePort(),
      uiPort: 0,
      inMemory: true,
      headless: true,
      dynamicConfig,
    }),
  );
  const env = await TestWorkflowEnvironment.createFromExistingServer({ address: server.address, namespace: 'default' });
  // The environment does not own this server, so its teardown stops the server too.
  const teardown = env.teardown.bind(env);
  env.teardown = async () => {
    await teardown();
    await server.stop();
  };
  return env;
}
