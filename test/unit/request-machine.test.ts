/**
 * The job machine's rules for front-door requests (a job whose attempt runs in the API process), named after
 * the rule; every step checks that its input is not mutated (test/helpers/job-machine-driver.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REQUEST_LEASE_MS } from '../../src/domain/front-door-protocol';
import { MAX_REQUEST_NODE_FAILURES } from '../../src/domain/job-machine';
import { grant, JobDriver, START } from '../helpers/job-machine-driver';

/** A request whose API holds its slot on n1. */
function running(): JobDriver {
  const d = JobDriver.request();
  d.send({ type: 'slotAsked', askId: 1 });
  d.now += 100;
  d.send({ type: 'placed', grant: grant(1, 'n1', 80) });
  return d;
}

test('request arrival: it tells its pool at once and waits for the API to ask for the slot; a grant answers the ask (in either order)', () => {
  const d = JobDriver.request();
  assert.deepEqual(d.told(), ['arrived:1']);
  assert.deepEqual(d.find('tellPool')?.message, { kind: 'arrived', arrival: { jobId: 'r1', attempt: 1, front: false, priority: 3 } });
  d.send({ type: 'slotAsked', askId: 1 });
  assert.deepEqual(d.last, [], 'the ask waits for a grant');
  d.send({ type: 'placed', grant: grant(1, 'n1', 80) });
  assert.deepEqual(d.find('answerSlot'), { type: 'answerSlot', askId: 1, grant: grant(1, 'n1', 80) });
  assert.equal(d.state.view.status, 'running');
  assert.equal(d.state.view.coldStartMs, 80);
  assert.equal(d.findAll('indexStatus', d.all).length, 0, 'a request’s status is not a search attribute');
  const early = JobDriver.request();
  early.send({ type: 'placed', grant: grant() });
  assert.equal(early.state.phase, 'queued', 'placed, not yet taken by the API');
  assert.equal(early.send({ type: 'slotAsked', askId: 7 }).length, 1);
  assert.equal(early.find('answerSlot')?.askId, 7);
});

test('request park timeout: no slot taken by then: the request leaves the pool expired, and its waiting ask is refused as a park timeout', () => {
  const d = JobDriver.request(30);
  d.send({ type: 'slotAsked', askId: 1 });
  d.fire();
  assert.equal(d.now, START + 30_000);
  assert.deepEqual(d.told(), ['withdrawn']);
  assert.deepEqual(d.find('refuseSlot'), { type: 'refuseSlot', askId: 1, message: 'no capacity within 30 s', errorType: 'ParkTimeout' });
  assert.equal(d.state.view.status, 'expired');
  d.send({ type: 'slotAsked', askId: 2 });
  assert.equal(d.find('refuseSlot')?.errorType, 'ParkTimeout', 'an ask that comes while the outcome is written is refused too');
});

test('request park timeout: a grant the API never takes (its process died before asking) does not hold the slot for ever', () => {
  const d = JobDriver.request(30);
  d.send({ type: 'placed', grant: grant() });
  d.fire();
  assert.deepEqual(d.told(), ['withdrawn']);
  assert.equal(d.state.view.status, 'expired');
});

test('request lease: renewals keep it; REQUEST_LEASE_MS without one ends it failed and gives the slot back', () => {
  const d = running();
  const firstCheck = d.now + REQUEST_LEASE_MS;
  assert.equal(d.wakeAt, firstCheck);
  d.now += 50_000;
  const renewedAt = d.now;
  d.send({ type: 'leaseRenewed' });
  assert.equal(d.wakeAt, firstCheck, 'a renewal does not move the timer');
  d.fire();
  assert.deepEqual(d.last, [], 'renewed since: not over');
  assert.equal(d.wakeAt, renewedAt + REQUEST_LEASE_MS, 'the next look is a lease after the renewal');
  d.fire();
  assert.deepEqual(d.told(), ['finished:1']);
  assert.equal(d.state.view.status, 'failed');
  assert.equal(d.state.view.error, 'the API process running the request stopped renewing its lease');
});

