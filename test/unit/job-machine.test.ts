/**
 * The job machine's rules for jobs (src/domain/job-machine.ts), named after the rule and driven by hand: every
 * step checks that the state it was given is not mutated (test/helpers/job-machine-driver.ts). Requests:
 * request-machine.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARRIVAL_CONFIRM_MS } from '../../src/domain/job-machine';
import type { AttemptEnd } from '../../src/domain/job-protocol';
import { grant, JobDriver, START } from '../helpers/job-machine-driver';

const ok: AttemptEnd = {
  ok: true,
  result: { text: 'done', usage: { promptTokens: 3, completionTokens: 5 }, startedAt: START + 10, finishedAt: START + 510 },
};
const failure = (message = 'node answered 500', retryable = true, snapshot?: { completionTokens: number; text: string }): AttemptEnd => ({
  ok: false,
  message,
  retryable,
  ...(snapshot ? { snapshot: { attempt: 1, ...snapshot, at: START, source: 'heartbeat' as const } } : {}),
});

/** A job running its first attempt on n1. */
function running(overrides = {}): JobDriver {
  const d = JobDriver.job(overrides);
  d.now += 200;
  d.send({ type: 'placed', grant: grant(1, 'n1', 150) });
  return d;
}

test('arrival: a job the API did not announce tells its pool at once (a failure to reach it must end the job); it then waits until its TTL', () => {
  const d = JobDriver.job();
  assert.deepEqual(d.told(), ['arrived:1']);
  assert.equal(d.find('tellPool')?.mustReach, true);
  assert.deepEqual(d.find('tellPool')?.message, { kind: 'arrived', arrival: { jobId: 'j1', attempt: 1, front: false, priority: 2 } });
  assert.equal(d.state.phase, 'queued');
  assert.equal(d.wakeAt, START + 60_000, 'the deadline is the TTL from the workflow start');
});

test('arrival: a job submitted before priorities existed announces no priority (its arrivals stay as they were)', () => {
  const d = JobDriver.job({ priority: undefined });
  assert.equal('priority' in (d.find('tellPool')!.message as { arrival: object }).arrival, false);
  assert.equal(d.state.view.priority, 3, 'its view shows the default');
});

test('arrival window: a job the API announced waits a window for a slot, then announces itself too (a lost signal is healed)', () => {
  const d = JobDriver.job({}, true);
  assert.deepEqual(d.told(), [], 'nothing sent: the API told the pool');
  assert.equal(d.state.phase, 'confirming');
  assert.equal(d.wakeAt, START + ARRIVAL_CONFIRM_MS);
  d.fire();
  assert.deepEqual(d.told(), ['arrived:1']);
  assert.equal(d.state.phase, 'queued');
});

test('arrival window vs placement (the replay divergence of 2026-11): a grant in the window ends it, in either order of one activation', () => {
  // The grant is seen first: no announcement, the job runs.
  const first = JobDriver.job({}, true);
  first.now = START + ARRIVAL_CONFIRM_MS;
  first.send({ type: 'placed', grant: grant() });
  assert.ok(first.find('runAttempt'));
  first.send({ type: 'timerFired' });
  assert.deepEqual(first.told(), [], 'the window ended with the grant: no announcement');
  // The window's timer is seen first: the job announces (a duplicate the pool ignores), then runs on the grant.
  const second = JobDriver.job({}, true);
  second.fire();
  assert.deepEqual(second.told(), ['arrived:1']);
  second.send({ type: 'placed', grant: grant() });
  assert.ok(second.find('runAttempt'));
  assert.deepEqual(first.state.view.nodeId, second.state.view.nodeId);
});

test('arrival: a first arrival that cannot reach the pool fails the job, once, saying so', () => {
  const d = JobDriver.job();
  d.send({ type: 'poolUnreachable', error: 'workflow not found' });
  assert.equal(d.state.view.status, 'failed');
  assert.match(d.state.view.error!, /pool p is not running: workflow not found/);
  assert.equal(d.find('recordOutcome')?.status, 'failed');
  d.recorded();
  assert.equal(d.state.phase, 'ended');
});

