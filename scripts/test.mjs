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
// One file at a time by default. TEST_LANES=2 runs two lanes side by side: files that share the Docker engine
// (containers and VRAM accounting are host-wide) or load the whole machine (chaos, the fuzzer) in one, every
// other file in the other. On a 2-core machine that was no faster (20 min against 19) and starved the chaos run
// past its limit, so it is opt-in, for machines with cores to spare.
const EXCLUSIVE = /(?:^|\/)(?:docker-[a-z-]+|chaos|api-fuzz)\.test\.ts$/;
const exclusive = files.filter((f) => EXCLUSIVE.test(f));
const lanes =
  process.env.TEST_LANES !== '2' || exclusive.length === 0 || exclusive.length === files.length
    ? [files]
    : [files.filter((f) => !EXCLUSIVE.test(f)), exclusive];
const runs = lanes.map((laneFiles, index) => {
  // The second lane's report is held and printed whole when it ends, so the two never interleave.
  const stdio = index === 0 ? 'inherit' : ['ignore', 'pipe', 'pipe'];
  const child = spawn(
    process.execPath,
    [...tsx, '--test', '--test-concurrency=1', `--test-timeout=${testTimeoutMs}`, '--test-reporter=spec', ...laneFiles],
    { cwd: root, env, stdio, detached: true },
  );
  let held = '';
  child.stdout?.on('data', (chunk) => {
    held += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    held += chunk;
  });
  const done = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      if (index > 0) process.stdout.write(`\n== lane ${index + 1}: ${laneFiles.map((f) => path.relative(root, f)).join(', ')}\n${held}`);
      resolve(code ?? (signal ? 1 : 0));
    }),
  );
  return { child, done };
});
const killAll = () => {
  for (const { child } of runs) if (child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
};
const watchdog = setTimeout(() => {
  console.error(`\n✖ the test run took longer than ${runTimeoutMs / 60_000} min and was stopped`);
  killAll();
}, runTimeoutMs);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, killAll);
const codes = await Promise.all(runs.map((r) => r.done));
clearTimeout(watchdog);
const failed = codes.find((code) => code !== 0);
if (failed !== undefined)
  console.error(`\n✖ ${codes.filter((c) => c !== 0).length} of ${codes.length} test lane(s) failed: see each lane's "failing tests"`);
process.exit(failed ?? 0);
