#!/bin/sh
# Bring Temporal's two PostgreSQL databases' schemas up to date (idempotent). The databases and the
# temporal role that owns them come from deploy/postgres-init.sh; the role cannot create databases.
set -eu
ep="$POSTGRES_SEEDS"; port="${DB_PORT:-5432}"; user="$POSTGRES_USER"
SQL_PASSWORD="$(cat "$TEMPORAL_DB_PASSWORD_FILE")"
export SQL_PASSWORD
until nc -z "$ep" "$port"; do echo "waiting for PostgreSQL at $ep:$port"; sleep 1; done
schema=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  dir=temporal; [ "$db" = temporal_visibility ] && dir=visibility
  # setup-schema fails harmlessly once the schema exists; update-schema then applies what is new.
  temporal-sql-tool --plugin postgres12 --ep "$ep" -u "$user" -p "$port" --db "$db" setup-schema -v 0.0 || true
  temporal-sql-tool --plugin postgres12 --ep "$ep" -u "$user" -p "$port" --db "$db" update-schema -d "$schema/$dir/versioned"
done
echo "Temporal schema is up to date"