test('placement: the grant of the current attempt runs it at once (node, queue time, cold start, status); any other grant is ignored', () => {
  const d = JobDriver.job();
  d.now += 200;
  assert.deepEqual(d.send({ type: 'placed', grant: grant(2) }), [], 'a grant for another attempt');
  const commands = d.send({
    type: 'placed',
    grant: { ...grant(1, 'n1', 150), coldStart: { rung: 'cold', capacityMs: 0, providerMs: 50, bootMs: 100 } },
  });
  assert.deepEqual(d.find('runAttempt')?.grant.nodeId, 'n1');
  assert.deepEqual(d.find('indexStatus'), { type: 'indexStatus', status: 'running' });
  const view = d.state.view;
  assert.equal(view.status, 'running');
  assert.equal(view.placedAt, START + 200);
  assert.equal(view.queueMs, 300, 'from the API accepting it');
  assert.equal(view.coldStartMs, 150);
  assert.equal(view.coldStartPhases?.rung, 'cold');
  assert.equal(commands.length, 2);
  assert.deepEqual(d.send({ type: 'placed', grant: grant(1, 'n2') }), [], 'a second grant is not taken');
  assert.equal(d.wakeAt, undefined, 'a running job has no deadline: the TTL bounds the wait, not the run');
});

test('TTL: no grant by the deadline: the job leaves the pool and expires', () => {
  const d = JobDriver.job({ ttlSeconds: 10 });
  d.fire();
  assert.equal(d.now, START + 10_000);
  assert.deepEqual(d.told(), ['withdrawn']);
  assert.equal(d.state.view.status, 'expired');
  assert.equal(d.state.view.error, 'not placed within ttl of 10 s');
  assert.deepEqual(d.find('recordOutcome'), { type: 'recordOutcome', status: 'expired', error: 'not placed within ttl of 10 s' });
});

test('TTL vs grant (the replay divergence of 2026-11): a grant seen before the deadline’s timer runs; one seen after it is too late', () => {
  const placedFirst = JobDriver.job({ ttlSeconds: 10 });
  placedFirst.now = START + 10_000;
  placedFirst.send({ type: 'placed', grant: grant() });
  placedFirst.send({ type: 'timerFired' });
  assert.equal(placedFirst.state.view.status, 'running', 'the grant decides: the job runs');
  const timerFirst = JobDriver.job({ ttlSeconds: 10 });
  timerFirst.fire();
  assert.equal(timerFirst.state.view.status, 'expired');
  assert.deepEqual(timerFirst.send({ type: 'placed', grant: grant() }), [], 'the late grant is not taken (the pool was told withdrawn)');
});

test('cancel: a waiting job leaves at once; a running one stops its attempt, then leaves cancelled with the run recorded', () => {
  const waiting = JobDriver.job();
  waiting.send({ type: 'cancelRequested', reason: 'user' });
  assert.deepEqual(waiting.told(), ['withdrawn']);
  assert.equal(waiting.state.view.status, 'cancelled');
  assert.equal(waiting.state.view.error, 'user');

  const d = running();
  d.send({ type: 'cancelRequested' });
  assert.deepEqual(
    d.last.map((c) => c.type),
    ['stopAttempt'],
  );
  d.now += 100;
  d.send({ type: 'attemptEnded', attempt: 1, end: failure('cancelled') });
  assert.deepEqual(d.told(), ['withdrawn']);
  assert.equal(d.state.view.status, 'cancelled');
  assert.equal(d.state.view.error, 'cancelled by request');
  assert.deepEqual(d.state.view.runs, [{ nodeId: 'n1', attempt: 1, startedAt: START + 200, endedAt: START + 300, outcome: 'cancelled' }]);
});

