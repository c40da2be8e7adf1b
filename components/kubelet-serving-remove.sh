#!/usr/bin/env bash
# Removes the kubelet serving-certificate approver from the first control plane
# (security.kubeletServingCertificates false, or the cluster goes). Certificates already issued stay.
set -euo pipefail

UNIT=kubeadm-cluster-kubelet-serving
if [[ -f /etc/systemd/system/$UNIT.timer ]]; then
  systemctl disable --now "$UNIT.timer" >&2 || true
  rm -f "/etc/systemd/system/$UNIT.timer" "/etc/systemd/system/$UNIT.service" \
    /usr/local/lib/kubeadm-cluster/kubelet-serving-approve
  systemctl daemon-reload
fi
log "kubelet serving-certificate approver removed"
