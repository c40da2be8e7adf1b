#!/usr/bin/env bash
# On the first control plane: once a worker reports K8S_VERSION, make it schedulable again (if the
# upgrade drained it; a node cordoned by hand stays cordoned).
# Parameters: NODE_NAME K8S_VERSION
set -euo pipefail

reports_target() {
  [[ $(admin_kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}') == "v$K8S_VERSION" ]]
}

wait_for_apiserver
retry 60 5 reports_target || die "$NODE_NAME does not report kubelet v$K8S_VERSION after 5 minutes; it stays cordoned"
uncordon_after_upgrade "$NODE_NAME"
log "$NODE_NAME runs v$K8S_VERSION"