test('completion: the pool gets the slot back, the view the result, and one outcome is written; then the delivery child, then the end', () => {
  const d = running({ callbackUrl: 'http://cb' });
  d.now += 600;
  d.send({ type: 'attemptEnded', attempt: 1, end: ok });
  assert.deepEqual(d.told(), ['finished:1']);
  const view = d.state.view;
  assert.equal(view.status, 'completed');
  assert.deepEqual(view.result, { text: 'done' });
  assert.equal(view.runMs, 500);
  assert.equal(view.finishedAt, START + 800);
  assert.deepEqual(d.find('recordOutcome'), { type: 'recordOutcome', status: 'completed' });
  assert.equal(d.state.phase, 'ending');
  assert.deepEqual(d.send({ type: 'cancelRequested' }), [], 'a terminal job takes nothing more');
  assert.deepEqual(
    d.recorded().map((c) => c.type),
    ['deliver'],
  );
  assert.equal(d.state.phase, 'ended');
});

test('retry: a retryable failure queues the next attempt ahead of its priority after a backoff, avoiding the failed node', () => {
  const d = running();
  d.now += 1000;
  d.send({ type: 'attemptEnded', attempt: 1, end: failure() });
  const arrival = d.find('tellPool')?.message;
  assert.deepEqual(arrival, {
    kind: 'arrived',
    arrival: { jobId: 'j1', attempt: 2, front: true, failedNodeId: 'n1', notBefore: d.state.view.retryAt, priority: 2 },
  });
  assert.ok(d.state.view.retryAt! > d.now, 'the pool holds the place until the backoff ends');
  assert.equal(d.state.view.status, 'queued');
  assert.equal(d.state.view.failures, 1);
  d.send({ type: 'placed', grant: grant(2, 'n2') });
  assert.equal(d.find('runAttempt')?.grant.nodeId, 'n2');
  assert.equal(d.state.view.retryAt, undefined);
});

test('retry: a non-retryable failure, or the last allowed attempt, fails the job and frees its slot', () => {
  const bad = running();
  bad.send({ type: 'attemptEnded', attempt: 1, end: failure('payload refused', false) });
  assert.deepEqual(bad.told(), ['finished:1']);
  assert.equal(bad.state.view.error, 'payload refused');
  const spent = running({ maxAttempts: 1 });
  spent.send({ type: 'attemptEnded', attempt: 1, end: failure() });
  assert.equal(spent.state.view.status, 'failed');
  assert.equal(spent.state.view.error, 'gave up after 1 failed attempts: node answered 500');
});

test('preemption: the attempt stops, its progress is kept, the job queues again (no retry used) and resumes from the snapshot', () => {
  const d = running({ notify: true });
  assert.deepEqual(d.send({ type: 'preemptRequested', attempt: 2, reason: 'other attempt', byJobId: 'x' }), [], 'another attempt’s');
  const stop = d.send({ type: 'preemptRequested', attempt: 1, reason: 'priority 1 job', byJobId: 'hi' });
  assert.deepEqual(
    stop.map((c) => c.type),
    ['stopAttempt'],
  );
  d.send({ type: 'attemptEnded', attempt: 1, end: failure('cancelled', true, { completionTokens: 40, text: 'partial' }) });
  assert.deepEqual(d.told(), ['arrived:2']);
  assert.equal(d.find('notify')?.event, 'preempted');
  assert.equal(d.state.view.preemptions, 1);
  assert.equal(d.state.view.failures, undefined, 'no retry used');
  assert.equal(d.state.view.progress?.completionTokens, 40);
  assert.equal(d.state.view.runs?.[0].outcome, 'preempted');
  d.send({ type: 'placed', grant: grant(2, 'n2') });
  assert.deepEqual(d.find('runAttempt')?.resume, { completionTokens: 40, text: 'partial' });
  assert.equal(d.find('notify')?.event, 'resumed');
});

test('preemption before the request went out: the grant is given back at once, nothing to stop at the node', () => {
  const d = JobDriver.job();
  d.send({ type: 'preemptRequested', attempt: 1, reason: 'r', byJobId: 'hi' });
  d.send({ type: 'placed', grant: grant() });
  assert.equal(d.find('runAttempt'), undefined);
  assert.deepEqual(d.told(), ['arrived:2']);
});

