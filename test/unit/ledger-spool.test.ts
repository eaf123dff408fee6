import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import type { LedgerEvent } from '../../src/db/ledger';
import { ledgerRowsForPool } from '../../src/db/ledger';
import { LedgerBatch } from '../../src/api/ledger-batch';
import { LedgerSpool } from '../../src/api/ledger-spool';
import { asPoolKey } from '../../src/ids';
import { startTestDatabase, type TestDatabase } from '../helpers/postgres';
import { TEST_NODE_SECRETS } from '../helpers/ledger-marks';

const log = pino({ level: 'silent' });
let database: TestDatabase;
before(async () => {
  database = await startTestDatabase();
});
after(async () => {
  await database?.close();
});

const freshDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'zeropool-spool-'));
const row = (id: string, pool = 'spool-unit'): LedgerEvent => ({
  eventKey: `${id}:completed`,
  eventType: 'job_completed',
  occurredAt: Date.now(),
  poolId: asPoolKey(pool),
  jobId: id,
  nodeId: `${pool}-n1`,
  details: { kind: 'request', fastPath: true, usage: { promptTokens: 1, completionTokens: 2 } },
});
/** Leaves segments as a process that is gone would: an `.alive` naming a pid that does not exist here. */
const deadOwner = (dir: string, owner: string, lines: string[], touchedAt = new Date()) => {
  fs.writeFileSync(path.join(dir, `${owner}.alive`), JSON.stringify({ host: os.hostname(), pid: 2 ** 22 + 17 }));
  fs.utimesSync(path.join(dir, `${owner}.alive`), touchedAt, touchedAt);
  fs.writeFileSync(path.join(dir, `${owner}.0.jsonl`), lines.join('\n'));
};

test('ledger spool: a dead owner\u2019s segments are claimed once, a torn last line is counted and skipped; a live owner\u2019s are left alone', () => {
  const dir = freshDir();
  deadOwner(dir, 'gone-1-aaaa', [JSON.stringify(row('r1')), JSON.stringify(row('r2')), '{"eventKey":"r3:comp']);
  const live = new LedgerSpool(dir, log);
  live.append(row('r4'));
  const claimer = new LedgerSpool(dir, log);
  const claimed = claimer.claimOrphans();
  assert.equal(claimed.length, 1, 'only the dead owner\u2019s segment');
  assert.deepEqual(
    claimed[0]!.rows.map((r) => r.jobId),
    ['r1', 'r2'],
  );
  assert.equal(claimed[0]!.torn, 1);
  assert.ok(claimed[0]!.file.includes(claimer.owner), 'renamed into the claimer\u2019s name');
  assert.ok(!fs.existsSync(path.join(dir, 'gone-1-aaaa.alive')), 'the dead owner\u2019s alive file goes');
  assert.deepEqual(new LedgerSpool(dir, log).claimOrphans(), [], 'nothing is claimed twice; the live owner keeps its rows');
});

test('ledger spool: another host\u2019s owner counts as dead only once its alive file is stale', () => {
  const dir = freshDir();
  const otherHost = (owner: string, touchedAt: Date) => {
    fs.writeFileSync(path.join(dir, `${owner}.alive`), JSON.stringify({ host: 'another-host', pid: 1 }));
    fs.utimesSync(path.join(dir, `${owner}.alive`), touchedAt, touchedAt);
    fs.writeFileSync(path.join(dir, `${owner}.0.jsonl`), `${JSON.stringify(row(owner))}\n`);
  };
  otherHost('fresh-1-bbbb', new Date());
  otherHost('stale-1-cccc', new Date(Date.now() - 120_000));
  const claimed = new LedgerSpool(dir, log).claimOrphans();
  assert.deepEqual(
    claimed.flatMap((c) => c.rows.map((r) => r.jobId)),
    ['stale-1-cccc'],
  );
});

test('ledger batch over a spool: written rows\u2019 segments go; rows PostgreSQL refused stay on disk and the next process writes them', async () => {
  const dir = freshDir();
  // A real PostgreSQL client pointed where nothing listens: every write fails.
  const unreachable = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:9/none', connectionTimeoutMillis: 500 });
  unreachable.on('error', () => undefined);
  const failing = new LedgerBatch(unreachable, TEST_NODE_SECRETS, log, { spool: new LedgerSpool(dir, log), maxDelayMs: 10 });
  failing.add(row('b1'));
  failing.add(row('b2'));
  await failing.flush();
  assert.equal(failing.written, 0);
  const held = fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  assert.ok(held.length >= 1, 'the refused rows are still on disk');
  await failing.close();
  await unreachable.end();
  assert.ok(
    fs.readdirSync(dir).some((f) => f.endsWith('.alive')),
    'closed with rows unwritten: its files stay for the next process',
  );

  // The next process on this folder (the same host, a pid that no longer runs: rewrite the alive file so).
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.alive')))
    fs.writeFileSync(path.join(dir, file), JSON.stringify({ host: os.hostname(), pid: 2 ** 22 + 17 }));
  const next = new LedgerBatch(database.db, TEST_NODE_SECRETS, log, { spool: new LedgerSpool(dir, log), maxDelayMs: 10 });
  assert.equal(next.recovered, 2);
  next.add(row('b3'));
  await next.flush();
  const rows = (await ledgerRowsForPool(database.db, 'spool-unit', 'default')).map((r) => r.job_id).sort();
  assert.deepEqual(rows, ['b1', 'b2', 'b3']);
  const left = fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  assert.equal(left.length, 1, `only the open segment is left: ${left.join(', ')}`);
  await next.close();
  assert.deepEqual(fs.readdirSync(dir), [], 'closed with everything written: nothing left');
});
