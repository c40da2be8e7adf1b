#!/usr/bin/env bash
# Report certificate expiry on the first control plane as kubeadm's JSON (the whole stdout).
# Parameters: RENEWAL K8S_VERSION (re-read after each renewal or upgrade)
set -euo pipefail

log "checking certificate expiry (renewal '${RENEWAL}', version $K8S_VERSION)"
kubeadm certs check-expiration -o json
