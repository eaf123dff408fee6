import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capacityEta, waitingComment } from '../../src/domain/capacity-eta';
import type { PoolView } from '../../src/domain/types';

const view = (nodes: Array<Partial<PoolView['nodes'][number]>>, keepAlive: Partial<PoolView['keepAlive']>) =>
  ({ nodes, keepAlive }) as unknown as Pick<PoolView, 'nodes' | 'keepAlive'>;

test('capacity ETA: the soonest node on its way up, by the learned boot or wake; none without a node coming or an estimate', () => {
  const now = 100_000;
  const booting = { state: 'provisioning' as const, requestedAt: now - 20_000 };
  const waking = { state: 'provisioning' as const, requestedAt: now - 2_000, waking: true };
  const learned = { bootEstimateMs: 60_000, wakeEstimateMs: 18_000 };
  assert.deepEqual(capacityEta(view([booting], learned), now), { seconds: 40, what: 'booting a node' });
  assert.deepEqual(capacityEta(view([booting, waking], learned), now), { seconds: 16, what: 'waking from stopped' });
  const sleeper = { state: 'provisioning' as const, requestedAt: now - 1_000, wakingFromSleep: true };
  assert.deepEqual(capacityEta(view([booting, waking, sleeper], { ...learned, sleepWakeEstimateMs: 4_000 }), now), {
    seconds: 3,
    what: 'waking from sleep',
  });
  assert.deepEqual(
    capacityEta(view([{ ...booting, requestedAt: now - 90_000 }], learned), now),
    { seconds: 1, what: 'booting a node' },
    'overdue reads as about 1 s',
  );
  assert.equal(capacityEta(view([booting], {}), now), undefined, 'nothing learned yet: no guess');
  assert.equal(capacityEta(view([{ state: 'ready' }, { state: 'stopped' }, { state: 'sleeping' }], learned), now), undefined);
  assert.equal(
    waitingComment(12, { seconds: 6, what: 'waking from stopped' }),
    ': waiting for capacity, 12 s (waking from stopped, about 6 s)\n\n',
  );
  assert.equal(waitingComment(3, undefined), ': waiting for capacity, 3 s\n\n');
});
