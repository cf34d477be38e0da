#!/bin/sh
# Create the namespace and trlgate's custom search attributes (idempotent).
# TRLGATE_SEARCH_ATTRIBUTES lists Name=Type pairs; tests/test_compose.py checks it against the code.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do sleep 1; done
temporal operator namespace describe -n "$ns" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$ns" --retention "${NAMESPACE_RETENTION:-30d}" --address "$TEMPORAL_ADDRESS"
for pair in $TRLGATE_SEARCH_ATTRIBUTES; do
  name="${pair%%=*}"; type="${pair#*=}"
  temporal operator search-attribute create -n "$ns" --name "$name" --type "$type" --address "$TEMPORAL_ADDRESS" \
    || echo "search attribute $name exists"
done
