import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeId } from '../../src/ids';
import { HEALTH_FAILURES_TO_LOSE, DEFAULT_RECONCILE_INTERVAL_SECONDS, stepPool, terminateRetryMs } from '../../src/domain/pool-machine';
import type { PoolCommand, PoolEvent } from '../../src/domain/pool-protocol';
import type { PoolConfig, PoolState } from '../../src/domain/types';
import { LEASE_TTL_MS, type LeaseAnswer, type LeaseExchange } from '../../src/domain/slot-leases';
import { Machine, type Of } from '../helpers/pool-machine-driver';
import { poolConfig } from '../helpers/stack';

const config = (overrides: Partial<PoolConfig> = {}) =>
  poolConfig({ slotsPerNode: 1, idleTimeoutSeconds: 600, teardownGraceSeconds: 30, healthCheckIntervalSeconds: 15, ...overrides });

test('price: a node bills at the price its provider stated for it, on every row; without one at the lane price, and the row says which', () => {
  const m = new Machine(config({ maxNodes: 2, slotsPerNode: 1 }));
  m.arrive('j1');
  m.arrive('j2');
  const [first, second] = m.all.filter((c): c is Of<'provision'> => c.type === 'provision');
  m.send({
    type: 'nodeProvisioned',
    command: first!,
    url: 'u1',
    laneIndex: 0,
    price: { perHour: 0.3121, source: 'ec2:spot-price-history' },
  });
  m.send({ type: 'nodeProvisioned', command: second!, url: 'u2', laneIndex: 0 });
  const rows = m.ledger('node_provisioning');
  const stated = rows.find((r) => r.nodeId === first!.nodeId)!;
  assert.equal(stated.lane?.pricePerHour, 0.3121);
  assert.deepEqual([stated.details?.priceSource, stated.details?.lanePricePerHour], ['ec2:spot-price-history', 0.5]);
  const declared = rows.find((r) => r.nodeId === second!.nodeId)!;
  assert.equal(declared.lane?.pricePerHour, 0.5);
  assert.equal(declared.details?.priceSource, 'lane');
  // Later rows of the node carry its lane as the node holds it: with the stated price (what analytics bills).
  assert.equal(m.state.nodes.find((n) => n.id === first!.nodeId)?.lane?.pricePerHour, 0.3121);
  assert.equal(m.state.nodes.find((n) => n.id === second!.nodeId)?.lane?.pricePerHour, 0.5);
});

test('scale from zero: one arrival → provision on the first lane → ledger row → boot → placement', () => {
  const m = new Machine(config());
  const provision = m.find('provision', m.arrive('j1'));
  assert.deepEqual({ node: provision?.nodeId, lane: provision?.laneIndex }, { node: 'p-n1', lane: 0 });
  m.send({ type: 'nodeProvisioned', command: provision!, url: 'http://n1', laneIndex: 0 });
  assert.equal(m.ledger('node_provisioning').length, 1);
  assert.equal(m.ledger('node_provisioning')[0].details?.referencePricePerHour, 1.2, 'priced from the on-demand lane');
  assert.ok(m.find('waitReady'));
  m.now += 5000;
  const placed = m.find('tellJob', m.send({ type: 'nodeReady', command: m.find('waitReady')!, url: 'http://n1' }));
  assert.equal(placed?.message.kind, 'placed');
  assert.equal(placed?.message.kind === 'placed' && placed.message.grant.coldStartMs, 5000);
  assert.equal(m.ledger('node_ready')[0].details?.bootSeconds, 5);
});

test('lane fallback: a failed provision cools its lane and the next lane is tried at once', () => {
  const m = new Machine(config({ laneCooldownSeconds: 180 }));
  const first = m.find('provision', m.arrive('j1'))!;
  const second = m.find('provision', m.send({ type: 'commandFailed', command: first, error: 'no spot capacity' }));
  assert.equal(second?.laneIndex, 1, 'on-demand after spot');
  assert.equal(m.state.laneCooldownUntil['0'], m.now + 180_000);
  assert.equal(m.state.nodes[0].lastError, 'no spot capacity');
});

test('every lane short: rounds back off (5 s doubling) until a lane cools down; the node goes if the work does', () => {
  const m = new Machine(config({ laneCooldownSeconds: 180 }));
  let cmd = m.find('provision', m.arrive('j1'))!;
  cmd = m.find('provision', m.send({ type: 'commandFailed', command: cmd, error: 'short' }))!;
  assert.deepEqual(m.send({ type: 'commandFailed', command: cmd, error: 'short' }), [], 'no lane left: nothing to call');
  assert.equal(m.wakeAt, m.now + 5000, 'first round waits 5 s');
  assert.deepEqual(m.fire(), []);
  assert.equal(m.wakeAt, m.now + 10_000, 'then 10 s');
  m.send({ type: 'jobWithdrawn', jobId: 'j1' });
  assert.equal(m.state.nodes.length, 0, 'a node no provider holds is dropped once no work needs it');
});

