#!/usr/bin/env bash
# Upgrade one control plane to K8S_VERSION: kubeadm first (apply on the first, node on the others),
# then kubelet and kubectl with the node drained. A no-op when the node already runs K8S_VERSION.
# Parameters: NODE_NAME K8S_VERSION K8S_MINOR K8S_REPO_URL FIRST
set -euo pipefail

# This step does not wait for the node's join (workers wait for it and must not wait for control-plane
# joins), so it may meet a node whose join is still to come: that join installs K8S_VERSION itself.
if [[ ! -f /etc/kubernetes/kubelet.conf ]]; then
  log "$NODE_NAME has not joined the cluster yet: nothing to upgrade"
  exit 0
fi
control_plane=$(local_control_plane_version)
kubelet_version=$(local_kubelet_version)
if [[ $control_plane == "$K8S_VERSION" && $kubelet_version == "$K8S_VERSION" ]]; then
  log "$NODE_NAME runs $K8S_VERSION: nothing to upgrade"
  wait_for_apiserver
  uncordon_after_upgrade "$NODE_NAME"  # an earlier run may have stopped between upgrade and uncordon
  exit 0
fi
check_upgrade_path "${kubelet_version:-$control_plane}" "$K8S_VERSION"
wait_for_apiserver
kubernetes_repository
refresh_package_index
install_kubernetes_packages kubeadm
if [[ $control_plane != "$K8S_VERSION" ]]; then
  if [[ $FIRST == true ]]; then
    log "kubeadm upgrade apply v$K8S_VERSION"
    kubeadm upgrade plan "v$K8S_VERSION" >&2
    kubeadm upgrade apply -y "v$K8S_VERSION" >&2
  else
    log "kubeadm upgrade node"
    kubeadm upgrade node >&2
  fi
fi
drain_for_upgrade "$NODE_NAME"
upgrade_kubelet
uncordon_after_upgrade "$NODE_NAME"
log "$NODE_NAME upgraded to $K8S_VERSION"
