import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { createNodeActivities } from '../../src/activities/nodes';
import { computeAnalytics } from '../../src/db/analytics';
import { appendLedgerEvent, ledgerRowsForPool, verifyLedgerChain, type LedgerEvent } from '../../src/db/ledger';
import { asPoolKey, DEFAULT_WORKSPACE, type PoolKey } from '../../src/ids';
import { startTestDatabase, type TestDatabase } from '../helpers/postgres';
import { testMockProvider } from '../helpers/stack';
import { TEST_NODE_SECRETS } from '../helpers/ledger-marks';

let database: TestDatabase;
before(async () => {
  database = await startTestDatabase();
});
after(async () => {
  await database?.close();
});

const lane = { provider: 'mock', market: 'spot' as const, gpu: 'A10G', pricePerHour: 0.5 };
const t0 = Date.UTC(2026, 10, 1, 12);
const provisioning = (pool: PoolKey, node: string, at: number, provider = 'mock'): LedgerEvent => ({
  eventKey: `${pool}:${node}:provisioning`,
  eventType: 'node_provisioning',
  occurredAt: at,
  poolId: pool,
  nodeId: node,
  lane: { ...lane, provider },
  details: { laneIndex: 0 },
});

test('reconciliation writes the missing node_terminated row of a node no provider holds, at the best recorded time, once', async () => {
  const db = database.db;
  const pool = asPoolKey('heal');
  // n1: torn down by a teardown with a 30 s grace period whose row was lost (the old cancelled-scope bug).
  await appendLedgerEvent(db, provisioning(pool, 'heal-n1', t0), TEST_NODE_SECRETS);
  await appendLedgerEvent(
    db,
    {
      eventKey: `${pool}:teardown:1:started`,
      eventType: 'teardown_started',
      occurredAt: t0 + 600_000,
      poolId: pool,
      details: { nodes: ['heal-n1'], graceSeconds: 30 },
    },
    TEST_NODE_SECRETS,
  );
  // n2: lost (spot) and never closed.
  await appendLedgerEvent(db, provisioning(pool, 'heal-n2', t0), TEST_NODE_SECRETS);
  await appendLedgerEvent(
    db,
    {
      eventKey: `${pool}:heal-n2:lost`,
      eventType: 'node_lost',
      occurredAt: t0 + 120_000,
      poolId: pool,
      nodeId: 'heal-n2',
    },
    TEST_NODE_SECRETS,
  );
  // n3: nothing recorded after it started. n4: still known to the pool. n5: from a provider this worker lacks.
  await appendLedgerEvent(db, provisioning(pool, 'heal-n3', t0), TEST_NODE_SECRETS);
  await appendLedgerEvent(db, provisioning(pool, 'heal-n4', t0), TEST_NODE_SECRETS);
  await appendLedgerEvent(db, provisioning(pool, 'heal-n5', t0, 'runpod'), TEST_NODE_SECRETS);
  // n6: closed properly.
  await appendLedgerEvent(db, provisioning(pool, 'heal-n6', t0), TEST_NODE_SECRETS);
  await appendLedgerEvent(
    db,
    {
      eventKey: `${pool}:heal-n6:terminated`,
      eventType: 'node_terminated',
      occurredAt: t0 + 60_000,
      poolId: pool,
      nodeId: 'heal-n6',
    },
    TEST_NODE_SECRETS,
  );

  const mock = testMockProvider();
  const activities = createNodeActivities({
    providers: { mock },
    logger: pino({ level: 'silent' }),
    ledger: { db, marks: TEST_NODE_SECRETS },
  });
  const before = Date.now();
  await activities.reconcileNodes({ poolId: pool, providers: ['mock', 'runpod'], knownNodeIds: ['heal-n4'] });
  await activities.reconcileNodes({ poolId: pool, providers: ['mock', 'runpod'], knownNodeIds: ['heal-n4'] });

  const rows = await ledgerRowsForPool(db, pool);
  const ended = (node: string) => rows.filter((r) => r.event_type === 'node_terminated' && r.node_id === node);
  assert.equal(ended('heal-n1').length, 1, 'written once, however often reconciliation runs');
  assert.equal(ended('heal-n1')[0].occurred_at.getTime(), t0 + 630_000, 'teardown time plus its grace period');
  assert.equal(ended('heal-n1')[0].details.reconciled, true);
  assert.equal(ended('heal-n1')[0].details.billedSeconds, 630);
  assert.equal(ended('heal-n2')[0].occurred_at.getTime(), t0 + 120_000, 'the recorded loss');
  assert.equal(ended('heal-n2')[0].details.endSource, 'node_lost');
  assert.ok(ended('heal-n3')[0].occurred_at.getTime() >= before, 'nothing recorded: the reconcile time');
  assert.equal(ended('heal-n3')[0].details.endSource, 'reconcile_time');
  assert.equal(Number(ended('heal-n3')[0].price_per_hour), 0.5, 'the lane of the provisioning row');
  assert.equal(ended('heal-n4').length, 0, 'a node the pool knows is left to the pool');
  assert.equal(ended('heal-n5').length, 0, 'a provider that could not be listed might still hold its node');
  assert.equal(ended('heal-n6').length, 1, 'a closed node is not closed twice');
  assert.equal((await verifyLedgerChain(db, DEFAULT_WORKSPACE, TEST_NODE_SECRETS)).ok, true);

  const analytics = await computeAnalytics(db, {
    workspaceId: DEFAULT_WORKSPACE,
    poolId: pool,
    from: new Date(t0 + 700_000),
    to: new Date(t0 + 800_000),
  });
  const billedNodes = analytics.totals.gpuSecondsBilled;
  // Only n3 (closed at the reconcile time, which is now) and n4/n5 (still open) can bill after n1's end.
  assert.equal(billedNodes, 300, 'n1 and n2 bill nothing after their healed end');
});

test('a node the provider still holds but the pool does not know is terminated first, then closed on the ledger', async () => {
  const db = database.db;
  const pool = asPoolKey('orphan');
  const mock = testMockProvider({ coldStartSeconds: 0 });
  try {
    await mock.provision({ poolId: pool, nodeId: 'orphan-n1', lane, laneIndex: 0, model: 'm' });
    await appendLedgerEvent(db, provisioning(pool, 'orphan-n1', t0), TEST_NODE_SECRETS);
    const activities = createNodeActivities({
      providers: { mock },
      logger: pino({ level: 'silent' }),
      ledger: { db, marks: TEST_NODE_SECRETS },
    });
    assert.deepEqual(await activities.reconcileNodes({ poolId: pool, providers: ['mock'], knownNodeIds: [] }), ['orphan-n1']);
    assert.deepEqual(await mock.list(pool), []);
    const closed = (await ledgerRowsForPool(db, pool)).filter((r) => r.event_type === 'node_terminated');
    assert.equal(closed.length, 1);
    assert.equal(closed[0].details.endSource, 'reconcile_time');
  } finally {
    await mock.terminateAll();
  }
});
