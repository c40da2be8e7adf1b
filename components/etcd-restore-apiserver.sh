#!/usr/bin/env bash
# etcd restore, last step on every control plane: the API server starts again on the restored etcd and
# must answer /readyz; then the controller manager and the scheduler start again, so that none of them
# keeps state from before the restore (the Kubernetes docs, "Operating etcd clusters for Kubernetes",
# recommend restarting them). The data directory before the restore stays in /var/lib/etcd-before-restore-ID.
# Parameters: RESTORE_ID NODE_NAME LOCAL_API_SERVER
set -euo pipefail

local_api_server_ready() { admin_kubectl --server "$LOCAL_API_SERVER" get --raw=/readyz >/dev/null 2>&1; }

restore_step apiserver stop
if [[ -f $PARKED/kube-apiserver.yaml ]]; then mv "$PARKED/kube-apiserver.yaml" "$MANIFESTS/"; fi
retry 60 5 local_api_server_ready \
  || die "the API server on $NODE_NAME ($LOCAL_API_SERVER) is not ready 5 minutes after the restore"
for component in kube-controller-manager kube-scheduler; do
  if [[ -f $PARKED/$component.yaml ]]; then mv "$PARKED/$component.yaml" "$MANIFESTS/"; fi
done
step_done apiserver
log "etcd restore $RESTORE_ID done on $NODE_NAME; the old data, if this is an etcd member, is in $KEPT_DATA_DIR"
