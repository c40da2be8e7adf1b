#!/usr/bin/env bash
# Mint a bootstrap token for the nodes joining in this run, on the first control plane, and read the CA
# hash. Parameters: TOKEN_TTL TOKEN_DESCRIPTION. Prints one JSON document, as its very last action.
# join-cleanup.sh deletes the token once every join of the set is done; the TTL bounds a run that stops
# before that.
set -euo pipefail

wait_for_apiserver
token=$(kubeadm token create --ttl "$TOKEN_TTL" --description "$TOKEN_DESCRIPTION" | tail -n1)
[[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || die "kubeadm token create did not print a token"
ca_hash=$(openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
log "join material minted (token valid $TOKEN_TTL at most; deleted once the joins are done)"
printf '{"token":"%s","caCertHash":"sha256:%s"}\n' "$token" "$ca_hash"
