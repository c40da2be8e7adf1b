#!/usr/bin/env bash
# On the first etcd node: wait until every member answers /health over TLS. Parameters: ENDPOINTS (one per line)
set -euo pipefail

PKI=/etc/kubernetes/pki/etcd
healthy() {
  curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/healthcheck-client.crt" --key "$PKI/healthcheck-client.key" \
    "$1/health" | grep -q '"health":"true"'
}
while IFS= read -r endpoint; do
  [[ -n $endpoint ]] || continue
  retry 60 5 healthy "$endpoint" || die "etcd member $endpoint is not healthy after 5 minutes"
  log "etcd member $endpoint is healthy"
done <<<"$ENDPOINTS"
