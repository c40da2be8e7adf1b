#!/usr/bin/env bash
# Retrying a half-finished kubeadm init or join the way kubeadm supports: `kubeadm reset`, then again.
# reset empties /etc/kubernetes/manifests and /etc/kubernetes/pki and removes the kubeconfig files
# (cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go@v1.36.4), which also takes what earlier steps put
# there for this one (the endpoint's static pods, the external-etcd client pair) and the cluster's
# identity (its CAs and service-account key). Those are kept across the reset: kubeadm uses existing
# CAs and keys rather than making new ones (phases/certs/certs.go), so a retried init keeps the
# identity under which a half-finished one may already have written to an external etcd, and the
# data there stays valid.
set -euo pipefail

# restore_kept STATE_DIR — puts back what reset_keeping saved, if a run stopped before it could.
restore_kept() {
  local keep=$1/kept-across-reset file
  if [[ -d $keep ]]; then
    while IFS= read -r -d '' file; do
      file=${file#"$keep"}
      mkdir -p "${file%/*}"
      cp -p "$keep$file" "$file"
    done < <(find "$keep" -type f -print0)
    rm -rf "$keep"
  fi
}

# reset_keeping STATE_DIR CRI_SOCKET FILE... — kubeadm reset -f, keeping the FILEs that exist. The copy
# is complete before reset runs and is removed only after it is back, so a retry at any line converges.
reset_keeping() {
  local state=$1 socket=$2 keep=$1/kept-across-reset file
  shift 2
  if [[ ! -d $keep ]]; then
    rm -rf "$keep.partial"
    install -d -m 0700 "$keep.partial"
    for file in "$@"; do
      if [[ -f $file ]]; then
        install -d -m 0700 "$keep.partial${file%/*}"
        cp -p "$file" "$keep.partial$file"
      fi
    done
    mv "$keep.partial" "$keep"
  fi
  kubeadm reset -f --cri-socket "$socket" >&2
  restore_kept "$state"
}
