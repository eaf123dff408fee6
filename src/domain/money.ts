/** Money rules shared by the pool workflow (which writes the figures) and analytics (which reads them). */
import type { PoolConfig } from './types';

/**
 * Hourly price of one node of the always-on counterfactual fleet: the pool's first on-demand lane (what a
 * team would run without zeropool), or its dearest lane when it has no on-demand lane.
 */
export function onDemandReferencePrice(config: Pick<PoolConfig, 'lanes'>): number {
  const onDemand = config.lanes.find((l) => l.market === 'on-demand');
  return onDemand ? onDemand.pricePerHour : Math.max(0, ...config.lanes.map((l) => l.pricePerHour));
}
