import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asPoolKey, poolWorkflowId } from '../../src/ids';
import { poolConfig } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();

test('a pool deleted and created again under the same name gets new node ids, so its nodes are billed (their ledger keys never collide with the earlier life’s)', async () => {
  const h = suite.harness();
  await (await h.worker()).runUntil(async () => {
    const config = poolConfig({ idleTimeoutSeconds: 3600, slotsPerNode: 1, maxNodes: 1 });
    await h.startPool('again', config);
    const first = await h.result(await h.submit('again'));
    assert.equal(first.status, 'completed');
    // Deleting a pool (or a service) ends its workflow; a new one with the same name starts from nothing.
    await h.client.workflow.getHandle(poolWorkflowId(asPoolKey('again'))).terminate('deleted');
    await h.startPool('again', config);
    const second = await h.result(await h.submit('again'));
    assert.equal(second.status, 'completed');
    assert.notEqual(second.nodeId, first.nodeId);
    assert.match(first.nodeId!, /^again-[0-9a-f]{8}-n1$/);
    assert.match(second.nodeId!, /^again-[0-9a-f]{8}-n1$/);
  });
  const provisioned = (await h.ledger('again')).filter((r) => r.event_type === 'node_provisioning');
  assert.equal(provisioned.length, 2, 'both lives’ nodes are on the ledger');
});
