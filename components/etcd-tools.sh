#!/usr/bin/env bash
# etcd's own tools at the running version, shared by the backup and the restore: etcdctl from the
# running etcd's image, etcdutl from that image or etcd's release tarball (checked against
# etcd.backup.etcdutlSha256), kept in TOOLS_DIR. The including script defines `fail MESSAGE`.
# Parameters: TOOLS_DIR ETCDUTL_URL ETCDUTL_SHA256S
set -euo pipefail

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

# etcdutl for VERSION from the etcd release tarball (for an etcd image without it),
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

# select_etcdutl VERSION IMAGE_BIN — sets ETCDUTL to etcdutl for VERSION: the running image's, one
# installed before (with no etcd running, IMAGE_BIN is empty), or the release tarball's (downloaded only
# with its sha256 configured). Empty when there is none.
# shellcheck disable=SC2034 # ETCDUTL is the result: the script that includes this file reads it
select_etcdutl() {
  ETCDUTL=
  if install_tool "$2/etcdutl" etcdutl || [[ -z $2 && -x $TOOLS_DIR/etcdutl ]]; then
    ETCDUTL=$TOOLS_DIR/etcdutl
  elif [[ -x $TOOLS_DIR/etcdutl-$1 ]] || download_etcdutl "$1"; then
    ETCDUTL=$TOOLS_DIR/etcdutl-$1
  fi
}
