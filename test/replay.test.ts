import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../src/worker';
import { HISTORIES_DIR } from './helpers/histories';
import './helpers/temporal';

const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.binpb'));

test('recorded histories are stored', () => {
  assert.ok(files.length >= 4, `expected recorded histories in ${HISTORIES_DIR}`);
});

for (const file of files) {
  test(`replays ${file} deterministically with the current code`, async () => {
    const history = temporal.api.history.v1.History.decode(readFileSync(path.join(HISTORIES_DIR, file)));
    assert.ok(history.events.length > 10, 'a real history');
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, path.basename(file, '.binpb'));
  });
}
