#!/bin/sh
# Runs once, when the PostgreSQL volume is first created: trlgate's own database beside Temporal's.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<EOSQL
CREATE ROLE trlgate LOGIN PASSWORD '${POSTGRES_PASSWORD}';
CREATE DATABASE trlgate OWNER trlgate;
EOSQL