test('revocation: the pool lost the node and requeued the job: the attempt stops, counts as a failure, and the next grant runs', () => {
  const d = running();
  d.send({ type: 'revoked', attempt: 1, reason: 'old' });
  assert.deepEqual(d.last, [], 'a revocation of no newer attempt is ignored');
  d.send({ type: 'revoked', attempt: 2, reason: 'node lost' });
  assert.equal(d.find('stopAttempt')?.type, 'stopAttempt');
  // The new grant comes before the old attempt has stopped at the node.
  d.send({ type: 'placed', grant: grant(2, 'n2') });
  assert.equal(d.find('runAttempt'), undefined, 'not while the old attempt still runs');
  d.send({ type: 'attemptEnded', attempt: 1, end: failure('cancelled') });
  assert.deepEqual(d.told(), [], 'the pool requeued it itself');
  assert.equal(d.state.view.failures, 1);
  assert.equal(d.state.view.runs?.[0].outcome, 'revoked');
  assert.equal(d.find('runAttempt')?.grant.nodeId, 'n2');
});

test('revocation: at maxAttempts the job fails (node lost) and leaves the pool', () => {
  const d = running({ maxAttempts: 1 });
  d.send({ type: 'revoked', attempt: 2, reason: 'node lost' });
  d.send({ type: 'attemptEnded', attempt: 1, end: failure('cancelled') });
  assert.deepEqual(d.told(), ['withdrawn']);
  assert.equal(d.state.view.error, 'gave up after 1 failed attempts: node lost');
});

test('progress: a node’s report of the current attempt is kept (the later of two); one of another attempt is not', () => {
  const d = running();
  d.send({ type: 'progressReported', attempt: 1, completionTokens: 12, text: 'abc', at: START + 300 });
  assert.equal(d.state.view.progress?.completionTokens, 12);
  d.send({ type: 'progressReported', attempt: 3, completionTokens: 99, at: START + 400 });
  assert.equal(d.state.view.progress?.completionTokens, 12);
});

test('the outcome cannot be stored (a lone surrogate in the text): the job ends failed, once, without the text, and still delivers', () => {
  const d = running({ notify: true });
  d.send({ type: 'attemptEnded', attempt: 1, end: ok });
  d.send({ type: 'outcomeNotStorable', error: 'invalid byte sequence' });
  assert.equal(d.state.view.status, 'failed');
  assert.equal(d.state.view.result, undefined);
  assert.match(d.state.view.error!, /completed outcome could not be stored \(invalid byte sequence\)/);
  assert.deepEqual(
    d.last.map((c) => c.type),
    ['indexStatus', 'recordOutcome', 'deliver'],
  );
  assert.equal(d.find('recordOutcome')?.bestEffort, true);
  assert.equal(d.state.phase, 'ended');
});

test('the outcome row refused (its key holds another event): logged loudly, the job still ends as decided', () => {
  const d = running();
  d.send({ type: 'attemptEnded', attempt: 1, end: ok });
  d.send({ type: 'outcomeRefused', error: 'key conflict' });
  assert.equal(d.find('log')?.level, 'error');
  assert.equal(d.state.view.status, 'completed');
  assert.equal(d.state.phase, 'ended');
  assert.deepEqual(d.send({ type: 'placed', grant: grant(1) }), [], 'an ended job takes nothing');
});

test('status attribute: written only when it changes, and never for a server without search attributes', () => {
  const d = running();
  d.send({ type: 'attemptEnded', attempt: 1, end: ok });
  assert.deepEqual(
    d.findAll('indexStatus', d.all).map((c) => c.status),
    ['running', 'completed'],
    'queued was set by the API at the start',
  );
  const plain = running({ indexed: false });
  assert.equal(plain.findAll('indexStatus', plain.all).length, 0);
});
