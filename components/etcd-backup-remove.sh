#!/usr/bin/env bash
# Removes the scheduled etcd backup from this member (etcd.backup.enabled false, or the member leaves).
# The snapshots and status file stay: they are backups. Parameters: DIRECTORY
set -euo pipefail

UNIT=kubeadm-cluster-etcd-backup
if [[ -f /etc/systemd/system/$UNIT.timer ]]; then
  systemctl disable --now "$UNIT.timer" >&2 || true
  rm -f "/etc/systemd/system/$UNIT.timer" "/etc/systemd/system/$UNIT.service" /usr/local/lib/kubeadm-cluster/etcd-backup
  systemctl daemon-reload
fi
log "etcd backup timer removed; snapshots kept in $DIRECTORY"
