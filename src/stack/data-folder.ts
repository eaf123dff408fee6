/**
 * The data folder (`ZEROPOOL_DATA_DIR`, `.zeropool/` by default) holds every tenant's prompts (Temporal's
 * database and its write-ahead log), the node secret key and the database passwords: no other local user may
 * read any of it.
 *
 * Contract: after `secureDataFolder`, the folder is 0700 (0711 when this process is root, so the embedded
 * PostgreSQL's own user can pass through to its folder: others may pass, never list or read), every folder in it
 * 0700 and every file 0600. A folder from before is fixed in place at start. PostgreSQL's own folder is left to
 * PostgreSQL (it keeps it 0700 and refuses to start otherwise). Processes we start that write there (the
 * Temporal dev server) run with umask 077, so what they create later is private too.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** Subfolders whose modes belong to another program. */
const LEFT_ALONE = new Set(['postgres']);

/** The data folder's own mode for this process. */
export function dataFolderMode(): number {
  return typeof process.getuid === 'function' && process.getuid() === 0 ? 0o711 : 0o700;
}

/** Creates the folder if needed and makes it and everything in it private (see the contract above). */
export function secureDataFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, dataFolderMode());
  const pending = readdirSync(dir)
    .filter((name) => !LEFT_ALONE.has(name))
    .map((name) => path.join(dir, name));
  while (pending.length > 0) {
    const entry = pending.pop()!;
    const stat = lstatSync(entry, { throwIfNoEntry: false });
    // Gone meanwhile (a WAL checkpoint, a removed spool segment), or a link: nothing of ours to fix.
    if (!stat || stat.isSymbolicLink()) continue;
    if (stat.isDirectory()) {
      chmodSync(entry, 0o700);
      for (const name of readdirSync(entry)) pending.push(path.join(entry, name));
    } else if (stat.isFile() && (stat.mode & 0o077) !== 0) {
      chmodSync(entry, stat.mode & 0o700);
    }
  }
}

/** A command run through the shell with umask 077: the files it creates are its user's alone. */
export function withPrivateUmask(command: string, args: string[]): { command: string; args: string[] } {
  return { command: '/bin/sh', args: ['-c', 'umask 077 && exec "$0" "$@"', command, ...args] };
}
