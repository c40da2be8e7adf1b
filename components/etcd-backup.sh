#!/usr/bin/env bash
# The scheduled etcd backup, run by kubeadm-cluster-etcd-backup.service on an etcd member: a snapshot
# with the running etcd's own etcdctl, verified with etcdutl, the newest RETENTION kept in DIRECTORY,
# an optional off-host copy, and the result in DIRECTORY/status.json and the journal (stderr).
# Parameters: NODE_NAME ENDPOINT DIRECTORY RETENTION COPY_COMMAND TOOLS_DIR ETCDUTL_URL ETCDUTL_SHA256S
set -euo pipefail

PKI=/etc/kubernetes/pki/etcd
STATUS=$DIRECTORY/status.json

# json_string TEXT — TEXT as a JSON string (the messages here have no control characters but newlines).
json_string() {
  local text=${1//\\/\\\\}
  text=${text//\"/\\\"}
  printf '"%s"' "${text//$'\n'/\\n}"
}

# write_status RESULT PATH SIZE REVISION MESSAGE — replaces status.json in one rename.
write_status() {
  local tmp
  tmp=$(mktemp "$DIRECTORY/.status.XXXXXX")
  printf '{"node": %s, "time": %s, "result": %s, "path": %s, "size": %s, "revision": %s, "message": %s}\n' \
    "$(json_string "$NODE_NAME")" "$(json_string "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_string "$1")" \
    "$(json_string "$2")" "${3:-null}" "${4:-null}" "$(json_string "$5")" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$STATUS"
}

fail() {
  write_status failed "${snapshot:-}" "" "" "$1"
  die "etcd backup failed: $1"
}

install -d -m 0700 "$DIRECTORY"
snapshot=
image_bin=$(etcd_image_bin) || fail "no running etcd with /usr/local/bin/etcdctl in its image on $NODE_NAME"
install_tool "$image_bin/etcdctl" etcdctl
ETCDCTL=("$TOOLS_DIR/etcdctl" --endpoints="$ENDPOINT" --cacert="$PKI/ca.crt"
  --cert="$PKI/healthcheck-client.crt" --key="$PKI/healthcheck-client.key")
version=$("$TOOLS_DIR/etcdctl" version | sed -n 's/^etcdctl version: //p')
# Without etcdutl (the running etcd's image has none, as older registry.k8s.io/etcd images, and no
# checksum is configured for the release tarball) the snapshot is still taken and kept, marked
# unverified: a backup beats none.
select_etcdutl "$version" "$image_bin"
# shellcheck disable=SC2153 # set by select_etcdutl (etcd-tools.sh, included above)
etcdutl=$ETCDUTL

snapshot=$DIRECTORY/etcd-$NODE_NAME-$(date -u +%Y%m%dT%H%M%SZ).db
log "etcd snapshot to $snapshot (etcd $version)"
# etcdctl writes SNAPSHOT.part and renames it when complete (client/v3/snapshot SaveWithVersion).
"${ETCDCTL[@]}" snapshot save "$snapshot" >&2 || fail "etcdctl snapshot save failed"
revision='' result=ok verdict="verified by etcdutl snapshot status"
if [[ -n $etcdutl ]]; then
  status_json=$("$etcdutl" snapshot status "$snapshot" -w json) || fail "etcdutl snapshot status rejects $snapshot"
  revision=$(sed -n 's/.*"revision":\([0-9]*\).*/\1/p' <<<"$status_json")
  [[ -n $revision ]] || fail "etcdutl snapshot status printed no revision for $snapshot"
else
  result=unverified
  verdict="kept but not verified: the running etcd's image has no etcdutl; set etcd.backup.etcdutlSha256 for etcd-v$version's release tarball to verify snapshots"
  log "WARNING: $verdict"
fi
size=$(stat -c %s "$snapshot")

# Keep the newest RETENTION snapshots of this member (names sort by time) and no stale .part files.
find "$DIRECTORY" -maxdepth 1 -name "etcd-$NODE_NAME-*.db.part" -delete
find "$DIRECTORY" -maxdepth 1 -name "etcd-$NODE_NAME-*.db" -printf '%f\n' | sort -r | tail -n +"$((RETENTION + 1))" \
  | while read -r old; do rm -f -- "${DIRECTORY:?}/$old"; done

if [[ -n $COPY_COMMAND ]]; then
  log "copying $snapshot off the host"
  if ! bash -c "$COPY_COMMAND" kubeadm-cluster-etcd-backup "$snapshot" >&2; then
    write_status copy-failed "$snapshot" "$size" "$revision" "the snapshot is kept here, but etcd.backup.copyCommand failed"
    die "etcd snapshot $snapshot is kept on $NODE_NAME, but its off-host copy (etcd.backup.copyCommand) failed"
  fi
fi
write_status "$result" "$snapshot" "$size" "$revision" "$verdict"
log "etcd snapshot $snapshot: $result (${revision:+revision $revision, }$size bytes)"
