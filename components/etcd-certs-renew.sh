#!/usr/bin/env bash
# Renew an external etcd member's certificates when certificates.renew has a new value (kubeadm's
# renewal skips them with external etcd: phases/certs/renewal/manager.go@v1.36.4 GetCertsWithoutEtcd),
# restart its etcd and wait until it and every other member are healthy before the next member.
# The first member, which alone keeps the etcd CA key, renews with kubeadm and also the API servers'
# client pair, printed (secret) as the very last action for the control planes; every other member
# installs its certificates signed again on the first member (etcd-member-certs.sh), from stdin.
# Parameters: NODE_NAME RENEWAL LOCAL_ENDPOINT ENDPOINTS (one a line) FIRST
set -euo pipefail

STATE_DIR=/etc/kubernetes/kubeadm-cluster
STATE=$STATE_DIR/certificates-renewal
PARKED=$STATE_DIR/parked-manifests
PKI=/etc/kubernetes/pki

if [[ -f $PARKED/etcd.yaml ]]; then mv "$PARKED/etcd.yaml" /etc/kubernetes/manifests/; fi  # a run stopped while parked
# Members set up before the CA key stayed on the first one still hold it.
if [[ $FIRST != true ]]; then rm -f "$PKI/etcd/ca.key"; fi
if [[ -z $RENEWAL ]]; then
  log "no certificate renewal requested"
  exit 0
fi
if [[ -f $STATE && $(cat "$STATE") == "$RENEWAL" ]]; then
  log "etcd certificates of $NODE_NAME already renewed for '$RENEWAL'"
else
  log "renewing the etcd certificates of $NODE_NAME"
  if [[ $FIRST == true ]]; then
    # kubeadm signs them again with the etcd CA, keeping their names and addresses; it needs the CA
    # key (renewal/manager.go@v1.36.4 RenewUsingLocalCA: LoadCertificateAuthority).
    for cert in etcd-server etcd-peer etcd-healthcheck-client; do
      kubeadm certs renew "$cert" --config "$STATE_DIR/etcd.yaml" >&2
    done
    kubeadm certs renew apiserver-etcd-client --config "$STATE_DIR/etcd-ca.yaml" >&2
  else
    bundle=$(mktemp -d)
    trap 'rm -rf "$bundle"' EXIT
    unpack_bundle "$bundle"
    for cert in server peer healthcheck-client; do
      [[ -s $bundle/$cert.crt && -s $bundle/$cert.key ]] || die "the renewed etcd $cert certificate of $NODE_NAME was not on stdin"
      install_if_changed "$bundle/$cert.crt" "$PKI/etcd/$cert.crt" 0644
      install_if_changed "$bundle/$cert.key" "$PKI/etcd/$cert.key" 0600
    done
  fi
  # The kubelet restarts a static pod whose manifest disappears and comes back; it re-reads the
  # directory every 20 s (fileCheckFrequency, pkg/kubelet/apis/config/v1beta1/defaults.go@v1.36.4).
  install -d -m 0700 "$PARKED"
  mv /etc/kubernetes/manifests/etcd.yaml "$PARKED"/
  sleep 20
  mv "$PARKED/etcd.yaml" /etc/kubernetes/manifests/
  rmdir "$PARKED"
  # This member first, then all of them: the next member parks its etcd only with a healthy quorum.
  wait_for_etcd_members "$LOCAL_ENDPOINT"
  wait_for_etcd_members "$ENDPOINTS"
  printf '%s' "$RENEWAL" >"$STATE"
  log "etcd certificates of $NODE_NAME renewed; etcd restarted and the cluster healthy"
fi
if [[ $FIRST == true ]]; then
  printf '{"clientCert":%s,"clientKey":%s}\n' \
    "$(json_string "$PKI/apiserver-etcd-client.crt")" "$(json_string "$PKI/apiserver-etcd-client.key")"
fi
