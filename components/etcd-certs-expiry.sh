#!/usr/bin/env bash
# Report an external etcd member's certificate expiry as kubeadm's CertificateExpirationInfo JSON (the
# whole stdout). On the first member kubeadm reads the member's own configuration, in which etcd is
# local, so it lists the etcd certificates. The other members hold no etcd CA key, and without it
# kubeadm treats the etcd CA as external and refuses unless the API servers' client pair is there too
# (UsingExternalEtcdCA, cmd/kubeadm/app/phases/certs/certs.go@v1.36.4), which a member never holds:
# their certificates are read with openssl, under kubeadm's names.
# Parameters: RENEWAL K8S_VERSION (re-read after each renewal or upgrade)
set -euo pipefail

pki=/etc/kubernetes/pki/etcd
log "checking etcd certificate expiry (renewal '${RENEWAL}', version $K8S_VERSION)"
if [[ -f $pki/ca.key ]]; then
  kubeadm certs check-expiration --config /etc/kubernetes/kubeadm-cluster/etcd.yaml -o json
  exit 0
fi

# certificate NAME FILE CA_NAME — one entry as kubeadm prints it (output/v1alpha3 Certificate).
certificate() {
  local end
  end=$(openssl x509 -noout -enddate -in "$2" | cut -d= -f2)
  printf '{"name": "%s", "expirationDate": "%s", "caName": "%s"}' "$1" "$(date -u -d "$end" +%Y-%m-%dT%H:%M:%SZ)" "$3"
}

printf '{"kind": "CertificateExpirationInfo", "apiVersion": "output.kubeadm.k8s.io/v1alpha3", "certificates": [%s, %s, %s], "certificateAuthorities": [%s]}\n' \
  "$(certificate etcd-server "$pki/server.crt" etcd-ca)" "$(certificate etcd-peer "$pki/peer.crt" etcd-ca)" \
  "$(certificate etcd-healthcheck-client "$pki/healthcheck-client.crt" etcd-ca)" "$(certificate etcd-ca "$pki/ca.crt" '')"
