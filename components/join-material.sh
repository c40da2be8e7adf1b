#!/usr/bin/env bash
# Mint fresh join material on the first control plane: a bootstrap token (24 h), a fresh upload of
# the control-plane certificates (2 h) and the CA hash. Parameters: UPLOAD_CERTS_CONFIG (with
# @KUBERNETES_VERSION@). Prints one JSON document, as its very last action.
set -euo pipefail

wait_for_apiserver
token=$(kubeadm token create --ttl 24h0m0s --description "kubeadm-cluster join material" | tail -n1)
[[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || die "kubeadm token create did not print a token"
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
ca_hash=$(openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
log "join material minted (token valid 24 h, certificate key 2 h)"
printf '{"token":"%s","caCertHash":"sha256:%s","certificateKey":"%s"}\n' "$token" "$ca_hash" "$certificate_key"
