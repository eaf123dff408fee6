/**
 * Least privilege in PostgreSQL (a real embedded server): the services' login cannot change the schema,
 * switch off the ledger's triggers, rewrite the ledger or the migration record, become another role, or run
 * programs; the embedded database's passwords are random and kept 0600; a data folder from before generated
 * passwords is moved off the fixed one. A connection in use that the server closes does not crash the process.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { appendLedgerEvent } from '../../src/db/ledger';
import { APP_ROLE } from '../../src/db/roles';
import { asPoolKey } from '../../src/ids';
import { openDatabase } from '../../src/runtime';
import { freePort } from '../../src/stack/free-port';
import { startEmbeddedPostgres } from '../../src/stack/postgres';
import { startTestDatabase, type TestDatabase } from '../helpers/postgres';
import { TEST_NODE_SECRETS } from '../helpers/ledger-marks';

let database: TestDatabase;
before(async () => {
  database = await startTestDatabase();
});
after(async () => {
  await database?.close();
});

test("the services' role works its rows but cannot touch the schema, the triggers, the ledger's past or other roles", async () => {
  assert.equal(new URL(database.url).username, APP_ROLE);
  const { rows } = await database.db.query('SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user');
  assert.deepEqual(rows[0], { rolsuper: false, rolcreaterole: false, rolcreatedb: false });
  // What it is for: rows, the ledger's appends.
  await database.db.query("INSERT INTO workspaces (id, name, max_jobs_in_flight) VALUES ('roles-ws', 'roles', 5) ON CONFLICT DO NOTHING");
  await database.db.query("UPDATE workspaces SET name = 'renamed' WHERE id = 'roles-ws'");
  await appendLedgerEvent(
    database.db,
    {
      eventKey: 'roles:1',
      eventType: 'teardown_started',
      occurredAt: Date.now(),
      poolId: asPoolKey('roles'),
    },
    TEST_NODE_SECRETS,
  );
  // What it may not do.
  const refused: Array<[string, RegExp]> = [
    ['ALTER TABLE ledger DISABLE TRIGGER ledger_append_only', /must be owner/],
    ['ALTER TABLE ledger DISABLE TRIGGER ALL', /must be owner/],
    ['DROP TRIGGER ledger_chain ON ledger', /must be owner/],
    ['CREATE TABLE stolen (x text)', /permission denied/],
    ["UPDATE ledger SET details = '{}'::jsonb", /permission denied/],
    ['DELETE FROM ledger', /permission denied/],
    ['TRUNCATE ledger', /permission denied/],
    ['DELETE FROM schema_migrations', /permission denied/],
    ["INSERT INTO schema_migrations (version, name) VALUES (999, 'x')", /permission denied/],
    [
      'CREATE OR REPLACE FUNCTION ledger_chain() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$',
      /must be owner|permission denied/,
    ],
    ["COPY (SELECT 1) TO PROGRAM 'id'", /permission denied|must be superuser|pg_execute_server_program/],
    ['SET ROLE zeropool', /permission denied/],
    ["CREATE ROLE intruder LOGIN PASSWORD 'x'", /permission denied/],
  ];
  for (const [sql, error] of refused) await assert.rejects(database.db.query(sql), error, sql);
  // And the triggers are still on.
  const triggers = await database.ownerDb.query(
    "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ledger'::regclass AND NOT tgisinternal ORDER BY tgname",
  );
  assert.ok(triggers.rows.length >= 3 && triggers.rows.every((t) => t.tgenabled === 'O'), JSON.stringify(triggers.rows));
});

test('a process without the owner login refuses to start on an old schema, naming the fix', async () => {
  await database.ownerDb.query('CREATE DATABASE roles_old');
  const ownerUrl = new URL(database.ownerUrl);
  ownerUrl.pathname = '/roles_old';
  const appUrl = new URL(database.url);
  appUrl.pathname = '/roles_old';
  await database.ownerDb.query(`GRANT CONNECT ON DATABASE roles_old TO ${APP_ROLE}`);
  await assert.rejects(openDatabase(appUrl.toString()), /schema is at version 0, this release needs \d+.*DATABASE_OWNER_URL/s);
  const db = await openDatabase(appUrl.toString(), ownerUrl.toString());
  try {
    assert.equal((await db.query('SELECT count(*)::int AS n FROM ledger')).rows[0].n, 0);
  } finally {
    await db.end();
  }
});

test('embedded passwords: random, kept 0600; a data folder with the old fixed password is rotated off it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-roles-'));
  chmodSync(dir, 0o755);
  try {
    const port = await freePort();
    const first = await startEmbeddedPostgres(dir, port);
    const ownerFile = path.join(dir, 'postgres-owner.password');
    for (const file of [ownerFile, path.join(dir, 'postgres-app.password')]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is 0600`);
      assert.ok(readFileSync(file, 'utf8').trim().length >= 24);
    }
    assert.notEqual(new URL(first.ownerUrl).password, 'zeropool');
    // Logins are proven by SCRAM, never a password in clear; a folder from before (`password`) is moved to it.
    const hba = path.join(dir, 'postgres', 'pg_hba.conf');
    assert.match(readFileSync(hba, 'utf8'), /^host\s.*\sscram-sha-256\s*$/m);
    assert.doesNotMatch(readFileSync(hba, 'utf8'), /^[^#].*\spassword\s*$/m);
    // Make it look like a folder from before: the fixed password and no password file.
    const owner = new pg.Client({ connectionString: first.ownerUrl });
    await owner.connect();
    await owner.query("ALTER ROLE zeropool PASSWORD 'zeropool'");
    await owner.end();
    unlinkSync(ownerFile);
    await first.stop();
    writeFileSync(hba, readFileSync(hba, 'utf8').replaceAll('scram-sha-256', 'password'));
    const second = await startEmbeddedPostgres(dir, port);
    try {
      const rotated = readFileSync(ownerFile, 'utf8').trim();
      assert.notEqual(rotated, 'zeropool');
      const stale = new pg.Client({ connectionString: `postgres://zeropool:zeropool@127.0.0.1:${port}/zeropool` });
      await assert.rejects(stale.connect(), /password authentication failed/);
      const fresh = new pg.Client({ connectionString: second.ownerUrl });
      await fresh.connect();
      await fresh.end();
      assert.doesNotMatch(readFileSync(hba, 'utf8'), /^[^#].*\spassword\s*$/m, 'the old folder authenticates by SCRAM now');
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a connection in use that PostgreSQL closes (a restart) fails its query, does not crash the process, and is not lent again', async () => {
  const { db, ownerDb } = database;
  const client = await db.connect();
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const ended = new Promise((resolve) => client.once('end', resolve));
  // Unheard, the checked-out client's 'error' is an uncaught exception (the chaos run's worker died of it).
  await ownerDb.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
  await ended;
  await assert.rejects(client.query('SELECT 1'));
  client.release();
  const after = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  assert.notEqual(after.rows[0].pid, rows[0].pid);
});
