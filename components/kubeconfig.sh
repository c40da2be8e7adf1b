#!/usr/bin/env bash
# Print the admin kubeconfig of the first control plane, as the very last action. Parameters: RENEWAL
set -euo pipefail

wait_for_apiserver
[[ -s /etc/kubernetes/admin.conf ]] || die "/etc/kubernetes/admin.conf is missing"
log "reading the admin kubeconfig${RENEWAL:+ (after certificate renewal $RENEWAL)}"
cat /etc/kubernetes/admin.conf
