import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NEW_WORKSPACE_QUOTAS, poolQuotaRefusal, servicePriorityRefusal } from '../../src/domain/quotas';

test('pool quota: the count and the sum of maxNodes, each only when set; shrinking always fits', () => {
  const quotas = { maxPools: 2, maxNodes: 10, minServicePriority: 2, maxVramGb: null, maxParkedRequests: null };
  assert.equal(poolQuotaRefusal(quotas, { pools: 1, nodes: 6, vramGb: 0 }, { newPool: true, addedNodes: 4 }), undefined);
  assert.match(poolQuotaRefusal(quotas, { pools: 2, nodes: 6, vramGb: 0 }, { newPool: true, addedNodes: 1 }) ?? '', /may have 2 pool/);
  assert.match(poolQuotaRefusal(quotas, { pools: 1, nodes: 6, vramGb: 0 }, { newPool: true, addedNodes: 5 }) ?? '', /reach 10 node/);
  assert.equal(poolQuotaRefusal(quotas, { pools: 2, nodes: 10, vramGb: 0 }, { newPool: false, addedNodes: 0 }), undefined);
  const unlimited = { maxPools: null, maxNodes: null, minServicePriority: 1, maxVramGb: null, maxParkedRequests: null };
  assert.equal(
    poolQuotaRefusal(unlimited, { pools: 999, nodes: 99_999, vramGb: 1e6 }, { newPool: true, addedNodes: 1000, addedVramGb: 1e5 }),
    undefined,
  );
});

test('service priority floor: a workspace may not claim more urgency than the admin granted', () => {
  assert.equal(NEW_WORKSPACE_QUOTAS.minServicePriority, 2, 'priority 1 stays the admin’s');
  assert.match(servicePriorityRefusal(NEW_WORKSPACE_QUOTAS, 1) ?? '', /more urgent than this workspace may use \(2–5/);
  for (const p of [2, 3, 5]) assert.equal(servicePriorityRefusal(NEW_WORKSPACE_QUOTAS, p), undefined);
  assert.equal(servicePriorityRefusal({ ...NEW_WORKSPACE_QUOTAS, minServicePriority: 1 }, 1), undefined);
});

test('VRAM quota: what the services could claim together (vramGb × maxNodes); growth beyond it is refused, shrinking is not', () => {
  const quotas = { ...NEW_WORKSPACE_QUOTAS, maxVramGb: 48 };
  assert.equal(poolQuotaRefusal(quotas, { pools: 1, nodes: 2, vramGb: 24 }, { newPool: true, addedNodes: 1, addedVramGb: 24 }), undefined);
  assert.match(
    poolQuotaRefusal(quotas, { pools: 1, nodes: 2, vramGb: 24 }, { newPool: true, addedNodes: 1, addedVramGb: 24.5 }) ?? '',
    /may claim 48 GB of VRAM together .*claim 24 and this adds 24\.5/,
  );
  assert.equal(
    poolQuotaRefusal(quotas, { pools: 1, nodes: 2, vramGb: 100 }, { newPool: false, addedNodes: 0, addedVramGb: -20 }),
    undefined,
  );
  assert.equal(
    poolQuotaRefusal(
      { ...quotas, maxVramGb: null },
      { pools: 1, nodes: 2, vramGb: 1e4 },
      { newPool: true, addedNodes: 1, addedVramGb: 1e4 },
    ),
    undefined,
  );
});
