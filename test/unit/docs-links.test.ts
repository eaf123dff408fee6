/**
 * Every link in the repository's Markdown resolves inside the repository, as in a fresh clone: the files git
 * would ship are copied into an empty folder (nothing beside it), and remark-validate-links (remark-cli, the
 * kept tool) checks every relative link and heading there. A link out of the repository, to a missing file or
 * to a missing heading fails the check; the second test shows it does.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

const root = path.resolve(__dirname, '../..');
let clone: string;

before(() => {
  // A folder of its own inside a fresh one, so `../anything` from the clone's root finds nothing.
  clone = path.join(mkdtempSync(path.join(os.tmpdir(), 'zeropool-docs-')), 'zeropool');
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const file of files) {
    const target = path.join(clone, file);
    mkdirSync(path.dirname(target), { recursive: true });
    try {
      copyFileSync(path.join(root, file), target);
    } catch (err) {
      // A file listed but deleted in the working tree is not shipped.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'));
});
after(() => rmSync(path.dirname(clone), { recursive: true, force: true }));

function checkLinks(files: string[]) {
  const cli = path.join(root, 'node_modules/remark-cli/cli.js');
  return spawnSync(process.execPath, [cli, '--frail', '--quiet', '--no-stdout', '--no-color', ...files], { cwd: clone, encoding: 'utf8' });
}

const shipped = () =>
  execFileSync('git', ['ls-files', '-co', '--exclude-standard', '*.md'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);

test('every link and heading in README.md, SECURITY.md, docs/ and the other READMEs resolves inside a copy of the repository', () => {
  const files = shipped();
  assert.ok(files.includes('README.md') && files.includes('docs/architecture.md'), files.join(', '));
  const result = checkLinks(files);
  assert.equal(result.status, 0, result.stderr);
});

test('the check fails on a link out of the repository, a missing file and a missing heading', () => {
  writeFileSync(
    path.join(clone, 'docs', 'broken.md'),
    '# Broken\n\n[design](../../shared/design/ARCHITECTURE.md) [gone](gone.md) [nowhere](../README.md#no-such-heading)\n',
  );
  const result = checkLinks(['docs/broken.md']);
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /Cannot find file `\.\.\/\.\.\/shared\/design\/ARCHITECTURE\.md`/);
  assert.match(result.stderr, /Cannot find file `gone\.md`/);
  assert.match(result.stderr, /Cannot find heading for `#no-such-heading`/);
});

test('the README stays a front page: at most 300 lines', () => {
  const lines = readFileSync(path.join(root, 'README.md'), 'utf8').split('\n').length;
  assert.ok(lines <= 300, `README.md has ${lines} lines`);
});
