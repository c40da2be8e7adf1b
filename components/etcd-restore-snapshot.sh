#!/usr/bin/env bash
# etcd restore, step 1 on the first etcd member, beside the checks and before anything changes: etcdctl
# and etcdutl of the running version, the snapshot (fetched first with FETCH_COMMAND if set), `etcdutl
# snapshot status`, and the restore itself into a staging directory — a missing snapshot, or one whose
# integrity hash fails, is refused here, naming why.
# Parameters: RESTORE_ID NODE_NAME SNAPSHOT FETCH_COMMAND INITIAL_CLUSTER PEER_URL TOKEN CLIENT_URL TOOLS_DIR
#             ETCDUTL_URL ETCDUTL_SHA256S
set -euo pipefail

fail() { die "etcd restore $RESTORE_ID refused on $NODE_NAME, nothing was changed: $1"; }

restore_step snapshot

image_bin=$(etcd_image_bin) || image_bin=
if [[ -n $image_bin ]]; then install_tool "$image_bin/etcdctl" etcdctl; fi
[[ -x $TOOLS_DIR/etcdctl ]] \
  || fail "no etcdctl: no etcd runs here to take it from, and no backup installed one in $TOOLS_DIR"
version=$("$TOOLS_DIR/etcdctl" version | sed -n 's/^etcdctl version: //p')
select_etcdutl "$version" "$image_bin"
[[ -n $ETCDUTL ]] || fail "no etcdutl $version: the running etcd's image has none; set etcd.backup.etcdutlSha256 for etcd-v$version's release tarball so it is installed"

if [[ -n $FETCH_COMMAND && ! -f $SNAPSHOT ]]; then
  log "fetching the snapshot to $SNAPSHOT"
  install -d -m 0700 "$(dirname "$SNAPSHOT")"
  rm -f "$SNAPSHOT.part"
  bash -c "$FETCH_COMMAND" kubeadm-cluster-etcd-restore "$SNAPSHOT.part" >&2 \
    || fail "etcd.restore.fetchCommand failed"
  [[ -s $SNAPSHOT.part ]] || fail "etcd.restore.fetchCommand wrote nothing to its \$1"
  mv "$SNAPSHOT.part" "$SNAPSHOT"
fi
[[ -f $SNAPSHOT ]] || fail "the snapshot $SNAPSHOT (etcd.restore.snapshot) does not exist"
status=$("$ETCDUTL" snapshot status "$SNAPSHOT" -w json 2>&1) || fail "etcdutl snapshot status rejects $SNAPSHOT: $status"
revision=$(sed -n 's/.*"revision":\([0-9]*\).*/\1/p' <<<"$status")
[[ -n $revision ]] || fail "etcdutl snapshot status printed no revision for $SNAPSHOT: $status"

# The cluster ID before the restore, if etcd still answers: the verify step checks the new one differs.
etcdctl_at "$CLIENT_URL" member list -w json 2>/dev/null | sed -n 's/.*"cluster_id":\([0-9]*\).*/\1/p' \
  >"$RESTORE_STATE/old-cluster-id" || true

# The restore proper, done here so a snapshot that fails its integrity hash changes nothing: a new
# cluster of this one member (new member and cluster IDs: etcdutl/snapshot/v3_snapshot.go@v3.6.8), the
# others join it as new members. The revision jumps by a billion and everything before it is marked
# compacted, so Kubernetes' watchers and informers relist instead of waiting for revisions that will
# never come again (etcd-io/etcd#16028; --bump-revision, --mark-compacted: etcdutl@v3.6.8).
rm -rf "$RESTORE_STATE/data"
restored=$("$ETCDUTL" snapshot restore "$SNAPSHOT" --data-dir "$RESTORE_STATE/data" --name "$NODE_NAME" \
  --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-token "$TOKEN" --initial-advertise-peer-urls "$PEER_URL" \
  --bump-revision 1000000000 --mark-compacted 2>&1) || fail "etcdutl snapshot restore of $SNAPSHOT failed: $restored"
chmod 0700 "$RESTORE_STATE/data"
step_done snapshot
log "etcd restore $RESTORE_ID: snapshot $SNAPSHOT (revision $revision) verified and restored into $RESTORE_STATE/data"
