#!/usr/bin/env bash
# On the first control plane: drain a worker before its upgrade, unless it already runs K8S_VERSION.
# Parameters: NODE_NAME K8S_VERSION
set -euo pipefail

wait_for_apiserver
kubelet=$(admin_kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}')
if [[ $kubelet == "v$K8S_VERSION" ]]; then
  log "$NODE_NAME runs $K8S_VERSION: no drain needed"
  exit 0
fi
log "draining $NODE_NAME for its upgrade from $kubelet to v$K8S_VERSION"
drain_for_upgrade "$NODE_NAME"
