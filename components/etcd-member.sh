#!/usr/bin/env bash
# An external etcd member (kubeadm "Set up a High Availability etcd cluster"): a kubelet that only runs
# static pods, the member's certificates signed by the etcd CA from stdin, the etcd static pod.
# Parameters: NODE_NAME KUBEADM_CONFIG KUBELET_CONFIG KUBELET_DROPIN
set -euo pipefail

PKI=/etc/kubernetes/pki
STATE_DIR=/etc/kubernetes/kubeadm-cluster
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
unpack_bundle "$bundle"
[[ -s $bundle/ca.crt && -s $bundle/ca.key ]] || die "the etcd CA was not on stdin"
install_if_changed "$bundle/ca.crt" "$PKI/etcd/ca.crt" 0644
install_if_changed "$bundle/ca.key" "$PKI/etcd/ca.key" 0600

kubelet_changed=false
printf '%s\n' "$KUBELET_CONFIG" | write_if_changed /etc/systemd/system/kubelet.service.d/kubelet.conf && kubelet_changed=true
printf '%s\n' "$KUBELET_DROPIN" | write_if_changed /etc/systemd/system/kubelet.service.d/20-etcd-service-manager.conf && kubelet_changed=true
if [[ $kubelet_changed == true ]]; then
  systemctl daemon-reload
  systemctl restart kubelet
fi

install -d -m 0700 "$STATE_DIR"
printf '%s' "$KUBEADM_CONFIG" >"$STATE_DIR/etcd.yaml"
for cert in etcd-server:server etcd-peer:peer etcd-healthcheck-client:healthcheck-client; do
  if [[ ! -f $PKI/etcd/${cert#*:}.crt ]]; then
    kubeadm init phase certs "${cert%%:*}" --config "$STATE_DIR/etcd.yaml" >&2
  fi
done
if [[ ! -f /etc/kubernetes/manifests/etcd.yaml ]]; then
  log "starting etcd member $NODE_NAME"
  kubeadm init phase etcd local --config "$STATE_DIR/etcd.yaml" >&2
fi
log "etcd member $NODE_NAME configured"
