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

# The running etcd's image carries etcdctl (and, in etcd's own images, etcdutl): taking them from there
# gives the tools of exactly the running version without a download. A copy in TOOLS_DIR stays usable
# while etcd restarts.
etcd_image_bin() {
  local comm
  for comm in /proc/[0-9]*/comm; do
    if [[ $(cat "$comm" 2>/dev/null) == etcd && -x ${comm%/comm}/root/usr/local/bin/etcdctl ]]; then
      echo "${comm%/comm}/root/usr/local/bin"
      return 0
    fi
  done
  return 1
}

install_tool() {
  local source=$1 name=$2
  [[ -x $source ]] || return 1
  cmp -s "$source" "$TOOLS_DIR/$name" || install -D -m 0755 "$source" "$TOOLS_DIR/$name"
}

# etcdutl for VERSION from the etcd release tarball (kubernetes' own etcd image has no etcdutl),
# checked against the sha256 configured for that file (etcd.backup.etcdutlSha256).
download_etcdutl() {
  local version=$1 arch file url sum dir
  arch=$(uname -m)
  arch=${arch/x86_64/amd64}
  arch=${arch/aarch64/arm64}
  file=etcd-v$version-linux-$arch.tar.gz
  sum=$(sed -n "s/^$file=//p" <<<"$ETCDUTL_SHA256S")
  [[ -n $sum ]] || return 1
  url=${ETCDUTL_URL//\{version\}/$version}
  url=${url//\{arch\}/$arch}
  dir=$(mktemp -d)
  curl -fsSL --retry 3 -o "$dir/$file" "$url" || { rm -rf "$dir"; fail "cannot download $url"; }
  if ! sha256sum --check --status <<<"$sum  $dir/$file"; then
    rm -rf "$dir"
    fail "$url does not match the sha256 configured for $file in etcd.backup.etcdutlSha256"
  fi
  tar -xzf "$dir/$file" -C "$dir" --strip-components=1 "etcd-v$version-linux-$arch/etcdutl"
  install -D -m 0755 "$dir/etcdutl" "$TOOLS_DIR/etcdutl-$version"
  rm -rf "$dir"
}

install -d -m 0700 "$DIRECTORY"
snapshot=
image_bin=$(etcd_image_bin) || fail "no running etcd with /usr/local/bin/etcdctl in its image on $NODE_NAME"
install_tool "$image_bin/etcdctl" etcdctl
ETCDCTL=("$TOOLS_DIR/etcdctl" --endpoints="$ENDPOINT" --cacert="$PKI/ca.crt"
  --cert="$PKI/healthcheck-client.crt" --key="$PKI/healthcheck-client.key")
version=$("$TOOLS_DIR/etcdctl" version | sed -n 's/^etcdctl version: //p')
# Without etcdutl (kubernetes' etcd image has none, and no checksum is configured for the release
# tarball) the snapshot is still taken and kept, marked unverified: a backup beats none.
etcdutl=
if install_tool "$image_bin/etcdutl" etcdutl; then
  etcdutl=$TOOLS_DIR/etcdutl
elif [[ -x $TOOLS_DIR/etcdutl-$version ]] || download_etcdutl "$version"; then
  etcdutl=$TOOLS_DIR/etcdutl-$version
fi

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
