#!/bin/sh
# The Temporal server takes its database password only from the environment (POSTGRES_PWD in its
# config template): read it from the secret file here, so it is in neither the compose file nor
# `docker inspect`, then start the image's own entrypoint.
set -eu
POSTGRES_PWD="$(cat "$TEMPORAL_DB_PASSWORD_FILE")"
export POSTGRES_PWD
exec /etc/temporal/entrypoint.sh
