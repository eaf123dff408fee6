/**
 * Least privilege in PostgreSQL. The owner role runs migrations; the application role (what the API and
 * workers log in as) reads and writes rows and nothing more: no DDL, no trigger control (only a table's owner
 * may disable a trigger), no UPDATE, DELETE or TRUNCATE on the ledger, no writes to the migration record.
 */
import type { ClientBase, Pool } from 'pg';

/** The application role the embedded database and compose create. */
export const APP_ROLE = 'zeropool_app';

type Queryable = Pick<ClientBase, 'query'> | Pick<Pool, 'query'>;

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (value: string) => `'${value.replace(/'/g, "''")}'`;

/** Creates the application role (a plain login: not superuser, no CREATEDB/CREATEROLE) or resets its password. */
export async function ensureAppRole(owner: Queryable, password: string, role = APP_ROLE): Promise<void> {
  const exists = await owner.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  const verb = exists.rowCount ? 'ALTER' : 'CREATE';
  await owner.query(
    `${verb} ROLE ${quoteIdent(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD ${quoteLiteral(password)}`,
  );
}

/**
 * Grants the application role what it needs on every table there is (rerun after each migration): rows of
 * the operational tables; the ledger only SELECT and INSERT (its chain trigger runs with the inserter's rights
 * and only reads the ledger); the migration record and the list of rows from before writer marks (ledger_unmarked) only SELECT.
 */
export async function grantAppPrivileges(owner: Queryable, role: string): Promise<void> {
  const who = quoteIdent(role);
  await owner.query(`GRANT CONNECT ON DATABASE ${quoteIdent((await owner.query('SELECT current_database() AS db')).rows[0].db)} TO ${who}`);
  await owner.query(`GRANT USAGE ON SCHEMA public TO ${who}`);
  await owner.query(`REVOKE CREATE ON SCHEMA public FROM ${who}`);
  await owner.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${who}`);
  await owner.query(`REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ledger FROM ${who}`);
  await owner.query(`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM ${who}`);
  // Which rows may lack a writer mark is the owner's to say (src/db/ledger-marks.ts).
  if ((await owner.query("SELECT to_regclass('public.ledger_unmarked') IS NOT NULL AS present")).rows[0].present)
    await owner.query(`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ledger_unmarked FROM ${who}`);
  await owner.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${who}`);
}

/** The login role of a connection string. */
export function roleOf(url: string): string {
  return decodeURIComponent(new URL(url).username);
}
