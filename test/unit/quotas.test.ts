import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NEW_WORKSPACE_QUOTAS, poolQuotaRefusal, servicePriorityRefusal } from '../../src/domain/quotas';

test('pool quota: the count and the sum of maxNodes, each only when set; shrinking always fits', () => {
  const quotas = { maxPools: 2, maxNodes: 10, minServicePriority: 2 };
  assert.equal(poolQuotaRefusal(quotas, { pools: 1, nodes: 6 }, { newPool: true, addedNodes: 4 }), undefined);
  assert.match(poolQuotaRefusal(quotas, { pools: 2, nodes: 6 }, { newPool: true, addedNodes: 1 }) ?? '', /may have 2 pool/);
  assert.match(poolQuotaRefusal(quotas, { pools: 1, nodes: 6 }, { newPool: true, addedNodes: 5 }) ?? '', /reach 10 node/);
  assert.equal(poolQuotaRefusal(quotas, { pools: 2, nodes: 10 }, { newPool: false, addedNodes: 0 }), undefined);
  const unlimited = { maxPools: null, maxNodes: null, minServicePriority: 1 };
  assert.equal(poolQuotaRefusal(unlimited, { pools: 999, nodes: 99_999 }, { newPool: true, addedNodes: 1000 }), undefined);
});

test('service priority floor: a workspace may not claim more urgency than the admin granted', () => {
  assert.equal(NEW_WORKSPACE_QUOTAS.minServicePriority, 2, 'priority 1 stays the admin’s');
  assert.match(servicePriorityRefusal(NEW_WORKSPACE_QUOTAS, 1) ?? '', /more urgent than this workspace may use \(2–5/);
  for (const p of [2, 3, 5]) assert.equal(servicePriorityRefusal(NEW_WORKSPACE_QUOTAS, p), undefined);
  assert.equal(servicePriorityRefusal({ maxPools: null, maxNodes: null, minServicePriority: 1 }, 1), undefined);
});
