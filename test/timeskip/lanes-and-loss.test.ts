import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countEvents, poolConfig, switchableSpotProvider, testMockProvider } from '../helpers/stack';
import { timeSkippingSuite } from '../helpers/suite';

const suite = timeSkippingSuite();

const switchable = () => suite.track(switchableSpotProvider());

test('spot shortage falls back to on-demand and the spot lane cools down before it is tried again', async () => {
  const mock = switchable();
  const h = suite.harness({ mock });
  const env = suite.env();
  await (await h.worker()).runUntil(async () => {
    // Moves back to spot are off here: this test is about lane order and cool-downs, and a move started in the
    // background as the test ends would leave an activity pending that stops the test server skipping time.
    await h.startPool('lanes', poolConfig({ slotsPerNode: 1, maxNodes: 3, laneCooldownSeconds: 180, returnToPreferredLane: false }));
    const first = await h.result(await h.submit('lanes'));
    assert.equal(first.status, 'completed');
    let view = await h.pool('lanes');
    assert.equal(view.nodes[0].laneIndex, 1, 'the node runs on the on-demand lane');
    assert.deepEqual(mock.requests, [0, 1]);
    assert.ok(view.laneCooldownUntil['0'] > 0, 'the spot shortage is remembered');

    // Within the cool-down a second node goes straight to on-demand without asking spot.
    mock.spotAvailable = true;
    const slow = { messages: [{ role: 'user', content: 'x' }], max_tokens: 100 };
    const [a, b] = await Promise.all([h.submit('lanes', slow), h.submit('lanes', slow)]);
    await Promise.all([h.result(a), h.result(b)]);
    assert.deepEqual(mock.requests, [0, 1, 1], 'spot was not asked during its cool-down');

    // After the cool-down, spot is tried first again.
    await env.sleep('4 minutes');
    view = await h.pool('lanes');
    const busy = Array.from({ length: view.nodes.length + 1 }, () => h.submit('lanes', slow));
    await Promise.all((await Promise.all(busy)).map((id) => h.result(id)));
    assert.equal(mock.requests.at(-1), 0, 'spot asked again after the cool-down');
    view = await h.pool('lanes');
    assert.ok(
      view.nodes.some((n) => n.laneIndex === 0),
      'a node runs on spot',
    );
  });
  const rows = await h.ledger('lanes');
  const provisioned = rows.filter((r) => r.event_type === 'node_provisioning');
  assert.ok(provisioned.some((r) => r.market === 'on-demand' && Number(r.price_per_hour) === 1.2));
  assert.ok(provisioned.some((r) => r.market === 'spot' && Number(r.price_per_hour) === 0.5));
});

test('when every lane is short, jobs stay parked and provisioning retries with backoff until capacity returns', async () => {
  const mock = switchable();
  const h = suite.harness({ mock });
  const env = suite.env();
  const spotOnly = poolConfig({ lanes: [{ provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.5 }], laneCooldownSeconds: 60 });
  await (await h.worker()).runUntil(async () => {
    await h.startPool('short', spotOnly);
    const jobId = await h.submit('short');
    await h.until('first refusal', async () => mock.requests.length >= 1);
    await env.sleep('3 minutes');
    const view = await h.pool('short');
    assert.equal(view.queued, 1, 'the job is still parked');
    assert.equal(view.nodes[0].state, 'provisioning');
    const retries = mock.requests.length;
    assert.ok(retries >= 3, `provisioning was retried (${retries} requests)`);
    assert.ok(retries <= 8, `with backoff, not in a tight loop (${retries} requests)`);
    assert.equal((await h.job(jobId)).status, 'queued');
    mock.spotAvailable = true;
    await env.sleep('2 minutes');
    const done = await h.result(jobId);
    assert.equal(done.status, 'completed');
  });
  assert.equal(countEvents(await h.ledger('short')).node_provisioning, 1, 'refused requests are not billed');
});

test('a lost spot node: its running jobs go back to the front of the queue, run elsewhere, and capacity is replaced', async () => {
  const mock = suite.track(testMockProvider({ tokensPerSecond: 20 }));
  const h = suite.harness({ mock });
  const env = suite.env();
  await (await h.worker()).runUntil(async () => {
    await h.startPool('loss', poolConfig({ slotsPerNode: 2, maxNodes: 2, healthCheckIntervalSeconds: 15 }));
    const payload = { messages: [{ role: 'user', content: 'long' }], max_tokens: 60 };
    const jobs = await Promise.all([h.submit('loss', payload), h.submit('loss', payload)]);
    const running = await h.until('both running', async () => {
      const v = await h.pool('loss');
      return v.running === 2 ? v : undefined;
    });
    const victim = running.nodes[0];
    assert.equal(victim.busySlots, 2);
    await fetch(`${victim.url}/_mock/interrupt`, { method: 'POST' });
    const results = await Promise.all(jobs.map((id) => h.result(id)));
    for (const r of results) {
      assert.equal(r.status, 'completed');
      assert.equal(r.attempt, 2, 'the job ran a second attempt');
      assert.notEqual(r.nodeId, victim.id, 'it finished elsewhere');
    }
    await env.sleep('1 minute');
    const after = await h.pool('loss');
    assert.ok(!after.nodes.some((n) => n.id === victim.id), 'the lost node is gone from the pool');
    assert.ok(after.nodes.length >= 1, 'capacity was replaced');
  });
  const events = countEvents(await h.ledger('loss'));
  assert.equal(events.node_lost ?? 0, 1, 'the loss is on the ledger');
  assert.equal(events.job_completed, 2);
});

test('a job not placed before its TTL ends expired: kept, visible, withdrawn from the queue, on the ledger', async () => {
  const mock = switchable();
  const h = suite.harness({ mock });
  const env = suite.env();
  const spotOnly = poolConfig({ lanes: [{ provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.5 }] });
  await (await h.worker()).runUntil(async () => {
    await h.startPool('ttl', spotOnly);
    const jobId = await h.submit('ttl', { prompt: 'never placed' }, { ttlSeconds: 120 });
    await h.until('queued', async () => (await h.pool('ttl')).queued === 1);
    await env.sleep('1 minute');
    assert.equal((await h.job(jobId)).status, 'queued', 'still waiting within its TTL');
    await env.sleep('2 minutes');
    const view = await h.result(jobId);
    assert.equal(view.status, 'expired');
    assert.match(view.error ?? '', /ttl of 120 s/);
    assert.equal((await h.pool('ttl')).queued, 0, 'withdrawn from the queue');
    const stored = await suite.database().db.query('SELECT status FROM jobs WHERE id = $1', [jobId]);
    assert.equal(stored.rows[0].status, 'expired', 'kept, not deleted');
  });
  assert.equal(countEvents(await h.ledger('ttl')).job_expired, 1);
});