test('durable idle timer: teardown after idleTimeout, terminate calls only after the grace period', () => {
  const m = new Machine(config());
  m.arrive('j1');
  m.bringUp();
  m.now += 1000;
  m.send({ type: 'jobFinished', jobId: 'j1', attempt: 1 });
  const idleAt = m.now;
  assert.equal(m.state.idleSince, idleAt);
  // The health check is due sooner; answering it keeps the idle deadline.
  while (m.wakeAt! < idleAt + 600_000) {
    const check = m.find('checkHealth', m.fire());
    if (check) m.send({ type: 'healthChecked', statuses: [{ nodeId: 'p-n1', exists: true, healthy: true }] });
  }
  assert.equal(m.wakeAt, idleAt + 600_000);
  assert.deepEqual(m.findAll('terminate', m.fire()), [], 'grace period first');
  assert.equal(m.state.nodes[0].state, 'terminating');
  assert.equal(m.ledger('teardown_started').length, 1);
  assert.equal(m.wakeAt, idleAt + 630_000);
  const terminate = m.find('terminate', m.fire());
  assert.equal(terminate?.nodeId, 'p-n1');
  m.now += 2000;
  m.send({ type: 'nodeTerminated', command: terminate! });
  const rows = m.ledger('node_terminated');
  assert.equal(rows.length, 1);
  assert.equal(rows[0].details?.billedSeconds, (m.now - m.ledger('node_provisioning')[0].occurredAt) / 1000);
  assert.equal(m.state.nodes.length, 0);
  assert.equal(m.state.teardown, undefined);
});

test('an arrival during the grace period cancels the teardown: the node is kept and runs the job', () => {
  const m = new Machine(config());
  m.arrive('j1');
  m.bringUp();
  m.send({ type: 'jobFinished', jobId: 'j1', attempt: 1 });
  m.at(m.state.idleSince! + 600_000).send({ type: 'timerFired' });
  assert.equal(m.state.nodes[0].state, 'terminating');
  m.now += 10_000;
  const placed = m.find('tellJob', m.arrive('j2'));
  assert.equal(placed?.message.kind === 'placed' && placed.message.grant.nodeId, 'p-n1');
  assert.equal(m.state.nodes[0].state, 'ready');
  assert.equal(m.ledger('teardown_cancelled').length, 1);
  assert.deepEqual(m.ledger('teardown_cancelled')[0].details, { kept: ['p-n1'] });
  assert.equal(m.find('provision'), undefined, 'no new node');
});

test('an arrival after the terminate call went out: the node still goes, with its row; a new node serves the job', () => {
  const m = new Machine(config({ teardownGraceSeconds: 0 }));
  m.arrive('j1');
  m.bringUp();
  m.send({ type: 'jobFinished', jobId: 'j1', attempt: 1 });
  const terminate = m.find('terminate', m.send({ type: 'scaleToZeroRequested' }));
  assert.ok(terminate, 'scale-to-zero terminates at once');
  const provision = m.find('provision', m.arrive('j2'));
  assert.equal(provision?.nodeId, 'p-n2', 'the burst gets a new node');
  assert.equal(m.ledger('teardown_cancelled').length, 0, 'nothing was kept');
  m.send({ type: 'nodeTerminated', command: terminate! });
  assert.equal(m.ledger('node_terminated').length, 1);
  assert.deepEqual(
    m.state.nodes.map((n) => n.id),
    ['p-n2'],
  );
});

test('a terminate that keeps failing: terminate_failed, retried with backoff for as long as it takes; placements go on', () => {
  const m = new Machine(config({ teardownGraceSeconds: 0, maxNodes: 3 }));
  m.arrive('j1');
  m.bringUp();
  const billedFrom = m.state.nodes[0].billedFrom!;
  m.send({ type: 'jobFinished', jobId: 'j1', attempt: 1 });
  let terminate = m.find('terminate', m.send({ type: 'scaleToZeroRequested' }))!;
  for (let failure = 1; failure <= 8; failure++) {
    m.send({ type: 'commandFailed', command: terminate, error: 'engine unreachable' });
    const node = m.state.nodes.find((n) => n.id === 'p-n1')!;
    assert.equal(node.state, 'terminate_failed');
    assert.equal(node.terminateFailures, failure);
    assert.equal(node.lastError, 'engine unreachable');
    assert.equal(node.nextAttemptAt, m.now + terminateRetryMs(failure));
    if (failure === 2) {
      // Work keeps flowing meanwhile: a new node, and the failing one is never used or counted.
      m.arrive('j2');
      m.bringUp('http://n2');
      const placed = m.findAll('tellJob').find((c) => c.message.kind === 'placed');
      assert.equal(placed?.message.kind === 'placed' && placed.message.grant.nodeId, 'p-n2');
      m.send({ type: 'jobFinished', jobId: 'j2', attempt: 1 });
    }
    terminate = m.findAll('terminate', m.at(node.nextAttemptAt!).send({ type: 'timerFired' })).find((c) => c.nodeId === 'p-n1')!;
    assert.ok(terminate, `retry ${failure}`);
  }
  assert.equal(terminateRetryMs(8), 300_000, 'backoff is capped at 5 minutes');
  assert.equal(m.ledger('node_terminated').length, 0, 'no row while the provider still holds the node');
  m.send({ type: 'nodeTerminated', command: terminate });
  const row = m.ledger('node_terminated').find((r) => r.nodeId === 'p-n1')!;
  assert.equal(row.details?.billedSeconds, (m.now - billedFrom) / 1000, 'billed until the call finally succeeded');
  assert.equal(row.details?.terminateFailures, 8);
  assert.equal(m.state.terminateFailuresTotal, 1);
});

