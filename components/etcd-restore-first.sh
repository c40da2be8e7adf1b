#!/usr/bin/env bash
# etcd restore, step 3 on the first etcd member, once etcd is stopped everywhere: the data restored by
# the check step becomes etcd's data directory and etcd starts as a cluster of this one member.
# etcd ignores the manifest's --initial-cluster flags when the data directory has a WAL
# (bootstrapCluster → bootstrapClusterWithWAL, server/etcdserver/bootstrap.go@v3.6.8), so the manifest
# goes back unchanged.
# Parameters: RESTORE_ID NODE_NAME CLIENT_URL TOOLS_DIR
set -euo pipefail

restore_step first stop
if [[ -d $RESTORE_STATE/data ]]; then
  [[ ! -e $DATA_DIR ]] || die "$DATA_DIR exists on $NODE_NAME although the stop step moved it to $KEPT_DATA_DIR"
  mv "$RESTORE_STATE/data" "$DATA_DIR"
fi
[[ -d $DATA_DIR/member/wal ]] || die "no restored data in $DATA_DIR on $NODE_NAME"
if [[ -f $PARKED/etcd.yaml ]]; then mv "$PARKED/etcd.yaml" "$MANIFESTS/"; fi
retry 60 5 etcd_member_healthy "$CLIENT_URL" || die "the restored etcd member $NODE_NAME is not healthy after 5 minutes"
members=$(etcdctl_at "$CLIENT_URL" member list)
[[ $(wc -l <<<"$members") == 1 && $members == *", $NODE_NAME, "* ]] \
  || die "the restored cluster should have the one member $NODE_NAME, it has: $members"
step_done first
log "etcd restore $RESTORE_ID: $NODE_NAME serves the snapshot as a new one-member cluster"
