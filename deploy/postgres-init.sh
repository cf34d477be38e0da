#!/bin/sh
# Runs once, as the superuser, when the PostgreSQL volume is first created: a login role for
# Temporal owning its two databases and one for trlgate owning its own, neither a superuser nor
# able to create databases or roles, nor to connect to the other's databases. The passwords come
# from the secret files (psql reads them itself: they appear in no command line).
set -eu
secrets="${POSTGRES_INIT_SECRETS:-/run/secrets}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<EOSQL
\\set temporal_pw \`cat "$secrets/temporal_db_password"\`
\\set trlgate_pw \`cat "$secrets/trlgate_db_password"\`
CREATE ROLE temporal LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'temporal_pw';
CREATE ROLE trlgate LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'trlgate_pw';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE DATABASE trlgate OWNER trlgate;
-- PUBLIC may connect to every database by default; owners keep their own rights.
REVOKE ALL ON DATABASE temporal, temporal_visibility, trlgate, postgres FROM PUBLIC;
EOSQL
