/** The pool configuration schema (zod): used by the API and by the pool's update validator. */
import { z } from 'zod';
import type { PoolConfig } from './types';

/** One lane of capacity. */
export const laneSchema = z.object({
  provider: z.string().min(1).max(64),
  market: z.enum(['spot', 'on-demand']),
  gpu: z.string().min(1).max(64),
  pricePerHour: z.number().nonnegative().max(10_000),
});

/** Fields an operator may set; defaults fill the rest. */
export const poolConfigSchema = z
  .object({
    model: z.string().min(1).max(200),
    minNodes: z.number().int().min(0).max(1000).default(0),
    maxNodes: z.number().int().min(1).max(1000),
    slotsPerNode: z.number().int().min(1).max(1024).default(1),
    burstThreshold: z.number().int().min(0).max(100_000).default(0),
    idleTimeoutSeconds: z
      .number()
      .min(0)
      .max(7 * 24 * 3600)
      .default(60),
    laneCooldownSeconds: z
      .number()
      .min(0)
      .max(24 * 3600)
      .default(180),
    teardownGraceSeconds: z.number().min(0).max(3600).default(10),
    healthCheckIntervalSeconds: z.number().min(1).max(3600).default(15),
    preemptPriorityGap: z.number().int().min(1).max(4).default(2),
    preemption: z.enum(['auto', 'manual']).default('auto'),
    agingSeconds: z
      .number()
      .min(0)
      .max(24 * 3600)
      .default(300),
    reconcileIntervalSeconds: z
      .number()
      .min(10)
      .max(24 * 3600)
      .default(600),
    lanes: z.array(laneSchema).min(1).max(16),
  })
  .strict()
  .refine((c) => c.minNodes <= c.maxNodes, { message: 'minNodes must not exceed maxNodes', path: ['minNodes'] });

/** Input accepted by PATCH: any subset of the fields. */
export const poolConfigPatchSchema = z
  .object({
    model: z.string().min(1).max(200),
    minNodes: z.number().int().min(0).max(1000),
    maxNodes: z.number().int().min(1).max(1000),
    slotsPerNode: z.number().int().min(1).max(1024),
    burstThreshold: z.number().int().min(0).max(100_000),
    idleTimeoutSeconds: z
      .number()
      .min(0)
      .max(7 * 24 * 3600),
    laneCooldownSeconds: z
      .number()
      .min(0)
      .max(24 * 3600),
    teardownGraceSeconds: z.number().min(0).max(3600),
    healthCheckIntervalSeconds: z.number().min(1).max(3600),
    preemptPriorityGap: z.number().int().min(1).max(4),
    preemption: z.enum(['auto', 'manual']),
    agingSeconds: z
      .number()
      .min(0)
      .max(24 * 3600),
    reconcileIntervalSeconds: z
      .number()
      .min(10)
      .max(24 * 3600),
    lanes: z.array(laneSchema).min(1).max(16),
  })
  .partial()
  .strict();

/** Throws a readable error if the config is invalid (synchronous: it runs inside an update validator). */
export function validatePoolConfig(config: PoolConfig, current?: PoolConfig): void {
  const parsed = poolConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; '));
  }
  if (current && current.model !== config.model) {
    throw new Error('model cannot change on a live pool: create a new pool for another model');
  }
}
