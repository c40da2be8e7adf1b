#!/usr/bin/env bash
# Write the kube-vip static pod that holds the control-plane VIP (ARP, leader election).
# Parameters: VIP VIP_INTERFACE ('' = the interface that routes to the VIP) MANIFEST (with @INTERFACE@)
set -euo pipefail

interface=$(vip_interface "$VIP" "$VIP_INTERFACE")
install -d -m 0755 /etc/kubernetes/manifests
if printf '%s\n' "${MANIFEST//@INTERFACE@/$interface}" | write_if_changed /etc/kubernetes/manifests/kube-vip.yaml; then
  log "kube-vip manifest written (VIP $VIP on $interface)"
else
  log "kube-vip manifest up to date"
fi
