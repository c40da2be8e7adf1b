#!/usr/bin/env bash
# Remove this machine from Kubernetes: kubeadm reset plus what reset leaves behind (CNI config, pod
# network links, KUBE-* and flannel firewall rules, kube-proxy's nftables tables). Parameters: NODE_NAME CRI_SOCKET
set -euo pipefail

log "resetting $NODE_NAME"
if command -v kubeadm >/dev/null 2>&1; then
  kubeadm reset -f --cri-socket "$CRI_SOCKET" >&2
fi
rm -rf /etc/cni/net.d /etc/kubernetes/kubeadm-cluster /etc/kubernetes/hardening /root/.kube/config
for link in cni0 flannel.1 kube-ipvs0; do
  if ip link show "$link" >/dev/null 2>&1; then ip link delete "$link"; fi
done
# Only the rules Kubernetes and flannel made: the machine's own firewall stays.
for tool in iptables ip6tables; do
  if command -v "$tool-save" >/dev/null 2>&1; then
    "$tool-save" | { grep -v -e 'KUBE-' -e 'FLANNEL' -e 'CNI-' || true; } | "$tool-restore"
  fi
done
if command -v ipvsadm >/dev/null 2>&1; then ipvsadm -C; fi
# kube-proxy's nftables mode keeps everything in one table per family, which reset leaves behind
# (kubeadm reset cleans no proxy rules; names: pkg/proxy/nftables/{proxier,cleanup}.go@v1.36.3).
if command -v nft >/dev/null 2>&1; then
  for family in ip ip6; do
    if nft list table "$family" kube-proxy >/dev/null 2>&1; then nft delete table "$family" kube-proxy; fi
  done
fi
log "$NODE_NAME reset"
