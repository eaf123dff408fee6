#!/bin/sh
# One-off setup of the Temporal server in docker-compose.yml (runs in temporalio/admin-tools): waits for the
# frontend, creates the namespace if missing (the plain server image does not), then registers the
# namespace's custom search attributes (the same ones temporal/dev-server.json gives the dev server).
set -eu
address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-72h}"
tries=0
until temporal operator cluster health --address "$address" 2>/dev/null | grep -q SERVING; do
  tries=$((tries + 1))
  [ "$tries" -lt 180 ] || { echo "Temporal at $address did not become healthy" >&2; exit 1; }
  sleep 1
done
temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1 ||
  temporal operator namespace create --address "$address" --namespace "$namespace" --retention "$retention"
until temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; do sleep 1; done
# A new namespace reaches every server's cache within seconds: retry until the attributes are listed.
for spec in ZeropoolPool:Keyword ZeropoolStatus:Keyword ZeropoolWorkspace:Keyword ZeropoolPriority:Int; do
  name="${spec%%:*}"
  tries=0
  until temporal operator search-attribute list --address "$address" --namespace "$namespace" 2>/dev/null | grep -qw "$name"; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || { echo "could not register search attribute $name in $namespace" >&2; exit 1; }
    temporal operator search-attribute create --address "$address" --namespace "$namespace" --name "$name" --type "${spec##*:}" >/dev/null 2>&1 || sleep 1
  done
done
echo "namespace $namespace and search attributes registered"
