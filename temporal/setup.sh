#!/bin/sh
# One-off setup of the Temporal server in docker-compose.yml: waits for it, then registers the
# namespace's custom search attributes (the same ones temporal/dev-server.json gives the dev server).
set -eu
address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do sleep 1; done
until temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; do sleep 1; done
for spec in ZeropoolPool:Keyword ZeropoolStatus:Keyword ZeropoolWorkspace:Keyword ZeropoolPriority:Int; do
  temporal operator search-attribute create --address "$address" --namespace "$namespace" --name "${spec%%:*}" --type "${spec##*:}" || true
done
echo "search attributes registered"
