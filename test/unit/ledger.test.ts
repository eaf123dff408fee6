import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { appendLedgerEvent, ledgerRowsForPool } from '../../src/db/ledger';
import { createRecordActivities } from '../../src/activities/records';
import { startTestDatabase, type TestDatabase } from '../helpers/postgres';
import { asPoolKey } from '../../src/ids';
import { TEST_NODE_SECRETS } from '../helpers/ledger-marks';

let database: TestDatabase;
before(async () => {
  database = await startTestDatabase();
});
after(async () => {
  await database?.close();
});

test('ledger writes are idempotent by event key (a retried activity adds no second row)', async () => {
  const event = {
    eventKey: 'p1:n1:provisioning',
    eventType: 'node_provisioning' as const,
    occurredAt: 1_700_000_000_000,
    poolId: asPoolKey('p1'),
    nodeId: 'n1',
    lane: { provider: 'mock', market: 'spot' as const, gpu: 'A10G', pricePerHour: 0.45 },
  };
  assert.equal(await appendLedgerEvent(database.db, event, TEST_NODE_SECRETS), true);
  assert.equal(await appendLedgerEvent(database.db, event, TEST_NODE_SECRETS), false);
  const { recordLedgerEvent } = createRecordActivities(database.db, TEST_NODE_SECRETS);
  await recordLedgerEvent(event);
  const rows = await ledgerRowsForPool(database.db, 'p1');
  assert.equal(rows.length, 1);
  assert.equal(Number(rows[0].price_per_hour), 0.45);
  assert.equal(rows[0].occurred_at.getTime(), 1_700_000_000_000);
});

test('an event key already holding a different event is an error, never a silent drop (a re-created pool’s node would go unbilled)', async () => {
  const first = {
    eventKey: 'p9-n1:provisioning',
    eventType: 'node_provisioning' as const,
    occurredAt: 1_700_000_000_000,
    poolId: asPoolKey('p9'),
    nodeId: 'p9-n1',
    lane: { provider: 'mock', market: 'spot' as const, gpu: 'A10G', pricePerHour: 0.45 },
  };
  assert.equal(await appendLedgerEvent(database.db, first, TEST_NODE_SECRETS), true);
  assert.equal(await appendLedgerEvent(database.db, { ...first }, TEST_NODE_SECRETS), false, 'the same event again is a retried write');
  const later = { ...first, occurredAt: 1_700_000_600_000 };
  await assert.rejects(appendLedgerEvent(database.db, later, TEST_NODE_SECRETS), (err: Error) => {
    assert.equal(err.name, 'LedgerKeyConflict');
    assert.match(err.message, /p9-n1:provisioning already holds another event/);
    return true;
  });
  const { recordLedgerEvent } = createRecordActivities(database.db, TEST_NODE_SECRETS);
  await assert.rejects(recordLedgerEvent(later), (err: Error & { nonRetryable?: boolean }) => {
    assert.equal(err.nonRetryable, true, 'retrying would not help: the activity fails at once');
    return true;
  });
  assert.equal((await ledgerRowsForPool(database.db, 'p9')).length, 1);
});

test('PostgreSQL itself refuses UPDATE, DELETE and TRUNCATE on the ledger, to the services and to the owner', async () => {
  await appendLedgerEvent(
    database.db,
    {
      eventKey: 'p2:x',
      eventType: 'teardown_started',
      occurredAt: Date.now(),
      poolId: asPoolKey('p2'),
    },
    TEST_NODE_SECRETS,
  );
  // The services' role has no such privilege at all.
  await assert.rejects(database.db.query("UPDATE ledger SET pool_id = 'evil' WHERE pool_id = 'p2'"), /permission denied/);
  await assert.rejects(database.db.query("DELETE FROM ledger WHERE pool_id = 'p2'"), /permission denied/);
  await assert.rejects(database.db.query('TRUNCATE ledger'), /permission denied/);
  // Even the owner meets the append-only triggers.
  await assert.rejects(database.ownerDb.query("UPDATE ledger SET pool_id = 'evil' WHERE pool_id = 'p2'"), /append-only/);
  await assert.rejects(database.ownerDb.query("DELETE FROM ledger WHERE pool_id = 'p2'"), /append-only/);
  await assert.rejects(database.ownerDb.query('TRUNCATE ledger'), /append-only/);
  assert.equal((await ledgerRowsForPool(database.db, 'p2')).length, 1);
});

test('a job outcome and its ledger row are written together, and a terminal record is never overwritten', async () => {
  const { recordJobOutcome } = createRecordActivities(database.db, TEST_NODE_SECRETS);
  const view = {
    id: '11111111-1111-1111-1111-111111111111',
    pool: asPoolKey('p3'),
    status: 'completed' as const,
    attempt: 1,
    submittedAt: 1,
    finishedAt: 2,
  };
  const event = {
    eventKey: `${view.id}:completed`,
    eventType: 'job_completed' as const,
    occurredAt: 2,
    poolId: asPoolKey('p3'),
    jobId: view.id,
  };
  await recordJobOutcome({ view, event });
  await recordJobOutcome({ view: { ...view, status: 'failed' }, event });
  const stored = await database.db.query('SELECT status FROM jobs WHERE id = $1', [view.id]);
  assert.equal(stored.rows[0].status, 'completed');
  assert.equal((await ledgerRowsForPool(database.db, 'p3')).length, 1);
});

test('a job outcome whose ledger key already holds another event: the job is still made terminal, the conflict refused loudly, the first row kept', async () => {
  const { recordJobOutcome } = createRecordActivities(database.db, TEST_NODE_SECRETS);
  const view = {
    id: '22222222-2222-2222-2222-222222222222',
    pool: asPoolKey('p4'),
    status: 'completed' as const,
    attempt: 1,
    submittedAt: 1,
    finishedAt: 2,
  };
  const key = `${view.id}:completed`;
  // Another event already holds the key (say a reset run recorded the job with other figures).
  await appendLedgerEvent(
    database.db,
    {
      eventKey: key,
      eventType: 'job_completed',
      occurredAt: 1,
      poolId: asPoolKey('p4'),
      jobId: view.id,
      details: { attempt: 9 },
    },
    TEST_NODE_SECRETS,
  );
  await assert.rejects(
    recordJobOutcome({
      view,
      event: { eventKey: key, eventType: 'job_completed', occurredAt: 2, poolId: asPoolKey('p4'), jobId: view.id, details: { attempt: 1 } },
    }),
    (err: Error & { type?: string; nonRetryable?: boolean }) => err.type === 'LedgerKeyConflict' && err.nonRetryable === true,
  );
  const stored = await database.db.query('SELECT status FROM jobs WHERE id = $1', [view.id]);
  assert.equal(stored.rows[0]?.status, 'completed', 'the job record is terminal');
  const rows = await ledgerRowsForPool(database.db, 'p4');
  assert.equal(rows.length, 1);
  assert.equal((rows[0].details as { attempt: number }).attempt, 9, 'the first row stands');
});
