#!/usr/bin/env bash
# Report an external etcd member's certificate expiry as kubeadm's JSON (the whole stdout): kubeadm
# reads the member's own configuration, in which etcd is local, so it lists the etcd certificates.
# Parameters: RENEWAL K8S_VERSION (re-read after each renewal or upgrade)
set -euo pipefail

log "checking etcd certificate expiry (renewal '${RENEWAL}', version $K8S_VERSION)"
kubeadm certs check-expiration --config /etc/kubernetes/kubeadm-cluster/etcd.yaml -o json