test('health: a missing node is lost at once, an unhealthy one after three checks; its jobs are revoked and requeued in front', () => {
  const m = new Machine(config({ slotsPerNode: 2 }));
  m.arrive('a');
  m.arrive('b');
  m.bringUp();
  assert.equal(m.state.running.length, 2);
  for (let i = 1; i < HEALTH_FAILURES_TO_LOSE; i++) {
    m.send({ type: 'healthChecked', statuses: [{ nodeId: 'p-n1', exists: true, healthy: false, reason: 'timeout' }] });
    assert.equal(m.state.nodes[0].state, 'ready');
  }
  const commands = m.send({ type: 'healthChecked', statuses: [{ nodeId: 'p-n1', exists: true, healthy: false, reason: 'timeout' }] });
  assert.deepEqual(
    m.findAll('tellJob', commands).map((c) => [c.jobId, c.message.kind, c.message.kind === 'revoked' && c.message.attempt]),
    [
      ['a', 'revoked', 2],
      ['b', 'revoked', 2],
    ],
  );
  assert.ok(m.find('terminate', commands), 'the lost node is released without grace');
  assert.ok(m.find('provision', commands), 'and replaced');
  assert.deepEqual(
    m.state.queue.map((q) => [q.jobId, q.attempt, q.front]),
    [
      ['a', 2, true],
      ['b', 2, true],
    ],
  );
  assert.equal(m.ledger('node_lost').length, 1);
});

test('a job reporting its node unreachable marks it suspect and brings the health check forward', () => {
  const m = new Machine(config({ slotsPerNode: 2 }));
  m.arrive('a');
  m.bringUp();
  m.now += 1000;
  const commands = m.arrive('a', { attempt: 2, front: true, failedNodeId: 'p-n1', notBefore: m.now + 2000 });
  assert.ok(m.find('checkHealth', commands), 'checked now');
  assert.equal(m.state.nodes[0].suspect, true);
  assert.equal(m.findAll('tellJob', commands).length, 0, 'nothing placed on a suspect node');
});

test('warm baseline: minNodes start with the pool; a failed boot is replaced', () => {
  const m = new Machine(config({ minNodes: 1 }), false);
  m.send({ type: 'started' });
  const provision = m.find('provision');
  assert.ok(provision, 'the baseline is provisioned at start');
  assert.equal(m.find('reconcile'), undefined, 'no reconciliation while a provision is in flight');
  m.send({ type: 'nodeProvisioned', command: provision, url: 'u', laneIndex: 0 });
  const wait = m.find('waitReady')!;
  assert.ok(m.find('reconcile'), 'reconciliation once the provision (and its ledger row) has settled');
  m.send({ type: 'reconciled', removed: [] });
  const commands = m.send({ type: 'commandFailed', command: wait, error: 'boot timed out' });
  assert.equal(m.find('terminate', commands)?.nodeId, 'p-n1');
  assert.equal(m.find('provision', commands)?.nodeId, 'p-n2', 'the baseline is rebuilt');
});

test('reconciliation runs every reconcileIntervalSeconds (default 10 minutes) and holds provisioning while it runs', () => {
  const m = new Machine(config());
  assert.equal(m.state.reconcileDueAt, m.now + DEFAULT_RECONCILE_INTERVAL_SECONDS * 1000);
  m.now += DEFAULT_RECONCILE_INTERVAL_SECONDS * 1000;
  const reconcile = m.find('reconcile', m.send({ type: 'timerFired' }));
  assert.deepEqual(reconcile, { type: 'reconcile', providers: ['mock'], knownNodeIds: [] });
  assert.equal(m.find('provision', m.arrive('j1')), undefined, 'held: the new node would look like an orphan');
  assert.ok(m.find('provision', m.send({ type: 'reconciled', removed: [] })));
});

