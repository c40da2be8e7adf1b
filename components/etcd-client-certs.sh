#!/usr/bin/env bash
# On a control plane: the etcd CA certificate and the API server's etcd client pair, from stdin.
set -euo pipefail

PKI=/etc/kubernetes/pki
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
unpack_bundle "$bundle"
for file in ca.crt apiserver-etcd-client.crt apiserver-etcd-client.key; do
  [[ -s $bundle/$file ]] || die "$file was not on stdin"
done
install_if_changed "$bundle/ca.crt" "$PKI/etcd/ca.crt" 0644
install_if_changed "$bundle/apiserver-etcd-client.crt" "$PKI/apiserver-etcd-client.crt" 0644
install_if_changed "$bundle/apiserver-etcd-client.key" "$PKI/apiserver-etcd-client.key" 0600
log "etcd client certificates in place"
