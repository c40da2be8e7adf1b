#!/usr/bin/env bash
# Helpers of the external etcd steps: member health (over TLS, with the member's healthcheck-client
# certificate) and PEM files as JSON strings.
set -euo pipefail

# json_string FILE — the file's content as a JSON string (PEM has no quotes or backslashes).
json_string() { awk 'BEGIN {printf "\""} {printf "%s\\n", $0} END {printf "\""}' "$1"; }

# etcd_member_healthy ENDPOINT — /health answers true when the member has a leader and no alarm
# (a quorum read behind it).
etcd_member_healthy() {
  local pki=/etc/kubernetes/pki/etcd
  curl -sf --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/healthcheck-client.crt" --key "$pki/healthcheck-client.key" \
    "$1/health" | grep -q '"health":"true"'
}

# wait_for_etcd_members ENDPOINTS (one a line) — each member healthy, within 5 minutes each.
wait_for_etcd_members() {
  local endpoint
  while IFS= read -r endpoint; do
    [[ -n $endpoint ]] || continue
    retry 60 5 etcd_member_healthy "$endpoint" || die "etcd member $endpoint is not healthy after 5 minutes"
    log "etcd member $endpoint is healthy"
  done <<<"$1"
}
