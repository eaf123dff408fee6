// `npm test`: runs every test file (or the ones named) with node's test runner. The Temporal binaries are found
// here when installed; a test that starts a server installs them itself (pip) the first time, so a pure unit
// test installs nothing.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const tsx = ['--import', 'tsx'];
const locate = spawnSync(
  process.execPath,
  [
    ...tsx,
    '-e',
    `
  const { findTemporalBinary } = require('./src/stack/temporal-binaries.ts');
  process.stdout.write(JSON.stringify({ cli: findTemporalBinary('cli') ?? '', testServer: findTemporalBinary('test-server') ?? '' }));
`,
  ],
  { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
if (locate.status !== 0) process.exit(locate.status ?? 1);
const found = JSON.parse(locate.stdout);
const env = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
if (found.cli) env.TEMPORAL_CLI_PATH = found.cli;
if (found.testServer) env.TEMPORAL_TEST_SERVER_PATH = found.testServer;
console.log(
  `temporal CLI: ${found.cli || '(installed when a test needs it)'}\ntemporal test server: ${found.testServer || '(installed when a test needs it)'}`,
);

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return testFiles(full);
    return name.endsWith('.test.ts') ? [full] : [];
  });
}
// Arguments may name files or folders.
const selected = process.argv.slice(2).flatMap((arg) => (statSync(arg).isDirectory() ? testFiles(arg).sort() : [arg]));
const files = selected.length > 0 ? selected : testFiles(path.join(root, 'test')).sort();
// A test that hangs fails after TEST_TIMEOUT_MS instead of holding CI until its own limit; the whole run
// (which also waits for each file's process to exit) is stopped after TEST_RUN_TIMEOUT_MS.
const testTimeoutMs = Number(process.env.TEST_TIMEOUT_MS ?? 600_000);
const runTimeoutMs = Number(process.env.TEST_RUN_TIMEOUT_MS ?? 45 * 60_000);
const run = spawn(
  process.execPath,
  [...tsx, '--test', '--test-concurrency=1', `--test-timeout=${testTimeoutMs}`, '--test-reporter=spec', ...files],
  { cwd: root, env, stdio: 'inherit', detached: true },
);
const watchdog = setTimeout(() => {
  console.error(`\n✖ the test run took longer than ${runTimeoutMs / 60_000} min and was stopped`);
  process.kill(-run.pid, 'SIGKILL');
}, runTimeoutMs);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.kill(-run.pid, 'SIGKILL'));
run.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  process.exit(code ?? (signal ? 1 : 0));
});
