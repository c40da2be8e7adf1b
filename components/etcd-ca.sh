#!/usr/bin/env bash
# On the first etcd node: make the etcd CA once and the API server's etcd client certificate, then
# print the CA certificate and the client pair as one JSON document, as the very last action (secret);
# the CA key stays here. Parameters: KUBEADM_CONFIG
set -euo pipefail

PKI=/etc/kubernetes/pki
STATE_DIR=/etc/kubernetes/kubeadm-cluster
install -d -m 0700 "$STATE_DIR"
printf '%s' "$KUBEADM_CONFIG" >"$STATE_DIR/etcd-ca.yaml"
if [[ ! -f $PKI/etcd/ca.crt || ! -f $PKI/etcd/ca.key ]]; then
  log "creating the etcd CA"
  kubeadm init phase certs etcd-ca --config "$STATE_DIR/etcd-ca.yaml" >&2
fi
if [[ ! -f $PKI/apiserver-etcd-client.crt || ! -f $PKI/apiserver-etcd-client.key ]]; then
  log "creating the API server's etcd client certificate"
  kubeadm init phase certs apiserver-etcd-client --config "$STATE_DIR/etcd-ca.yaml" >&2
fi
printf '{"caCert":%s,"clientCert":%s,"clientKey":%s}\n' "$(json_string "$PKI/etcd/ca.crt")" \
  "$(json_string "$PKI/apiserver-etcd-client.crt")" "$(json_string "$PKI/apiserver-etcd-client.key")"
