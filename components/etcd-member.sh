#!/usr/bin/env bash
# An external etcd member (kubeadm "Set up a High Availability etcd cluster"): a kubelet that only runs
# static pods, the member's certificates, the etcd static pod. The first member made the etcd CA and
# signs its own certificates here; every other member gets the CA certificate and its certificates,
# signed on the first member, from stdin, never the CA key (the guide removes ca.key from their bundles).
# Parameters: NODE_NAME FIRST KUBEADM_CONFIG KUBELET_CONFIG KUBELET_DROPIN
set -euo pipefail

PKI=/etc/kubernetes/pki
STATE_DIR=/etc/kubernetes/kubeadm-cluster
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
unpack_bundle "$bundle"
[[ -s $bundle/ca.crt ]] || die "the etcd CA certificate was not on stdin"
[[ ! -e $bundle/ca.key ]] || die "the etcd CA key must stay on the first member"
install_if_changed "$bundle/ca.crt" "$PKI/etcd/ca.crt" 0644
if [[ $FIRST != true ]]; then
  for cert in server peer healthcheck-client; do
    [[ -s $bundle/$cert.crt && -s $bundle/$cert.key ]] || die "the etcd $cert certificate of $NODE_NAME was not on stdin"
    install_if_changed "$bundle/$cert.crt" "$PKI/etcd/$cert.crt" 0644
    install_if_changed "$bundle/$cert.key" "$PKI/etcd/$cert.key" 0600
  done
fi

kubelet_changed=false
printf '%s\n' "$KUBELET_CONFIG" | write_if_changed /etc/systemd/system/kubelet.service.d/kubelet.conf && kubelet_changed=true
printf '%s\n' "$KUBELET_DROPIN" | write_if_changed /etc/systemd/system/kubelet.service.d/20-etcd-service-manager.conf && kubelet_changed=true
if [[ $kubelet_changed == true ]]; then
  systemctl daemon-reload
  systemctl restart kubelet
fi

install -d -m 0700 "$STATE_DIR"
printf '%s' "$KUBEADM_CONFIG" >"$STATE_DIR/etcd.yaml"
if [[ $FIRST == true ]]; then
  for cert in etcd-server:server etcd-peer:peer etcd-healthcheck-client:healthcheck-client; do
    if [[ ! -f $PKI/etcd/${cert#*:}.crt ]]; then
      kubeadm init phase certs "${cert%%:*}" --config "$STATE_DIR/etcd.yaml" >&2
    fi
  done
fi
if [[ ! -f /etc/kubernetes/manifests/etcd.yaml ]]; then
  log "starting etcd member $NODE_NAME"
  kubeadm init phase etcd local --config "$STATE_DIR/etcd.yaml" >&2
fi
log "etcd member $NODE_NAME configured"