test('a new run re-issues what the last one had in flight, and nothing else', () => {
  const m = new Machine(config({ slotsPerNode: 1, teardownGraceSeconds: 0 }));
  m.arrive('a');
  m.arrive('b');
  m.arrive('c');
  const provisions = m.findAll('provision', m.all);
  assert.equal(provisions.length, 3);
  m.send({ type: 'nodeProvisioned', command: provisions[0], url: 'u1', laneIndex: 0 });
  m.send({ type: 'nodeProvisioned', command: provisions[1], url: 'u2', laneIndex: 0 });
  m.send({ type: 'nodeReady', command: { type: 'waitReady', nodeId: 'p-n2', lane: provisions[1].lane }, url: 'u2' });
  // Continue-as-new now: n1 is booting, n2 is ready (running a), n3's provision has not answered.
  const carried = JSON.parse(JSON.stringify(m.state)) as PoolState;
  const next = stepPool(carried, { type: 'started' }, m.now, nodeId);
  const kinds = next.commands.filter((c) => c.type !== 'log').map((c) => `${c.type}:${'nodeId' in c ? c.nodeId : ''}`);
  assert.deepEqual(kinds.sort(), ['provision:p-n3', 'waitReady:p-n1'], 'boot resumed, the unconfirmed provision asked again');
  assert.equal(
    next.commands.find((c) => c.type === 'provision' && c.nodeId === 'p-n3' && c.laneIndex === 0) !== undefined,
    true,
    'on the same lane',
  );
});

test('operator stop: running jobs get until the deadline, then are preempted; nodes go; then the pool is idle again', () => {
  const m = new Machine(config({ slotsPerNode: 1 }));
  m.arrive('a');
  m.bringUp();
  m.send({ type: 'stopRequested', drainTimeoutSeconds: 30, then: 'warm' });
  const deadline = m.now + 30_000;
  assert.equal(m.state.stopping?.deadline, deadline);
  m.arrive('late');
  assert.equal(m.find('provision'), undefined, 'no new capacity during a stop');
  assert.deepEqual(m.findAll('tellJob', m.at(deadline - 1).send({ type: 'timerFired' })), [], 'nothing before the deadline');
  const preempt = m.findAll('tellJob', m.at(deadline).send({ type: 'timerFired' })).find((c) => c.message.kind === 'preempt');
  assert.equal(preempt?.jobId, 'a');
  // The job confirms by queueing its next attempt: the slot is free, the node goes.
  const commands = m.arrive('a', { attempt: 2 });
  assert.equal(m.find('terminate', commands)?.nodeId, 'p-n1');
  const after = m.send({ type: 'nodeTerminated', command: m.find('terminate', commands)! });
  assert.equal(m.state.stopping, undefined, 'the stop is over');
  assert.equal(m.state.warmNodes, 1, 'a restart keeps one node warm');
  assert.ok(m.find('provision', after), 'queued jobs start the pool again');
});

test('drain: no new nodes once idle, every node goes without grace', () => {
  const m = new Machine(config({ minNodes: 1, teardownGraceSeconds: 60 }), false);
  m.send({ type: 'started' });
  m.bringUp();
  const commands = m.send({ type: 'drainRequested' });
  assert.equal(m.find('terminate', commands)?.nodeId, 'p-n1');
  assert.equal(m.find('provision', commands), undefined);
});

test('a job that cannot be reached loses its slot', () => {
  const m = new Machine(config({ slotsPerNode: 1 }));
  m.arrive('a');
  const placed = m.bringUp().find((c): c is Of<'tellJob'> => c.type === 'tellJob')!;
  m.send({ type: 'commandFailed', command: placed, error: 'workflow not found' });
  assert.equal(m.state.running.length, 0);
  assert.equal(m.state.nodes[0].slots[0], null);
});

test('late duplicate arrivals of a finished job are ignored', () => {
  const m = new Machine(config());
  m.arrive('a');
  m.bringUp();
  m.send({ type: 'jobFinished', jobId: 'a', attempt: 1 });
  m.arrive('a');
  assert.equal(m.state.queue.length, 0);
});

test('at maxNodes a waiting priority-1 job preempts a running priority-5 job', () => {
  const m = new Machine(config({ maxNodes: 1, slotsPerNode: 1 }));
  m.arrive('low', { priority: 5 });
  m.bringUp();
  const preempt = m.findAll('tellJob', m.arrive('high', { priority: 1 })).find((c) => c.message.kind === 'preempt');
  assert.equal(preempt?.jobId, 'low');
  assert.equal(m.ledger('job_preempted').length, 1);
});

test('every kind of command failure is an event the machine absorbs (none throws)', () => {
  const lane = config().lanes[0];
  const commands: PoolCommand[] = [
    { type: 'provision', nodeId: 'x', lane, laneIndex: 0, model: 'm' },
    { type: 'waitReady', nodeId: 'x', lane },
    { type: 'terminate', nodeId: 'x', lane, reason: 'r' },
    { type: 'checkHealth', nodes: [] },
    { type: 'reconcile', providers: [], knownNodeIds: [] },
    { type: 'tellJob', jobId: 'j', message: { kind: 'revoked', attempt: 2, reason: 'r' } },
    { type: 'recordLedger', row: { key: 'k', eventType: 'node_ready', occurredAt: 0 } },
  ];
  const m = new Machine(config());
  for (const command of commands) assert.doesNotThrow(() => m.send({ type: 'commandFailed', command, error: 'boom' }));
});

