#!/usr/bin/env bash
# Print the admin kubeconfig of the first control plane, as the very last action.
# Parameters: RENEWAL K8S_VERSION (read again after each renewal or upgrade)
set -euo pipefail

wait_for_apiserver
[[ -s /etc/kubernetes/admin.conf ]] || die "/etc/kubernetes/admin.conf is missing"
log "reading the admin kubeconfig (version $K8S_VERSION${RENEWAL:+, certificate renewal $RENEWAL})"
cat /etc/kubernetes/admin.conf
