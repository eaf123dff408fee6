/**
 * The data folder is private (issue 30): an old folder (0755, files 0644) is fixed at start, and what the real
 * Temporal dev server writes there afterwards (its SQLite database and write-ahead log, which hold every
 * tenant's prompts) is readable by its user alone.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { dataFolderMode, secureDataFolder } from '../../src/stack/data-folder';
import { ensureTemporalBinary } from '../../src/stack/temporal-binaries';
import { freePort } from '../../src/stack/free-port';
import { startDevServer } from '../../src/stack/temporal-dev';

const root = mkdtempSync(path.join(os.tmpdir(), 'zeropool-data-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Every entry under `dir` (not PostgreSQL's own folder) with its permission bits. */
function modes(dir: string): Array<[string, number, boolean]> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((name) => {
    const stat = statSync(path.join(dir, name));
    return [name, stat.mode & 0o777, stat.isDirectory()];
  });
}

test('an old data folder is made private at start: the folder 0700 (0711 as root), folders in it 0700, files 0600; PostgreSQL’s folder is left to it', () => {
  const dir = path.join(root, 'old');
  mkdirSync(path.join(dir, 'mock-nodes'), { recursive: true, mode: 0o755 });
  mkdirSync(path.join(dir, 'postgres'), { mode: 0o750 });
  chmodSync(dir, 0o755);
  for (const file of ['temporal.db', 'temporal.db-wal', 'node-secret.key', 'mock-nodes/n1.json'])
    writeFileSync(path.join(dir, file), 'x', { mode: 0o644 });
  secureDataFolder(dir);
  assert.equal(statSync(dir).mode & 0o777, dataFolderMode());
  assert.equal(statSync(dir).mode & 0o066, 0, 'nobody else may list or write the folder');
  for (const [name, mode, isDir] of modes(dir).filter(([name]) => name !== 'postgres'))
    assert.equal(mode, isDir ? 0o700 : 0o600, `${name} is ${mode.toString(8)}`);
  assert.equal(statSync(path.join(dir, 'postgres')).mode & 0o777, 0o750, 'PostgreSQL keeps its own folder as it wants it');
});

test('the Temporal dev server’s database and WAL are 0600 in a private folder, from a folder that was 0755', async (t) => {
  const cliPath = ensureTemporalBinary('cli');
  if (!cliPath) return t.skip('no Temporal CLI (npm test installs one)');
  const dir = path.join(root, 'temporal');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const server = await startDevServer({ cliPath, dataDir: dir, port: await freePort(), uiPort: await freePort(), headless: true });
  try {
    const files = modes(dir).filter(([, , isDir]) => !isDir);
    assert.ok(
      files.some(([name]) => name === 'temporal.db'),
      `the server wrote its database: ${files.map(([n]) => n).join(', ')}`,
    );
    for (const [name, mode] of files) assert.equal(mode & 0o077, 0, `${name} is ${mode.toString(8)}: others may read it`);
    assert.equal(statSync(dir).mode & 0o066, 0);
  } finally {
    await server.stop();
  }
});
