/**
 * What a job's end writes, attacked (issue 30). An outcome PostgreSQL cannot store (issue 30: a lone surrogate in a node's answer) fails its write once, as a
 * non-retryable failure the job workflow turns into a failed job, instead of retrying for ever with the job's
 * row stuck in `queued` and its in-flight place taken. Against a real PostgreSQL.
 */
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createCallbackActivities } from '../../src/activities/callbacks/deliver';
import { getCallbackState } from '../../src/db/callbacks';
import { parseAllowList } from '../../src/domain/callback-target';
import { after, before, test } from 'node:test';
import { createRecordActivities } from '../../src/activities/records';
import { insertJob } from '../../src/db/store';
import { OUTCOME_NOT_STORABLE } from '../../src/domain/job-policy';
import type { JobView } from '../../src/domain/types';
import { asPoolKey } from '../../src/ids';
import { startTestDatabase, type TestDatabase } from '../helpers/postgres';
import { TEST_NODE_SECRETS } from '../helpers/ledger-marks';

let database: TestDatabase;
before(async () => {
  database = await startTestDatabase();
});
after(async () => {
  await database?.close();
});

/** A queued job's record, the record activities, and the ledger row of its outcome by status. */
async function queuedJob(id: string) {
  const db = database.db;
  const view: JobView = { id, pool: asPoolKey('outcomes'), status: 'queued', attempt: 1, submittedAt: Date.now() };
  await insertJob(db, view);
  const records = createRecordActivities(db, TEST_NODE_SECRETS);
  const event = (status: string) => ({
    eventKey: `${id}:${status}`,
    eventType: status === 'completed' ? ('job_completed' as const) : ('job_failed' as const),
    occurredAt: Date.now(),
    poolId: view.pool,
    jobId: id,
  });
  return { db, view, records, event };
}

test('an outcome holding a lone surrogate is refused once, non-retryable, and writes nothing; the same job’s storable outcome then closes it', async () => {
  const id = '00000000-0000-4000-8000-0000000000a1';
  const { db, view, records, event } = await queuedJob(id);
  const poisoned = { ...view, status: 'completed' as const, finishedAt: Date.now(), result: { text: 'A\ud800B' } };
  await assert.rejects(records.recordJobOutcome({ view: poisoned, event: event('completed') }), (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, OUTCOME_NOT_STORABLE);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, /SQLSTATE 22/);
    return true;
  });
  const stored = await db.query('SELECT status FROM jobs WHERE id = $1', [id]);
  assert.equal(stored.rows[0].status, 'queued', 'the failed write left nothing half-done');
  assert.equal((await db.query('SELECT 1 FROM ledger WHERE job_id = $1', [id])).rowCount, 0);
  // What the job workflow does next: the job failed, with the reason and without the text.
  const failed = { ...view, status: 'failed' as const, finishedAt: Date.now(), error: 'the job’s completed outcome could not be stored' };
  await records.recordJobOutcome({ view: failed, event: event('failed') });
  assert.equal((await db.query('SELECT status FROM jobs WHERE id = $1', [id])).rows[0].status, 'failed');
});

test('a callback’s stored error says one of three words: a name that resolves to loopback is “refused”, never which address it resolved to; a URL with a lone surrogate is stored storable', async () => {
  const db = database.db;
  const id = '00000000-0000-4000-8000-0000000000a2';
  const view: JobView = {
    id,
    pool: asPoolKey('callbacks'),
    status: 'completed',
    attempt: 1,
    submittedAt: Date.now(),
    finishedAt: Date.now(),
  };
  await insertJob(db, view);
  const callbacks = createCallbackActivities({ db, allowList: parseAllowList([]), logger: pino({ level: 'silent' }) });
  const env = new MockActivityEnvironment();
  // localhost resolves (from /etc/hosts) to a loopback address: the target is refused.
  await assert.rejects(env.run(callbacks.deliverCallback, { view, url: 'https://localhost/hook\ud800' }), (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.type, 'CallbackRefused');
    assert.doesNotMatch(err.message, /127\.0\.0\.1|::1|resolves/);
    return true;
  });
  const state = await getCallbackState(db, id);
  assert.equal(state?.state, 'refused');
  assert.match(state?.lastError ?? '', /^callback refused/);
  assert.doesNotMatch(state?.lastError ?? '', /127\.0\.0\.1|::1|resolves|localhost/, 'no address, no name: not a probe');
  assert.equal(state?.url, 'https://localhost/hook\ufffd', 'the URL was stored, made storable');
});

test('an outcome write that cannot reach the pool (no client in its context) says so, so the job tells the pool itself; the outcome is written all the same', async () => {
  const id = '00000000-0000-4000-8000-0000000000b7';
  const { db, view, records, event: row } = await queuedJob(id);
  const done = { ...view, status: 'completed' as const, finishedAt: Date.now(), result: { text: 'ok' } };
  const event = row('completed');
  const env = new MockActivityEnvironment();
  assert.deepEqual(await env.run(records.recordJobOutcome, { view: done, event, release: { attempt: 1 } }), { poolTold: false });
  assert.equal((await db.query('SELECT status FROM jobs WHERE id = $1', [id])).rows[0].status, 'completed');
  assert.equal((await db.query('SELECT 1 FROM ledger WHERE event_key = $1', [event.eventKey])).rowCount, 1);
  // Without a slot to give back nothing is sent, and the answer says the pool was not told.
  assert.deepEqual(await env.run(records.recordJobOutcome, { view: done, event }), { poolTold: false });
});
