#!/usr/bin/env bash
# etcd restore, on the first etcd member once every member is back: the member list is exactly the
# etcd nodes of the stack, all voting and healthy, under a new cluster ID. Prints
# {"restore", "clusterId", "previousClusterId", "members"}.
# Parameters: RESTORE_ID EXPECTED (NAME PEER_URL CLIENT_URL, one member a line) CLIENT_URL TOOLS_DIR
set -euo pipefail

restore_step verify first
members=$(etcdctl_at "$CLIENT_URL" member list)
[[ $(wc -l <<<"$members") == $(wc -l <<<"$EXPECTED") ]] \
  || die "the restored cluster has other members than the stack's etcd nodes: $members"
names=()
while read -r name peer client; do
  grep -qF ", started, $name, $peer, $client, false" <<<"$members" \
    || die "$name is not a started voting member with $peer: $members"
  etcd_member_healthy "$client" || die "etcd member $name ($client) is not healthy"
  names+=("\"$name\"")
done <<<"$EXPECTED"
cluster_id=$(etcdctl_at "$CLIENT_URL" member list -w json | sed -n 's/.*"cluster_id":\([0-9]*\).*/\1/p')
previous=$(cat "$RESTORE_STATE/old-cluster-id" 2>/dev/null || true)
[[ -n $cluster_id && $cluster_id != "$previous" ]] || die "the cluster ID did not change ($cluster_id)"
step_done verify
log "etcd restore $RESTORE_ID: ${#names[@]} members healthy, cluster ID $cluster_id"
printf '{"restore": "%s", "clusterId": "%s", "previousClusterId": "%s", "members": [%s]}\n' \
  "$RESTORE_ID" "$cluster_id" "$previous" "$(IFS=,; echo "${names[*]}")"
