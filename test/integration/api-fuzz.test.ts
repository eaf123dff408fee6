/**
 * schemathesis (PyPI) against the real stack (Temporal dev server, PostgreSQL, worker, the docker provider on a
 * real engine where there is one): a short run with a workspace key and one with the admin key. Every answer
 * must be below 500 and as /openapi.json documents it. `npm run fuzz` is the long run.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { docker, missingDockerEngine, mockNodeImage, recordedNvidiaSmi } from '../helpers/docker';
import { ApiStack, poolBody, TEST_ADMIN_KEY } from '../helpers/api-stack';
import { type FuzzRun, isToolFault, junitFailures, runSchemathesis } from '../helpers/schemathesis';

const WORKSPACE = 'fuzz';
let stack: ApiStack;
let workspaceKey = '';
const knownIds: string[] = [];
const startedAt = Math.floor(Date.now() / 1000);

before(async () => {
  const noEngine = await missingDockerEngine();
  stack = await new ApiStack({
    coldStartSeconds: 0.2,
    tokensPerSecond: 500,
    ...(noEngine ? {} : { docker: { nvidiaSmiPath: recordedNvidiaSmi('query-gpu_1xRTX4080SUPER_allfields_csv.txt') } }),
  }).start();
  workspaceKey = await stack.workspaceKey(WORKSPACE);
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('chat', { model: 'fuzz-model' }), workspaceKey)).status, 201);
  const job = await stack.request('POST', '/v1/jobs', { pool: 'chat', payload: { prompt: 'hello' } }, workspaceKey);
  assert.equal(job.status, 202);
  const keys = await stack.request('GET', `/v1/workspaces/${WORKSPACE}/keys`);
  knownIds.push(WORKSPACE, 'chat', job.body.id, ...keys.body.keys.map((k: { id: string }) => k.id));
  if (!noEngine) {
    // A real service (the mock model server's image) for the service routes to act on: start, stop, patch...
    const service = await stack.request(
      'POST',
      '/v1/services',
      {
        name: 'svc',
        model: 'fuzz-svc',
        image: await mockNodeImage(),
        command: ['/bin/node', '/app/server.js'],
        env: { MOCK_PORT: '{port}', MOCK_COLD_START_MS: '200', MOCK_MODEL: 'fuzz-svc' },
        vramGb: 0,
        priority: 3,
        stopTimeoutSeconds: 2,
      },
      workspaceKey,
    );
    assert.equal(service.status, 201, JSON.stringify(service.body));
    knownIds.push('svc');
  }
});

after(async () => {
  await stack?.stop();
  // Whatever the fuzzer managed to start on the engine goes with the test.
  const ours = await docker.listContainers({ all: true, filters: { label: ['zeropool.managed=true'] } }).catch(() => []);
  await Promise.all(
    ours
      .filter((c) => c.Created >= startedAt)
      .map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
  );
});

function explain(run: FuzzRun): string {
  return `${run.failures.map((f) => `${f.operation}: ${f.message.slice(0, 2000)}`).join('\n')}\n${run.output.slice(-6000)}`;
}

for (const [label, key] of [
  ['a workspace key', () => workspaceKey],
  ['the admin key', () => TEST_ADMIN_KEY],
] as const) {
  test(`schemathesis with ${label}: no 5xx and no answer that contradicts /openapi.json`, async () => {
    // No stateful phase here: chaining responses into requests, it registers services with the real image and
    // a random command, whose requests then rightly wait out their park deadline for capacity that never comes
    // (a 503 after 300 s, by design). `npm run fuzz` runs every phase against the mock-only stack.
    const run = await runSchemathesis({
      baseUrl: stack.baseUrl,
      key: key(),
      maxExamples: 3,
      knownIds,
      knownModel: 'fuzz-model',
      seed: Number(process.env.FUZZ_SEED ?? 14),
      phases: ['examples', 'coverage', 'fuzzing'],
    });
    assert.deepEqual(run.failures, [], explain(run));
    // schemathesis exits 1 for its own errors too; those are reported, and only the known interpreter fault passes.
    if (run.toolFaults.length > 0) {
      for (const fault of run.toolFaults) console.warn(`fuzzer fault (not the API) in ${fault.operation}: ${fault.message.slice(0, 300)}`);
    } else {
      assert.equal(run.exitCode, 0, explain(run));
    }
    // It must really have exercised the API (every operation, several cases each).
    assert.ok(run.generated >= 500, `only ${run.generated} cases generated\n${run.output.slice(-3000)}`);
  });
}

test('the JUnit reading finds failures and errors (so the fuzz test can fail)', () => {
  const xml = `<testsuites><testsuite>
    <testcase name="GET /ok" time="0.1" />
    <testcase name="GET /v1/ledger" time="0.2"><failure type="failure" message="Server error">500</failure></testcase>
    <testcase name="POST /v1/jobs" time="0.2"><error type="error">boom</error></testcase>
  </testsuite></testsuites>`;
  assert.deepEqual(junitFailures(xml), [
    { operation: 'GET /v1/ledger', message: 'Server error' },
    { operation: 'POST /v1/jobs', message: 'boom' },
  ]);
});

test('only the known interpreter fault counts as the fuzzer’s own (any other runtime error fails the run)', () => {
  assert.equal(isToolFault('Runtime Error\n\nSystemError: AST constructor recursion depth mismatch (before=252, after=165)'), true);
  assert.equal(isToolFault('Runtime Error\n\nKeyError: schema'), false);
  assert.equal(isToolFault('ST101 Server error: AST constructor recursion depth mismatch'), false);
});
