#!/usr/bin/env bash
# On the first etcd member, which alone keeps the etcd CA key (kubeadm's "Set up a High Availability
# etcd cluster": every member's certificates are made on HOST0 and `ca.key` is removed from the other
# members' bundles): sign another member's server, peer and healthcheck-client certificates from its
# own kubeadm config, whose certificatesDir is a scratch directory here, and print them as one JSON
# document, as the very last action (secret). Runs again, with new keys, for each certificates.renew.
# Parameters: NODE_NAME KUBEADM_CONFIG (certificatesDir CERT_DIR) CERT_DIR RENEWAL
set -euo pipefail

PKI=/etc/kubernetes/pki
[[ -s $PKI/etcd/ca.key ]] || die "the etcd CA key is not on this node: it signs the other members' certificates"
rm -rf "$CERT_DIR"  # a run that stopped halfway
install -d -m 0700 "$CERT_DIR" "$CERT_DIR/etcd"
trap 'rm -rf "$CERT_DIR"' EXIT
cp "$PKI/etcd/ca.crt" "$PKI/etcd/ca.key" "$CERT_DIR/etcd/"
printf '%s' "$KUBEADM_CONFIG" >"$CERT_DIR/kubeadm.yaml"
for cert in etcd-server etcd-peer etcd-healthcheck-client; do
  kubeadm init phase certs "$cert" --config "$CERT_DIR/kubeadm.yaml" >&2
done
log "signed the etcd certificates of $NODE_NAME${RENEWAL:+ (renewal $RENEWAL)}"
dir=$CERT_DIR/etcd
printf '{"serverCert":%s,"serverKey":%s,"peerCert":%s,"peerKey":%s,"healthcheckClientCert":%s,"healthcheckClientKey":%s}\n' \
  "$(json_string "$dir/server.crt")" "$(json_string "$dir/server.key")" "$(json_string "$dir/peer.crt")" \
  "$(json_string "$dir/peer.key")" "$(json_string "$dir/healthcheck-client.crt")" "$(json_string "$dir/healthcheck-client.key")"
