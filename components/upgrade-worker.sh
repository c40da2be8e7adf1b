#!/usr/bin/env bash
# Upgrade a (drained) worker to K8S_VERSION: kubeadm upgrade node, then kubelet and kubectl.
# A no-op when its kubelet already runs K8S_VERSION. Parameters: NODE_NAME K8S_VERSION K8S_MINOR K8S_REPO_URL
set -euo pipefail

current=$(local_kubelet_version)
if [[ $current == "$K8S_VERSION" ]]; then
  log "$NODE_NAME runs $K8S_VERSION: nothing to upgrade"
  exit 0
fi
check_upgrade_path "$current" "$K8S_VERSION"
kubernetes_repository
refresh_package_index
install_kubernetes_packages kubeadm
log "kubeadm upgrade node"
kubeadm upgrade node >&2
upgrade_kubelet
log "$NODE_NAME upgraded to $K8S_VERSION"