test('a late or duplicate answer never acts twice: a second provision result for a ready node is ignored', () => {
  const m = new Machine(config());
  const provision = m.find('provision', m.arrive('a'))!;
  m.send({ type: 'nodeProvisioned', command: provision, url: 'u', laneIndex: 0 });
  const wait = m.find('waitReady')!;
  m.send({ type: 'nodeReady', command: wait, url: 'u' });
  assert.deepEqual(
    m.send({ type: 'nodeProvisioned', command: provision, url: 'u', laneIndex: 0 }),
    [],
    'no terminate, no second boot wait',
  );
  assert.deepEqual(m.send({ type: 'nodeReady', command: wait, url: 'u' }), []);
  assert.deepEqual(m.send({ type: 'commandFailed', command: wait, error: 'stale' }), [], 'a stale failure does not end a ready node');
  assert.equal(m.state.nodes[0].state, 'ready');
  assert.equal(m.ledger('node_provisioning').length, 1);
  assert.equal(m.ledger('node_ready').length, 1);
  // A result for a node the pool let go of is answered with a terminate.
  const ghost = m.send({ type: 'nodeProvisioned', command: { ...provision, nodeId: 'p-n9' }, url: 'u', laneIndex: 0 });
  assert.deepEqual(
    ghost.map((c) => c.type === 'terminate' && c.nodeId),
    ['p-n9'],
  );
});

/** One job's node comes up on on-demand because spot (lane 0) was short; returns the machine. */
function onOnDemandAfterSpotShortage(overrides: Partial<PoolConfig> = {}): Machine {
  const m = new Machine(config({ laneCooldownSeconds: 180, slotsPerNode: 2, maxNodes: 3, ...overrides }));
  const spot = m.find('provision', m.arrive('j1'))!;
  const onDemand = m.find('provision', m.send({ type: 'commandFailed', command: spot, error: 'no spot capacity' }))!;
  m.send({ type: 'nodeProvisioned', command: onDemand, url: 'http://on-demand', laneIndex: 1 });
  m.send({ type: 'nodeReady', command: m.find('waitReady')!, url: 'http://on-demand' });
  assert.equal(m.state.nodes[0]!.laneIndex, 1);
  assert.equal(m.state.running.length, 1);
  return m;
}

test('back to spot: once the spot lane has cooled down, a spot node starts make-before-break; the on-demand node takes no new work and goes after its job', () => {
  const m = onOnDemandAfterSpotShortage();
  m.now += 60_000;
  assert.equal(m.find('provision', m.send({ type: 'timerFired' })), undefined, 'spot still cooling down: no move');
  m.now += 121_000;
  const move = m.find('provision', m.send({ type: 'timerFired' }));
  assert.equal(move?.laneIndex, 0, 'a spot node is started');
  const replacement = m.state.nodes.find((n) => n.id === move!.nodeId)!;
  assert.equal(replacement.replaces, 'p-n1');
  m.send({ type: 'nodeProvisioned', command: move!, url: 'http://spot', laneIndex: 0 });
  assert.deepEqual(
    m.ledger('node_provisioning').at(-1)?.details,
    { laneIndex: 0, referencePricePerHour: 1.2, priceSource: 'lane', replaces: 'p-n1', moveReason: 'preferred-lane' },
    'the row says which node it replaces and why',
  );
  assert.equal(m.state.nodes[0]!.retiring, undefined, 'the on-demand node keeps serving until the spot node is ready');
  m.send({ type: 'nodeReady', command: m.find('waitReady')!, url: 'http://spot' });
  const onDemand = m.state.nodes.find((n) => n.id === 'p-n1')!;
  assert.equal(onDemand.retiring, true);
  assert.equal(m.find('terminate'), undefined, 'not while its job runs');

  const placed = m.findAll('tellJob', m.arrive('j2'));
  assert.equal(placed[0]?.message.kind === 'placed' && placed[0].message.grant.nodeId, replacement.id, 'new work goes to the spot node');
  const done = m.send({ type: 'jobFinished', jobId: 'j1', attempt: 1 });
  const terminate = m.find('terminate', done);
  assert.equal(terminate?.nodeId, 'p-n1', 'its job done, the on-demand node goes at once');
  m.send({ type: 'nodeTerminated', command: terminate! });
  assert.match(String(m.ledger('node_terminated').at(-1)?.details?.reason), /replaced by .* on lane 0 \(preferred-lane\)/);
  assert.deepEqual(
    m.state.nodes.map((n) => [n.laneIndex, n.state]),
    [[0, 'ready']],
  );
});

