#!/usr/bin/env bash
# On the first control plane: installs (or updates) the approver of the kubelets' serving-certificate
# CSRs (kubelet-serving-approve.sh) with its systemd service and a timer that runs it every minute — a
# kubelet asks again before its certificate expires (client-go util/certificate/certificate_manager.go
# nextRotationDeadline@v0.36.2: at 70-90 % of its lifetime) — then runs it once.
# Parameters: APPROVER SERVICE_UNIT TIMER_UNIT
set -euo pipefail

UNIT=kubeadm-cluster-kubelet-serving
install_timed_program "$UNIT" /usr/local/lib/kubeadm-cluster/kubelet-serving-approve "$APPROVER" \
  "$SERVICE_UNIT" "$TIMER_UNIT" "kubelet serving-certificate approver installed (every minute)"
wait_for_apiserver
bash /usr/local/lib/kubeadm-cluster/kubelet-serving-approve
