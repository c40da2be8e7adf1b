#!/usr/bin/env bash
# On the first control plane: once a worker reports K8S_VERSION, make it schedulable again.
# Parameters: NODE_NAME K8S_VERSION
set -euo pipefail

reports_target() {
  [[ $(admin_kubectl get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.kubeletVersion}') == "v$K8S_VERSION" ]]
}

wait_for_apiserver
retry 60 5 reports_target || die "$NODE_NAME does not report kubelet v$K8S_VERSION after 5 minutes; it stays cordoned"
admin_kubectl uncordon "$NODE_NAME" >&2
log "$NODE_NAME is schedulable at v$K8S_VERSION"