test('back to spot: a move whose lane is still short is dropped (the on-demand node stays), and tried again after the next cooldown', () => {
  const m = onOnDemandAfterSpotShortage();
  m.now += 181_000;
  const move = m.find('provision', m.send({ type: 'timerFired' }))!;
  const after = m.send({ type: 'commandFailed', command: move, error: 'no spot capacity' });
  assert.equal(m.find('provision', after), undefined, 'no fallback to another lane: it would only make a second on-demand node');
  assert.deepEqual(
    m.state.nodes.map((n) => [n.id, n.state, n.retiring ?? false]),
    [['p-n1', 'ready', false]],
  );
  m.now += 100_000;
  assert.equal(m.find('provision', m.send({ type: 'timerFired' })), undefined);
  m.now += 81_000;
  assert.equal(m.find('provision', m.send({ type: 'timerFired' }))?.laneIndex, 0, 'probed again once the lane cooled down');
});

test('back to spot: no move while jobs wait, at maxNodes, or with returnToPreferredLane off', () => {
  const busy = onOnDemandAfterSpotShortage({ maxNodes: 1, slotsPerNode: 1 });
  busy.arrive('j2');
  busy.now += 181_000;
  assert.equal(busy.find('provision', busy.send({ type: 'timerFired' })), undefined, 'a job waits and the pool is at maxNodes');
  const off = onOnDemandAfterSpotShortage({ returnToPreferredLane: false });
  off.now += 181_000;
  assert.equal(off.find('provision', off.send({ type: 'timerFired' })), undefined);
  const queued = onOnDemandAfterSpotShortage();
  queued.arrive('j2');
  queued.arrive('j3');
  queued.now += 181_000;
  queued.send({ type: 'timerFired' });
  assert.equal(queued.state.queue.length, 1, 'j3 waits for the node started for it');
  assert.ok(
    queued.state.nodes.every((n) => n.replaces === undefined),
    'the move waits until nothing is queued',
  );
});

test('on-demand floor: new nodes fill the floor on on-demand first; a move back to spot never takes the pool below it; a spot-only pool under it gets an on-demand node', () => {
  const m = new Machine(config({ onDemandFloor: 1, maxNodes: 3, slotsPerNode: 1 }));
  m.arrive('j1');
  m.arrive('j2');
  assert.deepEqual(
    m.findAll('provision', m.all).map((c) => c.laneIndex),
    [1, 0],
    'the first node is on-demand (the floor), the second spot',
  );
  const provisions = m.findAll('provision', m.all);
  for (const p of provisions) m.send({ type: 'nodeProvisioned', command: p, url: `u-${p.nodeId}`, laneIndex: p.laneIndex });
  for (const w of m.findAll('waitReady', m.all)) m.send({ type: 'nodeReady', command: w, url: 'u' });
  m.now += 600_000;
  m.send({ type: 'timerFired' });
  assert.deepEqual(
    m.state.nodes.map((n) => [n.laneIndex, n.state, n.replaces]),
    [
      [1, 'ready', undefined],
      [0, 'ready', undefined],
    ],
    'the on-demand node is the floor: never replaced by a spot one',
  );

  // Raised floor over a spot-only pool: a spot node makes way for an on-demand one.
  const spotOnly = new Machine(config({ maxNodes: 3, slotsPerNode: 1 }));
  spotOnly.arrive('j1');
  spotOnly.bringUp();
  assert.equal(spotOnly.state.nodes[0]!.laneIndex, 0);
  spotOnly.send({ type: 'configChanged', config: config({ maxNodes: 3, slotsPerNode: 1, onDemandFloor: 1 }) });
  const move = spotOnly.find('provision', spotOnly.all.slice(-5));
  assert.equal(move?.laneIndex, 1);
  assert.equal(spotOnly.state.nodes.find((n) => n.id === move!.nodeId)?.moveReason, 'on-demand-floor');
});

// ---- slot leases (the front door's warm fast path) -----------------------------------------------------------

const exchange = (m: Machine, holder: string, fields: Partial<LeaseExchange> = {}): LeaseAnswer => {
  const result = stepPool(
    m.state,
    { type: 'leasesExchanged', exchange: { holder, want: 0, held: [], release: [], served: 0, ...fields } },
    m.now,
    nodeId,
  );
  m.state = result.state;
  m.wakeAt = result.wakeAt;
  m.last = result.commands.filter((c) => c.type !== 'log');
  m.all.push(...m.last);
  return result.reply as LeaseAnswer;
};

/** A pool with one ready idle node of `slots` slots. */
const warmPool = (slots: number) => {
  const m = new Machine(config({ slotsPerNode: slots }));
  m.arrive('j0');
  m.bringUp();
  m.send({ type: 'jobFinished', jobId: 'j0', attempt: 1 });
  return m;
};

