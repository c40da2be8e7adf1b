#!/usr/bin/env bash
# First step of an upgrade, on the first control plane: refuse an unsupported version change before
# anything changes, then snapshot etcd (the three newest snapshots are kept). A no-op when the cluster
# already runs K8S_VERSION.
# Parameters: K8S_VERSION STACKED_ETCD ETCD_POD
set -euo pipefail

current=$(local_control_plane_version)
[[ -n $current ]] || die "cannot read the control-plane version from /etc/kubernetes/manifests/kube-apiserver.yaml"
if [[ $current == "$K8S_VERSION" ]]; then
  log "the control plane runs $K8S_VERSION: no upgrade needed"
  exit 0
fi
check_upgrade_path "$current" "$K8S_VERSION"
log "upgrade $current → $K8S_VERSION accepted"
if [[ $STACKED_ETCD == true ]]; then
  snapshot=/var/lib/etcd/kubeadm-cluster-snapshots/before-v$K8S_VERSION.db
  wait_for_apiserver
  # /var/lib/etcd is the etcd pod's data hostPath: the snapshot lands on this machine.
  install -d -m 0700 "${snapshot%/*}"
  admin_kubectl -n kube-system exec "$ETCD_POD" -- etcdctl --endpoints=https://127.0.0.1:2379 \
    --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt \
    --key=/etc/kubernetes/pki/etcd/server.key snapshot save "$snapshot" >&2
  log "etcd snapshot saved to $snapshot on $(hostname)"
  prune_snapshots "${snapshot%/*}" 3
else
  log "external etcd: take its snapshot with etcdctl on an etcd member before upgrading it (kubeadm does not upgrade external etcd)"
fi
