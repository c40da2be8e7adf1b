#!/usr/bin/env bash
# Remove an external etcd member's static pod, data, certificates and kubelet drop-in. Parameters: NODE_NAME CRI_SOCKET
set -euo pipefail

log "resetting etcd member $NODE_NAME"
if command -v kubeadm >/dev/null 2>&1; then kubeadm reset -f --cri-socket "$CRI_SOCKET" >&2; fi
rm -rf /var/lib/etcd /etc/kubernetes/pki/etcd /etc/kubernetes/kubeadm-cluster \
  /etc/systemd/system/kubelet.service.d/kubelet.conf /etc/systemd/system/kubelet.service.d/20-etcd-service-manager.conf
systemctl daemon-reload
log "etcd member $NODE_NAME reset"
