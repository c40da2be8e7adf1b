#!/usr/bin/env bash
# kubeadm join with the JoinConfiguration read from stdin (it holds the token and certificate key).
# Parameters: NODE_NAME ROLE CRI_SOCKET KEEP_ACROSS_RESET (files, one a line)
# Idempotent: a joined node does nothing; a half-finished join is reset and redone, keeping what
# earlier steps placed (kubeadm-retry.sh).
set -euo pipefail

STATE_DIR=/etc/kubernetes/kubeadm-cluster
config=$(mktemp)
trap 'rm -f "$config"' EXIT
chmod 0600 "$config"
cat >"$config"
restore_kept "$STATE_DIR"
if [[ -f $STATE_DIR/joined || -f $STATE_DIR/initialized ]]; then
  log "$NODE_NAME is already a member of the cluster"
  exit 0
fi
[[ -s $config ]] || die "no JoinConfiguration on stdin"
# What only kubeadm join writes: the kubelet's kubeconfigs (kubelet-start, then its TLS bootstrap) and a control
# plane's own static pods (control-plane-prepare, control-plane-join-etcd), which come first.
if [[ -f /etc/kubernetes/kubelet.conf || -f /etc/kubernetes/bootstrap-kubelet.conf ||
  -f /etc/kubernetes/manifests/kube-apiserver.yaml || -f /etc/kubernetes/manifests/etcd.yaml ]]; then
  log "an earlier kubeadm join did not finish; resetting before trying again"
  wait_until_own_node_is_not_ready "$NODE_NAME"
  remove_own_etcd_member
  mapfile -t keep <<<"$KEEP_ACROSS_RESET"
  reset_keeping "$STATE_DIR" "$CRI_SOCKET" "${keep[@]}"
fi
log "kubeadm join as $ROLE"
if ! kubeadm join --config "$config" >&2; then
  die "kubeadm join failed. If the join material is older than 2 h (its token and the uploaded control-plane certificates expire then), set a new kubeadm-cluster:joinMaterialEpoch and run pulumi up again"
fi
install -d -m 0700 "$STATE_DIR"
touch "$STATE_DIR/joined"
log "$NODE_NAME joined as $ROLE"
