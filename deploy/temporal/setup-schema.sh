#!/bin/sh
# Create Temporal's two PostgreSQL databases and bring their schemas up to date (idempotent).
set -eu
ep="$POSTGRES_SEEDS"; port="${DB_PORT:-5432}"; user="$POSTGRES_USER"
export SQL_PASSWORD="$POSTGRES_PWD"
until nc -z "$ep" "$port"; do echo "waiting for PostgreSQL at $ep:$port"; sleep 1; done
schema=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  dir=temporal; [ "$db" = temporal_visibility ] && dir=visibility
  temporal-sql-tool --plugin postgres12 --ep "$ep" -u "$user" -p "$port" --db "$db" create || true
  temporal-sql-tool --plugin postgres12 --ep "$ep" -u "$user" -p "$port" --db "$db" setup-schema -v 0.0 || true
  temporal-sql-tool --plugin postgres12 --ep "$ep" -u "$user" -p "$port" --db "$db" update-schema -d "$schema/$dir/versioned"
done
echo "Temporal schema is up to date"
