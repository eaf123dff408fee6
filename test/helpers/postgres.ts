/** A real PostgreSQL for tests: embedded, in a temp folder, migrated. */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDatabase } from '../../src/runtime';
import { freePort } from '../../src/stack/free-port';
import { startEmbeddedPostgres } from '../../src/stack/postgres';

/** A database for one test file. */
export interface TestDatabase {
  /** The application's pool (least-privilege role), as the services use. */
  db: pg.Pool;
  url: string;
  /** The schema owner's pool, for what the application may not do (tampering, DDL). */
  ownerDb: pg.Pool;
  ownerUrl: string;
  close(): Promise<void>;
}

/** Starts embedded PostgreSQL (or uses TEST_DATABASE_URL) and applies the schema. */
export async function startTestDatabase(): Promise<TestDatabase> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-pg-'));
  // As root, PostgreSQL runs as its own user, which must be able to enter the folder.
  chmodSync(dir, 0o755);
  // A data folder that does not exist yet, as on a fresh clone's first `npm start`.
  const embedded = await startEmbeddedPostgres(path.join(dir, 'data'), await freePort());
  const db = await openDatabase(embedded.url, embedded.ownerUrl);
  const ownerDb = new pg.Pool({ connectionString: embedded.ownerUrl, max: 2 });
  return {
    db,
    url: embedded.url,
    ownerDb,
    ownerUrl: embedded.ownerUrl,
    close: async () => {
      await db.end();
      await ownerDb.end();
      await embedded.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