test('slot leases: spare slots of a ready node are lent, less a reserve for the workflow way; jobs never land on them; the pool stays idle while nothing is served', () => {
  const m = warmPool(16);
  const answer = exchange(m, 'api-a', { want: 10 });
  assert.equal(answer.granted.length, 1);
  assert.deepEqual(
    { node: answer.granted[0]!.nodeId, slots: answer.granted[0]!.slots, url: answer.granted[0]!.nodeUrl },
    { node: 'p-n1', slots: 10, url: 'http://node' },
  );
  assert.equal(answer.ttlMs, LEASE_TTL_MS);
  // A second holder gets what is left above the reserve (16 / 8 = 2 slots); a third nothing.
  assert.equal(exchange(m, 'api-b', { want: 10 }).granted[0]?.slots, 4);
  assert.deepEqual(exchange(m, 'api-c', { want: 1 }).granted, []);
  const placed = m.find('tellJob', m.arrive('j1'));
  assert.equal(placed?.message.kind === 'placed' && placed.message.grant.nodeId, 'p-n1', 'a job takes a reserved slot: no lease revoked');
  assert.ok(m.state.leases?.every((l) => !l.revoked));
  m.send({ type: 'jobFinished', jobId: 'j1', attempt: 1 });
  assert.equal(m.wakeAt, m.now + LEASE_TTL_MS, 'the machine wakes when the leases would run out');
  assert.ok(m.state.idleSince !== undefined, 'lending is not work');
});

test('slot leases: a queued job revokes the leases (no new node, no preemption); the holder releases and the job takes the slot', () => {
  const m = warmPool(2);
  const lease = exchange(m, 'api-a', { want: 2 }).granted[0]!;
  assert.equal(lease.slots, 1, 'one slot kept back');
  m.arrive('j-reserve');
  const commands = m.arrive('j1');
  assert.equal(m.find('provision', commands), undefined, 'leased slots count as coming free');
  assert.equal(m.find('tellJob', commands), undefined);
  const renewal = exchange(m, 'api-a', { held: [{ leaseId: lease.leaseId, inFlight: 1 }], served: 1 });
  assert.deepEqual({ renewed: renewal.renewed, revoked: renewal.revoked }, { renewed: [], revoked: [lease.leaseId] });
  assert.deepEqual(renewal.granted, [], 'no lending while a job waits');
  const released = exchange(m, 'api-a', { release: [lease.leaseId] });
  assert.deepEqual(released.revoked, []);
  const placed = m.find('tellJob', m.last);
  assert.equal(placed?.message.kind === 'placed' && placed.message.grant.nodeId, 'p-n1', 'the job runs in the released slot');
});

test('slot leases: the idle timer sees requests served on leases; the teardown waits for the lease and never terminates a node still lent', () => {
  const m = warmPool(2);
  const lease = exchange(m, 'api-a', { want: 1 }).granted[0]!;
  const idleFrom = m.state.idleSince!;
  m.now += 500_000;
  exchange(m, 'api-a', { held: [{ leaseId: lease.leaseId, inFlight: 0 }], served: 12 });
  assert.equal(m.state.idleSince, m.now, 'served requests restart the idle timer');
  assert.ok(m.state.idleSince > idleFrom);
  // Renewed but unused: after idleTimeout the teardown begins and takes the lease back.
  const quietFrom = m.now;
  while (m.now < quietFrom + 600_000) {
    m.now += LEASE_TTL_MS / 2;
    const answer = exchange(m, 'api-a', { held: [{ leaseId: lease.leaseId, inFlight: 0 }] });
    const check = m.find('checkHealth');
    if (check) m.send({ type: 'healthChecked', statuses: [{ nodeId: 'p-n1', exists: true, healthy: true }] });
    if (answer.revoked.length > 0) break;
  }
  assert.equal(m.state.nodes[0]!.state, 'terminating');
  // A request the holder started just before still runs there: past the grace period, no terminate call.
  for (let waited = 0; waited < 40_000; waited += LEASE_TTL_MS / 2) {
    m.now += LEASE_TTL_MS / 2;
    assert.deepEqual(exchange(m, 'api-a', { held: [{ leaseId: lease.leaseId, inFlight: 1 }] }).revoked, [lease.leaseId]);
    assert.equal(m.find('terminate'), undefined, 'no terminate call while the lease holds slots');
  }
  // The holder stops renewing (its process died): the lease runs out, then the terminate call goes.
  m.now = m.wakeAt!;
  const terminate = m.find('terminate', m.send({ type: 'timerFired' }));
  assert.equal(terminate?.nodeId, 'p-n1');
  assert.deepEqual(m.state.leases, []);
});

