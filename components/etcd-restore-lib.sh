#!/usr/bin/env bash
# Shared by the etcd-restore-*.sh steps (etcd.restore): where a restore keeps its state and what it
# keeps, and etcdctl against a member with the healthcheck-client pair kubeadm made on each etcd host.
# Each step runs once per restore id: a marker in RESTORE_STATE makes it a no-op afterwards, so a run
# stopped at any line converges when `pulumi up` runs it again, and later changes to the step's text
# (another node added) run nothing.
# Parameters: RESTORE_ID TOOLS_DIR
set -euo pipefail

# Not every step uses every path.
# shellcheck disable=SC2034
{
  RESTORE_STATE=/var/lib/kubeadm-cluster/etcd-restore/$RESTORE_ID
  PARKED=$RESTORE_STATE/manifests  # static-pod manifests moved aside while etcd is restored
  DATA_DIR=/var/lib/etcd           # kubeadm's etcd.local.dataDir (components/kubeadm_config.py)
  KEPT_DATA_DIR=/var/lib/etcd-before-restore-$RESTORE_ID
  MANIFESTS=/etc/kubernetes/manifests
}

# restore_step NAME [AFTER] — ends the script when no restore is asked for, NAME already ran for this id,
# or step AFTER did not run here for it: a step whose text names other nodes changes when nodes are added
# or removed, and must then do nothing unless its restore is under way (the engine ran AFTER first).
restore_step() {
  if [[ -z $RESTORE_ID ]]; then
    log "no etcd restore requested (etcd.restore.id is not set)"
    exit 0
  fi
  if [[ -f $RESTORE_STATE/$1.done ]]; then
    log "etcd restore $RESTORE_ID: $1 already done"
    exit 0
  fi
  if [[ -n ${2:-} && ! -f $RESTORE_STATE/$2.done ]]; then
    log "etcd restore $RESTORE_ID is not under way here (no $2 step ran): nothing to do"
    exit 0
  fi
  install -d -m 0700 "$RESTORE_STATE"
}

step_done() { touch "$RESTORE_STATE/$1.done"; }

# runs NAME — a process named NAME runs here (a static pod's container is a process of this machine).
# The kernel keeps 15 characters of a command name (TASK_COMM_LEN): kube-controller-manager is
# "kube-controller" in /proc/PID/comm.
runs() {
  local comm
  for comm in /proc/[0-9]*/comm; do
    [[ $(cat "$comm" 2>/dev/null) == "${1:0:15}" ]] && return 0
  done
  return 1
}

stopped() { ! runs "$1"; }

# etcdctl_at ENDPOINT ARGS… — the etcdctl this restore checked (TOOLS_DIR/etcdctl) against ENDPOINT.
etcdctl_at() {
  local pki=/etc/kubernetes/pki/etcd
  "$TOOLS_DIR/etcdctl" --endpoints="$1" --cacert="$pki/ca.crt" --cert="$pki/healthcheck-client.crt" \
    --key="$pki/healthcheck-client.key" "${@:2}"
}
