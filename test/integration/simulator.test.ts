import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ApiStack, TEST_ADMIN_KEY } from '../helpers/api-stack';

let stack: ApiStack;
before(async () => {
  stack = await new ApiStack({ coldStartSeconds: 0.5, tokensPerSecond: 400 }).start();
});
after(async () => {
  await stack?.stop();
});

const root = path.join(__dirname, '..', '..');

function simulate(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'simulator', 'main.ts'), ...args], {
      env: { ...process.env, ZEROPOOL_URL: stack.baseUrl, ZEROPOOL_KEY: TEST_ADMIN_KEY },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('simulator: a burst like the earlier gateway’s, then a trace replay; every accepted job ends, with a summary', async () => {
  const burst = await simulate(['--requests', '12', '--batch', '6', '--interval', '0.5', '--pool', 'sim', '--json']);
  assert.equal(burst.code, 0, burst.stderr);
  const summary = JSON.parse(burst.stdout);
  assert.equal(summary.sent, 12);
  assert.equal(summary.accepted, 12);
  assert.equal(summary.completed, 12);
  assert.equal(summary.lost, 0);
  assert.ok(summary.peak_nodes >= 1);
  assert.ok(typeof summary.queue_ms.p50 === 'number' && typeof summary.queue_ms.p99 === 'number');
  assert.ok(typeof summary.cost_usd === 'number' && summary.cost_usd > 0);
  assert.ok(typeof summary.savings_usd === 'number');

  const trace = path.join(root, 'test', 'fixtures', 'traces', 'llm-code-first-40.csv');
  const replay = await simulate([
    '--trace',
    trace,
    '--speedup',
    '10',
    '--limit',
    '15',
    '--max-tokens',
    '20',
    '--max-prompt-tokens',
    '64',
    '--pool',
    'sim',
  ]);
  assert.equal(replay.code, 0, replay.stderr);
  assert.match(replay.stdout, /accepted 15 of 15/);
  assert.match(replay.stdout, /completed 15 .* lost 0/);
  assert.match(replay.stdout, /peak nodes \d+ +cost \$[\d.]+/);
  assert.match(replay.stderr, /\[[#-]{30}\] sent 15\/15/, 'progress bar');
});

test('simulator: bad arguments exit 2 with a reason', async () => {
  const bad = await simulate(['--requests', 'many']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--requests must be a number/);
});
