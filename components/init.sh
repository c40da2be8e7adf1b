#!/usr/bin/env bash
# kubeadm init on the first control plane. Parameters: NODE_NAME KUBEADM_CONFIG CRI_SOCKET
#   KEEP_ACROSS_RESET (files, one a line)
# Idempotent: an initialized node only waits for its API server; a half-finished init is reset and
# redone, keeping what earlier steps placed and the cluster's identity (kubeadm-retry.sh).
set -euo pipefail

STATE_DIR=/etc/kubernetes/kubeadm-cluster
if [[ -f $STATE_DIR/joined ]]; then
  die "$NODE_NAME joined this cluster as an additional control plane, so it cannot run kubeadm init. The first control plane in 'nodes' initialized the cluster and cannot be removed or moved behind another control plane: restore it as the first control-plane entry."
fi
install -d -m 0700 "$STATE_DIR"
restore_kept "$STATE_DIR"
printf '%s' "$KUBEADM_CONFIG" >"$STATE_DIR/init.yaml"
if [[ -f $STATE_DIR/initialized ]]; then
  log "already initialized; waiting for the API server"
  wait_for_apiserver
  exit 0
fi
if [[ -f /etc/kubernetes/manifests/kube-apiserver.yaml || -f /etc/kubernetes/kubelet.conf ]]; then
  log "an earlier kubeadm init did not finish; resetting before trying again"
  mapfile -t keep <<<"$KEEP_ACROSS_RESET"
  reset_keeping "$STATE_DIR" "$CRI_SOCKET" "${keep[@]}"
fi
log "kubeadm init (this takes a few minutes)"
# No certificate upload here: it happens only in a run in which a control plane joins
# (certificate-upload.sh). The join command kubeadm prints holds a token: keep it out of the log.
kubeadm init --config "$STATE_DIR/init.yaml" --skip-token-print >&2
touch "$STATE_DIR/initialized"
wait_for_apiserver
log "control plane initialized"
