import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { RequestInput } from '../../src/domain/front-door-protocol';
import { asPoolKey, jobWorkflowId } from '../../src/ids';
import { requestSlotUpdate } from '../../src/workflows/messages';
import type { requestWorkflow } from '../../src/workflows/request';
import { countEvents, poolConfig } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();

test('front-door requests on workflow time: one parked past its deadline expires (withdrawn, row written); one whose API process stops renewing its lease gives its slot back after 60 s', async () => {
  const h = suite.harness();
  const env = suite.env();
  const start = async (parkTimeoutSeconds: number) => {
    const requestId = randomUUID();
    const input: RequestInput = {
      requestId,
      poolId: asPoolKey('fd'),
      model: 'test-model',
      route: 'chat.completions',
      priority: 3,
      submittedAt: Date.now(),
      parkTimeoutSeconds,
      indexed: false,
      machine: true,
    };
    return h.client.workflow.start<typeof requestWorkflow>('requestWorkflow', {
      workflowId: jobWorkflowId(requestId),
      taskQueue: h.taskQueue,
      args: [input],
    });
  };
  await (await h.worker()).runUntil(async () => {
    await h.startPool('fd', poolConfig({ idleTimeoutSeconds: 3600, slotsPerNode: 1, maxNodes: 1 }));
    const holder = await start(600);
    const grant = await holder.executeUpdate(requestSlotUpdate, { args: [{}] });
    assert.ok(grant.nodeUrl);
    assert.equal((await h.pool('fd')).running, 1);

    const parked = await start(30);
    await h.until('the second request queued', async () => ((await h.pool('fd')).queued === 1 ? true : undefined));
    await env.sleep('31 seconds');
    const expired = await parked.result();
    assert.equal(expired.status, 'expired');
    assert.match(expired.error ?? '', /no capacity within 30 s/);
    await h.until('withdrawn from the queue', async () => ((await h.pool('fd')).queued === 0 ? true : undefined));

    await env.sleep('30 seconds');
    const lapsed = await holder.result();
    assert.equal(lapsed.status, 'failed');
    assert.match(lapsed.error ?? '', /stopped renewing its lease/);
    await h.until('the slot is free', async () => ((await h.pool('fd')).running === 0 ? true : undefined));
  });
  const events = countEvents(await h.ledger('fd'));
  assert.equal(events.job_expired, 1);
  assert.equal(events.job_failed, 1);
});
