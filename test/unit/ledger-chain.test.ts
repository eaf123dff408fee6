import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { appendLedgerEvent, appendLedgerEvents, verifyLedgerChain, type LedgerEvent } from '../../src/db/ledger';
import { nodeSecrets } from '../../src/secrets/node-secrets';
import { migrate } from '../../src/db/schema';
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

const event = (key: string, poolKey: string, extra: Partial<LedgerEvent> = {}): LedgerEvent => ({
  eventKey: key,
  eventType: 'node_provisioning',
  occurredAt: 1_700_000_000_000,
  poolId: asPoolKey(poolKey),
  nodeId: `${poolKey}-n1`,
  lane: { provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 0.45 },
  details: { laneIndex: 0 },
  ...extra,
});

/** Changes a row behind the append-only trigger's back, as the schema's owner (not the services' role) could. */
async function tamper(sql: string, params: unknown[]): Promise<void> {
  const client = await database.ownerDb.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE ledger DISABLE TRIGGER ledger_append_only');
    await client.query(sql, params);
    await client.query('ALTER TABLE ledger ENABLE TRIGGER ledger_append_only');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

test('each workspace has its own hash chain; rows carry workspace, pool and node ids', async () => {
  for (let i = 0; i < 5; i++) await appendLedgerEvent(database.db, event(`a${i}`, 'alpha.p'), TEST_NODE_SECRETS);
  for (let i = 0; i < 3; i++) await appendLedgerEvent(database.db, event(`b${i}`, 'beta.p'), TEST_NODE_SECRETS);
  // A repeated key writes nothing and leaves no hole in the chain.
  assert.equal(await appendLedgerEvent(database.db, event('a1', 'alpha.p'), TEST_NODE_SECRETS), false);
  const rows = await database.db.query(
    "SELECT workspace_id, pool_id, node_id, seq FROM ledger WHERE workspace_id IN ('alpha', 'beta') ORDER BY workspace_id, seq",
  );
  assert.deepEqual(
    rows.rows.map((r) => `${r.workspace_id}/${r.pool_id}/${r.seq}`),
    ['alpha/p/1', 'alpha/p/2', 'alpha/p/3', 'alpha/p/4', 'alpha/p/5', 'beta/p/1', 'beta/p/2', 'beta/p/3'],
  );
  assert.equal(rows.rows[0].node_id, 'alpha.p-n1');
  const alpha = await verifyLedgerChain(database.db, 'alpha', TEST_NODE_SECRETS);
  assert.equal(alpha.ok, true);
  assert.equal(alpha.rows, 5);
  assert.match(alpha.headHash ?? '', /^[0-9a-f]{64}$/);
  assert.equal((await verifyLedgerChain(database.db, 'beta', TEST_NODE_SECRETS)).rows, 3);
});

test('concurrent writers of one workspace still form one unbroken chain', async () => {
  await Promise.all(Array.from({ length: 40 }, (_, i) => appendLedgerEvent(database.db, event(`c${i}`, 'gamma.p'), TEST_NODE_SECRETS)));
  const result = await verifyLedgerChain(database.db, 'gamma', TEST_NODE_SECRETS);
  assert.equal(result.ok, true, JSON.stringify(result.firstBroken));
  assert.equal(result.rows, 40);
});

test('verify names the first changed row, a removed row, and a row rewritten with a fresh hash', async () => {
  for (let i = 0; i < 6; i++)
    await appendLedgerEvent(database.db, event(`d${i}`, 'delta.p', { details: { laneIndex: 0, n: i } }), TEST_NODE_SECRETS);
  await tamper("UPDATE ledger SET price_per_hour = 0.01 WHERE event_key = 'd3'", []);
  let result = await verifyLedgerChain(database.db, 'delta', TEST_NODE_SECRETS);
  assert.equal(result.ok, false);
  assert.equal(result.firstBroken?.eventKey, 'd3');
  assert.match(result.firstBroken!.reason, /contents were changed/);
  assert.equal(result.rows, 3);

  // Rewriting the row's own hash as well: its writer mark no longer fits the changed price.
  await tamper("UPDATE ledger SET row_hash = ledger_row_digest(prev_hash, ledger) WHERE event_key = 'd3'", []);
  result = await verifyLedgerChain(database.db, 'delta', TEST_NODE_SECRETS);
  assert.equal(result.firstBroken?.eventKey, 'd3');
  assert.match(result.firstBroken!.reason, /writer mark does not match/);

  for (let i = 0; i < 4; i++) await appendLedgerEvent(database.db, event(`e${i}`, 'epsilon.p'), TEST_NODE_SECRETS);
  await tamper("DELETE FROM ledger WHERE event_key = 'e1'", []);
  result = await verifyLedgerChain(database.db, 'epsilon', TEST_NODE_SECRETS);
  assert.equal(result.firstBroken?.eventKey, 'e2');
  assert.match(result.firstBroken!.reason, /row 2 is missing/);
});

test('upgrading a database from before workspaces chains its old rows and keeps them in the default workspace', async () => {
  await database.ownerDb.query('CREATE DATABASE upgrade_check');
  const url = new URL(database.ownerUrl);
  url.pathname = '/upgrade_check';
  const old = new pg.Pool({ connectionString: url.toString() });
  try {
    await migrate(old, 1);
    await old.query(
      `INSERT INTO ledger (event_key, event_type, occurred_at, pool_id, node_id, price_per_hour) VALUES
       ('old1', 'node_provisioning', now(), 'demo', 'demo-n1', 0.45), ('old2', 'node_terminated', now(), 'demo', 'demo-n1', 0.45)`,
    );
    await old.query(`INSERT INTO pools (id, config) VALUES ('demo', '{"model":"m"}')`);
    await migrate(old);
    const pools = await old.query('SELECT workspace_id, id FROM pools');
    assert.deepEqual(pools.rows, [{ workspace_id: 'default', id: 'demo' }]);
    await appendLedgerEvent(old, event('new1', 'demo'), TEST_NODE_SECRETS);
    const result = await verifyLedgerChain(old, 'default', TEST_NODE_SECRETS);
    assert.equal(result.ok, true, JSON.stringify(result.firstBroken));
    assert.equal(result.rows, 3);
    await assert.rejects(old.query("UPDATE ledger SET pool_id = 'x'"), /append-only/);
  } finally {
    await old.end();
  }
});

test('an anchor kept outside the database catches a chain rewritten wholesale and a removed tail', async () => {
  for (let i = 0; i < 5; i++)
    await appendLedgerEvent(database.db, event(`z${i}`, 'zeta.p', { details: { laneIndex: 0, n: i } }), TEST_NODE_SECRETS);
  const anchored = await verifyLedgerChain(database.db, 'zeta', TEST_NODE_SECRETS);
  assert.equal(anchored.ok, true);
  const anchor = { seq: BigInt(anchored.rows), hash: anchored.headHash! };
  for (let i = 5; i < 7; i++)
    await appendLedgerEvent(database.db, event(`z${i}`, 'zeta.p', { details: { laneIndex: 0, n: i } }), TEST_NODE_SECRETS);
  assert.equal((await verifyLedgerChain(database.db, 'zeta', TEST_NODE_SECRETS, anchor)).ok, true, 'later rows keep the anchor valid');

  // The owner drops row 2 (a billable row), renumbers the rest and recomputes every hash after it: the chain is
  // consistent in itself and each remaining row keeps a valid writer mark (marks cover content, not position)...
  await tamper(
    `DO $$ DECLARE r ledger; prev TEXT; BEGIN
       DELETE FROM ledger WHERE workspace_id = 'zeta' AND seq = 2;
       -- In two steps: a unique index is checked row by row, so a shift in place can collide (in whatever order rows come).
       UPDATE ledger SET seq = -seq WHERE workspace_id = 'zeta' AND seq > 2;
       UPDATE ledger SET seq = -seq - 1 WHERE workspace_id = 'zeta' AND seq < 0;
       SELECT row_hash INTO prev FROM ledger WHERE workspace_id = 'zeta' AND seq = 1;
       FOR r IN SELECT * FROM ledger WHERE workspace_id = 'zeta' AND seq >= 2 ORDER BY seq LOOP
         r.prev_hash := prev;
         UPDATE ledger SET prev_hash = prev, row_hash = ledger_row_digest(prev, r) WHERE id = r.id;
         prev := ledger_row_digest(prev, r);
       END LOOP; END $$`,
    [],
  );
  assert.equal((await verifyLedgerChain(database.db, 'zeta', TEST_NODE_SECRETS)).ok, true, 'without an anchor a wholesale rewrite passes');
  // ...but not with the head kept outside.
  const caught = await verifyLedgerChain(database.db, 'zeta', TEST_NODE_SECRETS, anchor);
  assert.equal(caught.ok, false);
  assert.equal(caught.firstBroken?.seq, '5');
  assert.match(caught.firstBroken!.reason, /differs from the anchor/);

  // Cutting the chain short before the anchor's row is caught too.
  await tamper("DELETE FROM ledger WHERE workspace_id = 'zeta' AND seq >= 4", []);
  const cut = await verifyLedgerChain(database.db, 'zeta', TEST_NODE_SECRETS, { seq: 5n, hash: anchor.hash });
  assert.equal(cut.ok, false);
  assert.match(cut.firstBroken!.reason, /ends at row 3, before the anchor's row 5/);
});

test('a row appended with the database login alone (no node secret key) is named by verify; a copied mark does not fit', async () => {
  for (let i = 0; i < 3; i++)
    await appendLedgerEvent(database.db, event(`m${i}`, 'mu.p', { details: { laneIndex: 0, n: i } }), TEST_NODE_SECRETS);
  assert.equal((await verifyLedgerChain(database.db, 'mu', TEST_NODE_SECRETS)).ok, true);
  // The services' own login, as a tenant's stolen DATABASE_URL would give: the chain trigger links the row.
  await database.db.query(
    `INSERT INTO ledger (event_key, event_type, occurred_at, workspace_id, pool_id, node_id, provider, market, gpu, price_per_hour)
     VALUES ('forged-1', 'node_provisioning', now(), 'mu', 'p', 'mu-n9', 'mock', 'on-demand', 'H100', 40)`,
  );
  let result = await verifyLedgerChain(database.db, 'mu', TEST_NODE_SECRETS);
  assert.equal(result.ok, false);
  assert.equal(result.firstBroken?.eventKey, 'forged-1');
  assert.match(result.firstBroken!.reason, /no writer mark/);
  assert.equal(result.rows, 3);

  // A mark copied from a genuine row onto a forged one.
  const genuine = await database.db.query("SELECT writer_mark FROM ledger WHERE event_key = 'm0'");
  await appendLedgerEvent(database.db, event('n0', 'nu.p'), TEST_NODE_SECRETS);
  await database.db.query(
    `INSERT INTO ledger (event_key, event_type, occurred_at, workspace_id, pool_id, node_id, details, writer_mark)
     VALUES ('forged-2', 'node_provisioning', to_timestamp(1700000000), 'nu', 'p', 'nu-n1', '{"laneIndex":0}', $1)`,
    [genuine.rows[0].writer_mark],
  );
  result = await verifyLedgerChain(database.db, 'nu', TEST_NODE_SECRETS);
  assert.equal(result.firstBroken?.eventKey, 'forged-2');
  assert.match(result.firstBroken!.reason, /writer mark does not match/);

  // Another key (another installation's, or a guess) does not verify zeropool's own rows.
  const other = await verifyLedgerChain(database.db, 'nu', nodeSecrets(Buffer.alloc(32, 1)));
  assert.equal(other.firstBroken?.eventKey, 'n0');

  // The list of rows from before marks is the owner's: the services' login cannot excuse its row.
  await assert.rejects(
    database.db.query("INSERT INTO ledger_unmarked (workspace_id, through_seq) VALUES ('mu', 100)"),
    /permission denied/,
  );
});

test('marks hold across what PostgreSQL does to a row: key order in details, prices at six decimals, fractional times, batched writes', async () => {
  const tricky = (key: string): LedgerEvent =>
    event(key, 'xi.p', {
      occurredAt: 1_700_000_000_123.6,
      lane: { provider: 'mock', market: 'spot', gpu: 'A10G', pricePerHour: 1 / 3 },
      details: { zeta: [1.5, { b: 'é', a: null }], alpha: 1e21, mid: 'x\u2028y', skipped: undefined, n: -0 },
    });
  await appendLedgerEvent(database.db, tricky('x1'), TEST_NODE_SECRETS);
  await appendLedgerEvents(database.db, [tricky('x2'), tricky('x3')], TEST_NODE_SECRETS);
  const result = await verifyLedgerChain(database.db, 'xi', TEST_NODE_SECRETS);
  assert.equal(result.ok, true, JSON.stringify(result.firstBroken));
  assert.equal(result.rows, 3);
});
