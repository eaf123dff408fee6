/**
 * The pool workflow's check of a config update (its update validator), kept apart from the schemas so the
 * workflow bundle builds them only when a config update comes. The bundle evaluates every module it imports once
 * per workflow it creates (each run has its own module state), and building the pool config's zod schemas was
 * about a tenth of the worker's workflow-thread time per job (docs/measurements.md): a job never needs them.
 */
import type { PoolConfig } from './pool-config';

type PoolConfigModule = typeof import('./pool-config');

/** Throws a readable error if the config is invalid (synchronous: it runs inside an update validator). */
export function validatePoolConfig(config: PoolConfig, current?: PoolConfig): void {
  // Loaded on first use: the module and zod are bundled, but evaluated only here.
  const { poolConfigSchema } = require('./pool-config') as PoolConfigModule;
  const parsed = poolConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; '));
  }
  if (current && current.model !== config.model) {
    throw new Error('model cannot change on a live pool: create a new pool for another model');
  }
}