test('request end: the API’s report ends it with its status, time and usage; the slot goes back and one row is written', () => {
  const d = running();
  const outcome = {
    status: 'completed' as const,
    nodeId: 'n1',
    startedAt: START + 150,
    finishedAt: START + 900,
    usage: { promptTokens: 4, completionTokens: 9 },
  };
  d.send({ type: 'requestDone', outcome });
  assert.deepEqual(d.told(), ['finished:1']);
  assert.equal(d.state.view.status, 'completed');
  assert.equal(d.state.view.finishedAt, START + 900, 'the API’s clock of the end');
  assert.deepEqual(d.state.view.usage, outcome.usage);
  assert.deepEqual(d.find('recordOutcome'), { type: 'recordOutcome', status: 'completed' });
  assert.deepEqual(
    d.recorded().map((c) => c.type),
    [],
    'no delivery for a request',
  );
  assert.equal(d.state.phase, 'ended');
});

test('request end before it was placed (the client went while parked): withdrawn, not finished', () => {
  const d = JobDriver.request();
  d.send({ type: 'requestDone', outcome: { status: 'cancelled', finishedAt: START + 10, error: 'client closed' } });
  assert.deepEqual(d.told(), ['withdrawn']);
  assert.equal(d.state.view.status, 'cancelled');
});

test('request node failure: a node that failed before answering sends it to another slot, ahead of its priority; the third fails it', () => {
  const d = running();
  d.send({ type: 'slotAsked', askId: 2, failedNodeId: 'n1' });
  assert.deepEqual(d.told(), ['arrived:2:front']);
  const told = d.find('tellPool')?.message;
  assert.equal(told?.kind === 'arrived' && told.arrival.failedNodeId, 'n1');
  assert.equal(d.state.phase, 'queued');
  d.send({ type: 'slotAsked', askId: 3, failedNodeId: 'n9' });
  assert.deepEqual(d.told(), [], 'a node it does not hold: just another ask');
  d.send({ type: 'placed', grant: grant(2, 'n2') });
  assert.deepEqual(
    d.findAll('answerSlot').map((c) => c.askId),
    [2, 3],
  );
  for (let failed = 2; failed < MAX_REQUEST_NODE_FAILURES; failed++) {
    d.send({ type: 'slotAsked', askId: 10 + failed, failedNodeId: d.state.grant!.nodeId });
    d.send({ type: 'placed', grant: grant(failed + 1, `n${failed + 1}`) });
  }
  d.send({ type: 'slotAsked', askId: 99, failedNodeId: d.state.grant!.nodeId });
  assert.deepEqual(d.find('refuseSlot'), {
    type: 'refuseSlot',
    askId: 99,
    message: '3 nodes failed before answering',
    errorType: 'RequestFailed',
  });
});

test('request revocation: the pool lost its node: parked again (the API sees the failure and asks again), with the park deadline', () => {
  const d = running();
  d.send({ type: 'revoked', attempt: 2, reason: 'node lost' });
  assert.equal(d.state.phase, 'queued');
  assert.equal(d.state.grant, undefined);
  assert.equal(d.wakeAt, START + 30_000);
  d.send({ type: 'slotAsked', askId: 2 });
  d.send({ type: 'placed', grant: grant(2, 'n2') });
  assert.equal(d.find('answerSlot')?.grant.nodeId, 'n2');
});

test('request preemption is ignored (it is short and streams to a waiting client); a cancel ends a parked request, not a running one', () => {
  const r = running();
  assert.deepEqual(r.send({ type: 'preemptRequested', attempt: 1, reason: 'r', byJobId: 'x' }), []);
  assert.deepEqual(r.send({ type: 'cancelRequested', reason: 'client gone' }), [], 'the API stops it and reports');
  assert.equal(r.state.view.status, 'running');
  const parked = JobDriver.request();
  parked.send({ type: 'slotAsked', askId: 1 });
  parked.send({ type: 'cancelRequested' });
  assert.deepEqual(parked.told(), ['withdrawn']);
  assert.equal(parked.state.view.error, 'cancelled by the client');
  assert.deepEqual(parked.find('refuseSlot'), { type: 'refuseSlot', askId: 1, message: 'request cancelled', errorType: 'RequestOver' });
});
