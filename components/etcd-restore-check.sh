#!/usr/bin/env bash
# etcd restore, step 1 on every node the restore touches, before anything changes: the node answers
# (the engine runs no stop step unless every check, and the snapshot step, succeeded) and has the
# static-pod manifests the restore moves aside.
# Parameters: RESTORE_ID NODE_NAME COMPONENTS
set -euo pipefail

fail() { die "etcd restore $RESTORE_ID refused on $NODE_NAME, nothing was changed: $1"; }

restore_step check
for component in $COMPONENTS; do
  [[ -f $MANIFESTS/$component.yaml || -f $PARKED/$component.yaml ]] \
    || fail "no static pod manifest $MANIFESTS/$component.yaml: is this node a kubeadm $component host?"
done
step_done check
log "etcd restore $RESTORE_ID: $NODE_NAME is ready"
