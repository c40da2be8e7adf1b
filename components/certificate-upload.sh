#!/usr/bin/env bash
# Upload the control-plane certificates for the control planes joining in this run, on the first control
# plane: kubeadm encrypts them into the Secret kube-system/kubeadm-certs, which lives 2 h (its owner
# token's TTL, phases/copycerts/copycerts.go@v1.36.4) unless join-cleanup.sh deletes it first.
# Parameters: UPLOAD_CERTS_CONFIG (with @KUBERNETES_VERSION@). Prints one JSON document, as its very last action.
set -euo pipefail

wait_for_apiserver
# The cluster's etcd topology decides which certificates are uploaded, so the phase gets the config
# (--upload-certs may be combined with --config: validation.go isAllowedFlag). Without
# --certificate-key kubeadm generates the key itself, so it never appears on a command line.
version=$(installed_kubeadm_version)
[[ -n $version ]] || die "kubeadm is not installed on $(hostname)"
config=$(mktemp)
trap 'rm -f "$config"' EXIT
printf '%s\n' "${UPLOAD_CERTS_CONFIG//@KUBERNETES_VERSION@/v$version}" >"$config"
certificate_key=$(kubeadm init phase upload-certs --upload-certs --config "$config" | tail -n1)
[[ $certificate_key =~ ^[0-9a-f]{64}$ ]] || die "kubeadm init phase upload-certs did not print a certificate key"
log "control-plane certificates uploaded (deleted once the joins are done, else by kubeadm after 2 h)"
printf '{"certificateKey":"%s"}\n' "$certificate_key"
