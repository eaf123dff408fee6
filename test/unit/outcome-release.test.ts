/**
 * Machine 2's folding of a job's slot release into its outcome write (src/workflows/outcome-release.ts), over the
 * commands the real job machine emits: every ending that frees a slot is carried by the write, and nothing else
 * changes (a retry's release, a best-effort rewrite, a withdrawal).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptEnd, JobMachineCommand } from '../../src/domain/job-protocol';
import { foldReleaseIntoOutcome } from '../../src/workflows/outcome-release';
import { grant, JobDriver, START } from '../helpers/job-machine-driver';

const ok: AttemptEnd = {
  ok: true,
  result: { text: 'done', usage: { promptTokens: 3, completionTokens: 5 }, startedAt: START + 10, finishedAt: START + 510 },
};
const failed = (retryable: boolean): AttemptEnd => ({ ok: false, message: 'node answered 500', retryable });

function running(overrides = {}): JobDriver {
  const d = JobDriver.job(overrides);
  d.now += 200;
  d.send({ type: 'placed', grant: grant(1, 'n1', 150) });
  return d;
}

/** Folds a step's commands, checking the step's own list is left as it was. */
function fold(commands: JobMachineCommand[]) {
  const before = JSON.stringify(commands);
  const folded = foldReleaseIntoOutcome(commands);
  assert.equal(JSON.stringify(commands), before, 'the step’s commands were changed');
  return folded;
}

const types = (commands: readonly JobMachineCommand[]) => commands.map((c) => c.type);

test('an ending that frees its slot: the outcome write carries the release, and no separate signal is left', () => {
  const endings: Array<[string, (d: JobDriver) => JobMachineCommand[]]> = [
    ['completed', (d) => d.send({ type: 'attemptEnded', attempt: 1, end: ok })],
    ['failed, not retryable', (d) => d.send({ type: 'attemptEnded', attempt: 1, end: failed(false) })],
  ];
  for (const [name, end] of endings) {
    const commands = end(running());
    assert.ok(types(commands).includes('tellPool'), `${name}: the machine frees the slot`);
    const { commands: folded, release } = fold(commands);
    assert.deepEqual(release?.message, { kind: 'finished', attempt: 1 }, name);
    assert.ok(!types(folded).includes('tellPool'), `${name}: the release travels with the write only`);
    assert.equal(folded.filter((c) => c.type === 'recordOutcome').length, 1, name);
    assert.equal(folded.length, commands.length - 1, `${name}: nothing else is dropped`);
  }
});

test('a retry frees its slot with no outcome to write: the job signals the pool itself, as before', () => {
  const d = running();
  d.send({ type: 'attemptEnded', attempt: 1, end: failed(true) });
  const commands = d.last;
  const { commands: folded, release } = fold(commands);
  assert.equal(release, undefined);
  assert.deepEqual(folded, commands);
});

test('an ending with no slot (expired in the queue) withdraws: nothing to fold', () => {
  const d = JobDriver.job({ ttlSeconds: 1 });
  const commands = d.fire();
  assert.ok(types(commands).includes('recordOutcome'));
  const { commands: folded, release } = fold(commands);
  assert.equal(release, undefined);
  assert.deepEqual(folded, commands);
});

test('the best-effort rewrite after an unstorable outcome carries nothing', () => {
  const d = running();
  d.send({ type: 'attemptEnded', attempt: 1, end: ok });
  const commands = d.send({ type: 'outcomeNotStorable', error: 'lone surrogate' });
  const withRelease: JobMachineCommand[] = [...commands, { type: 'tellPool', message: { kind: 'finished', attempt: 1 } }];
  assert.equal(fold(withRelease).release, undefined, 'a best-effort write is not trusted to free a slot');
});
