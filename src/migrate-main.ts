/**
 * `npm run migrate`: brings the schema up to date as its owner (DATABASE_OWNER_URL) and grants the services'
 * role (the login in DATABASE_URL) what it needs and no more. Compose runs it once before the API and workers,
 * which then log in without any right to change the schema.
 */
import { loadConfig } from './config';
import { SCHEMA_VERSION } from './db/schema';
import { logger } from './logger';
import { migrateAsOwner } from './runtime';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.DATABASE_OWNER_URL || !config.DATABASE_URL) throw new Error('DATABASE_OWNER_URL and DATABASE_URL are required');
  await migrateAsOwner(config.DATABASE_OWNER_URL, config.DATABASE_URL);
  logger.info({ schemaVersion: SCHEMA_VERSION, appRole: new URL(config.DATABASE_URL).username }, 'schema migrated and privileges granted');
}

main().catch((err) => {
  logger.fatal({ err }, 'migration failed');
  process.exit(1);
});