test('slot leases: a revoked lease with requests in flight holds the node until they end; a renewal of an unknown lease is refused', () => {
  const m = warmPool(2);
  const lease = exchange(m, 'api-a', { want: 1 }).granted[0]!;
  m.send({ type: 'scaleToZeroRequested' });
  assert.equal(m.state.leases?.[0]?.revoked, true);
  for (let i = 0; i < 3; i++) {
    m.now += LEASE_TTL_MS - 1000;
    const answer = exchange(m, 'api-a', { held: [{ leaseId: lease.leaseId, inFlight: 1 }] });
    assert.deepEqual(answer.revoked, [lease.leaseId]);
    assert.equal(m.find('terminate'), undefined, 'a request still streams there');
  }
  exchange(m, 'api-a', { release: [lease.leaseId] });
  assert.equal(m.find('terminate')?.nodeId, 'p-n1', 'released: the terminate call goes out');
  assert.deepEqual(exchange(m, 'api-b', { held: [{ leaseId: 'L99', inFlight: 0 }] }).revoked, ['L99']);
  assert.deepEqual(
    exchange(m, 'api-b', { held: [{ leaseId: lease.leaseId, inFlight: 0 }] }).revoked,
    [lease.leaseId],
    'another holder cannot renew it',
  );
});

test('slot leases: a suspect node and a stopping pool lend nothing', () => {
  const m = warmPool(2);
  m.arrive('j1', { failedNodeId: 'p-n1' });
  m.send({ type: 'jobWithdrawn', jobId: 'j1' });
  assert.deepEqual(exchange(m, 'api-a', { want: 1 }).granted, []);
  m.send({ type: 'healthChecked', statuses: [{ nodeId: 'p-n1', exists: true, healthy: true }] });
  assert.equal(exchange(m, 'api-a', { want: 1 }).granted.length, 1);
  m.send({ type: 'stopRequested', drainTimeoutSeconds: 30, then: 'idle' });
  assert.deepEqual(exchange(m, 'api-b', { want: 1 }).granted, []);
  assert.equal(m.state.leases?.[0]?.revoked, true);
});

test('a stop only if idle (VRAM admission making room) is refused in the same step when a job is queued or running: nothing stops', () => {
  const stopIfIdle: PoolEvent = { type: 'stopRequested', drainTimeoutSeconds: 0, then: 'idle', onlyIfIdle: true };
  const busy = new Machine(config({ slotsPerNode: 1 }));
  busy.arrive('a');
  const refused = stepPool(busy.state, stopIfIdle, busy.now, nodeId);
  assert.match((refused.reply as { stopRefused?: string } | undefined)?.stopRefused ?? '', /1 queued and 0 running/);
  assert.equal(refused.state.stopping, undefined);
  assert.deepEqual(
    refused.commands.filter((c) => c.type !== 'log'),
    [],
  );
  busy.bringUp();
  const running = stepPool(busy.state, stopIfIdle, busy.now, nodeId);
  assert.match((running.reply as { stopRefused?: string } | undefined)?.stopRefused ?? '', /0 queued and 1 running/);
  const idle = new Machine(config({ slotsPerNode: 1 }));
  const stopped = stepPool(idle.state, stopIfIdle, idle.now, nodeId);
  assert.equal(stopped.reply, undefined, 'an idle pool stops (with no node, the stop is over in the same step)');
});

test('many jobs withdrawn in one step (a batch of abandoned parked requests) leave the pool as one jobWithdrawn each would, queued and placed alike, without placing a job that leaves in the same batch; stale arrivals ignored', () => {
  const build = () => {
    const m = new Machine(config({ maxNodes: 1, slotsPerNode: 2 }));
    for (const id of ['a', 'b', 'c', 'd', 'e']) m.arrive(id);
    m.bringUp();
    return m;
  };
  const batched = build();
  const single = build();
  assert.deepEqual(
    batched.state.running.map((p) => p.jobId),
    ['a', 'b'],
    'two placed, three queued',
  );
  const told = (m: Machine, from: number) =>
    m.all
      .slice(from)
      .filter((c): c is Of<'tellJob'> => c.type === 'tellJob' && c.message.kind === 'placed')
      .map((c) => c.jobId);
  const [batchedFrom, singleFrom] = [batched.all.length, single.all.length];
  batched.send({ type: 'jobsWithdrawn', jobIds: ['a', 'c', 'd', 'unknown'] });
  for (const jobId of ['a', 'c', 'd', 'unknown']) single.send({ type: 'jobWithdrawn', jobId });
  assert.deepEqual(told(single, singleFrom), ['c', 'd', 'e'], 'one at a time, c and d get the free slot just before they leave');
  assert.deepEqual(told(batched, batchedFrom), ['e'], 'in one step only e does');
  assert.deepEqual({ ...batched.state, placedTotal: 0 }, { ...single.state, placedTotal: 0 });
  assert.deepEqual(
    batched.state.queue.map((q) => q.jobId),
    [],
    'e took the slot a left; c and d are gone',
  );
  assert.deepEqual(batched.state.running.map((p) => p.jobId).sort(), ['b', 'e']);
  batched.arrive('c');
  assert.deepEqual(batched.state.queue, [], 'a late arrival of a withdrawn job is stale');
});
