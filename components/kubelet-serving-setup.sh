#!/usr/bin/env bash
# On the first control plane: installs (or updates) the approver of the kubelets' serving-certificate
# CSRs (kubelet-serving-approve.sh) with its systemd service and a timer that runs it every minute — a
# kubelet asks again before its certificate expires (client-go util/certificate/certificate_manager.go
# nextRotationDeadline@v0.36.2: at 70-90 % of its lifetime) — then runs it once.
# Parameters: APPROVER SERVICE_UNIT TIMER_UNIT
set -euo pipefail

UNIT=kubeadm-cluster-kubelet-serving
changed=false
printf '%s' "$APPROVER" | write_if_changed /usr/local/lib/kubeadm-cluster/kubelet-serving-approve 0700 && changed=true
printf '%s' "$SERVICE_UNIT" | write_if_changed "/etc/systemd/system/$UNIT.service" && changed=true
printf '%s' "$TIMER_UNIT" | write_if_changed "/etc/systemd/system/$UNIT.timer" && changed=true
if [[ $changed == true ]]; then
  systemctl daemon-reload
  log "kubelet serving-certificate approver installed (every minute)"
fi
systemctl enable --now "$UNIT.timer" >&2
if [[ $changed == true ]]; then systemctl restart "$UNIT.timer"; fi
wait_for_apiserver
bash /usr/local/lib/kubeadm-cluster/kubelet-serving-approve
