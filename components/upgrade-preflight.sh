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
  # Outside the data directory, which kubeadm reset empties (phases/reset/removeetcdmember.go) and
  # where etcd warns about every unknown file (etcdmain/etcd.go identifyDataDirOrDie). etcdctl runs in
  # the etcd pod, which sees of this machine only /var/lib/etcd and the etcd certificates, so it saves
  # there and the snapshot is moved out at once.
  snapshots=/var/lib/etcd-snapshots
  snapshot=$snapshots/before-v$K8S_VERSION.db
  staged=/var/lib/etcd/kubeadm-cluster-snapshot.db
  install -d -m 0700 "$snapshots"
  # What an interrupted run, or an older version of this program (snapshots inside the data directory), left.
  rm -f "$staged" "$staged.part" "$snapshots"/*.part
  if [[ -d /var/lib/etcd/kubeadm-cluster-snapshots ]]; then
    find /var/lib/etcd/kubeadm-cluster-snapshots -maxdepth 1 -name 'before-v*.db' -exec mv -n -t "$snapshots" {} +
    rm -rf /var/lib/etcd/kubeadm-cluster-snapshots
  fi
  wait_for_apiserver
  admin_kubectl -n kube-system exec "$ETCD_POD" -- etcdctl --endpoints=https://127.0.0.1:2379 \
    --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt \
    --key=/etc/kubernetes/pki/etcd/server.key snapshot save "$staged" >&2
  # Through a .part name: across filesystems mv copies, and a half-copied file must not look like a snapshot.
  mv "$staged" "$snapshot.part"
  mv "$snapshot.part" "$snapshot"
  log "etcd snapshot saved to $snapshot on $(hostname)"
  prune_snapshots "$snapshots" 3
else
  log "external etcd: take its snapshot with etcdctl on an etcd member before upgrading it (kubeadm does not upgrade external etcd)"
fi
