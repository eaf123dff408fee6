#!/bin/sh
# One-off schema setup for the Temporal server in docker-compose.yml (runs in temporalio/admin-tools, the
# supported replacement for the deprecated auto-setup image): creates the persistence and visibility
# databases if missing and brings both schemas to the version this server release ships. Safe to rerun.
set -eu
: "${SQL_HOST:?}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
export SQL_PLUGIN="${SQL_PLUGIN:-postgres12}" SQL_PORT="${SQL_PORT:-5432}"
schema="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"
setup() {
  database="$1" versioned="$2"
  temporal-sql-tool --db "$database" create-database 2>/dev/null || echo "database $database exists"
  # setup-schema -v 0.0 only records the starting version (a no-op when the schema exists); update-schema does the rest.
  temporal-sql-tool --db "$database" setup-schema -v 0.0 2>/dev/null || true
  temporal-sql-tool --db "$database" update-schema -d "$versioned"
}
setup "${TEMPORAL_DB:-temporal}" "$schema/temporal/versioned"
setup "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}" "$schema/visibility/versioned"
echo "temporal schemas are current"
