#!/usr/bin/env bash
# Installs (or updates) the scheduled etcd backup on this etcd member: the backup script, its systemd
# service and timer. Snapshots already taken are left alone. Prints {"statusFile", "lastSnapshot"}: the
# newest snapshot's time as of this run (read again only when this step runs, so a no-op up stays one).
# Parameters: NODE_NAME BACKUP_SCRIPT SERVICE_UNIT TIMER_UNIT DIRECTORY
set -euo pipefail

UNIT=kubeadm-cluster-etcd-backup
install -d -m 0700 "$DIRECTORY"
install_timed_program "$UNIT" /usr/local/lib/kubeadm-cluster/etcd-backup "$BACKUP_SCRIPT" \
  "$SERVICE_UNIT" "$TIMER_UNIT" "etcd backup timer installed; snapshots go to $DIRECTORY"
# The newest snapshot's time, from its name (etcd-NODE-YYYYmmddTHHMMSSZ.db).
newest=$(find "$DIRECTORY" -maxdepth 1 -name "etcd-$NODE_NAME-*.db" -printf '%f\n' | sort | tail -n1)
last=null
if [[ $newest =~ ([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z\.db$ ]]; then
  m=("${BASH_REMATCH[@]}")
  last="\"${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z\""
fi
printf '{"statusFile": "%s", "lastSnapshot": %s}\n' "$DIRECTORY/status.json" "$last"
