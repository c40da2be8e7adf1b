#!/usr/bin/env bash
# etcd restore, on each other etcd member in turn, after the first member added it: etcd starts with an
# empty data directory and joins the restored cluster. Its manifest names the members so far with
# --initial-cluster-state=existing, as kubeadm writes a joining member's (phases/etcd/local.go@v1.36.4
# getEtcdCommand); etcd reads these flags only while its data directory is empty.
# Parameters: RESTORE_ID NODE_NAME INITIAL_CLUSTER
set -euo pipefail

etcd_started() { runs etcd && curl -sf --max-time 5 http://127.0.0.1:2381/metrics >/dev/null; }

restore_step rejoin stop
manifest=$PARKED/etcd.yaml
if [[ -f $manifest ]]; then
  grep -q -- '- --initial-cluster=' "$manifest" || die "$manifest has no --initial-cluster flag"
  sed -i -e "s|^\( *\)- --initial-cluster=.*|\1- --initial-cluster=$INITIAL_CLUSTER|" -e '/- --initial-cluster-state=/d' "$manifest"
  sed -i -e 's|^\( *\)- --initial-cluster=.*|&\n\1- --initial-cluster-state=existing|' "$manifest"
  install -d -m 0700 "$DATA_DIR"
  mv "$manifest" "$MANIFESTS/"
fi
# kubeadm's etcd serves metrics on 127.0.0.1:2381 (listen-metrics-urls, phases/etcd/local.go@v1.36.4).
retry 60 5 etcd_started || die "etcd on $NODE_NAME did not start within 5 minutes"
step_done rejoin
log "etcd restore $RESTORE_ID: $NODE_NAME started and is catching up"
