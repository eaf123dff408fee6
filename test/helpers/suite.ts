/** One time-skipping server, one database and one mock provider per test file, with cleanup after each test. */
import { after, afterEach, before } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { MockProvider } from '../../src/activities/providers/mock';
import type { Provider } from '../../src/activities/providers/provider';
import { startTestDatabase, type TestDatabase } from './postgres';
import { PoolHarness, testMockProvider } from './stack';
import { timeSkippingEnv } from './temporal';

/** Handles of a time-skipping test file. */
export interface TimeSkippingSuite {
  env(): TestWorkflowEnvironment;
  database(): TestDatabase;
  /** The file's shared mock provider. */
  mock(): MockProvider;
  /** A harness over the given providers (the shared mock by default), closed after the test. */
  harness(providers?: Record<string, Provider>): PoolHarness;
  /** Registers a provider whose nodes are terminated after the test. */
  track<P extends MockProvider>(provider: P): P;
}

/** Registers the before/after hooks of a time-skipping test file. */
export function timeSkippingSuite(): TimeSkippingSuite {
  let env: TestWorkflowEnvironment;
  let database: TestDatabase;
  let mock: MockProvider;
  const harnesses: PoolHarness[] = [];
  const tracked: MockProvider[] = [];
  before(async () => {
    [env, database] = await Promise.all([timeSkippingEnv(), startTestDatabase()]);
    mock = testMockProvider();
  });
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.close();
    for (const p of tracked.splice(0)) await p.terminateAll();
  });
  after(async () => {
    await mock?.terminateAll();
    await env?.teardown();
    await database?.close();
  });
  return {
    env: () => env,
    database: () => database,
    mock: () => mock,
    harness: (providers) => {
      const h = new PoolHarness(env, database.db, providers ?? { mock });
      harnesses.push(h);
      return h;
    },
    track: (provider) => {
      tracked.push(provider);
      return provider;
    },
  };
}
