#!/usr/bin/env bash
# On the first control plane: drain a node that is leaving, remove its stacked etcd member (control
# planes), delete the Node object. Parameters: NODE_NAME REMOVE_ETCD_MEMBER ETCD_POD, drain.sh's
set -euo pipefail

ETCDCTL=(etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt
  --cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key)

etcd_member_id() {
  admin_kubectl -n kube-system exec "$ETCD_POD" -- "${ETCDCTL[@]}" member list -w simple \
    | awk -F', ' -v name="$NODE_NAME" '$3 == name {print $1}'
}

wait_for_apiserver
if admin_kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  log "draining $NODE_NAME"
  # The node is leaving either way: a drain that does not finish only costs its pods a clean move.
  why=$(drain_node "$NODE_NAME") || log "drain of $NODE_NAME did not finish within $DRAIN_TIMEOUT ($why); removing it anyway"
fi
if [[ $REMOVE_ETCD_MEMBER == true ]]; then
  member=$(etcd_member_id)
  if [[ -n $member ]]; then
    log "removing etcd member $NODE_NAME ($member)"
    admin_kubectl -n kube-system exec "$ETCD_POD" -- "${ETCDCTL[@]}" member remove "$member" >&2
  fi
  [[ -z $(etcd_member_id) ]] || die "etcd member $NODE_NAME is still listed after its removal"
fi
admin_kubectl delete node "$NODE_NAME" --ignore-not-found >&2
rm -rf "/etc/kubernetes/kubeadm-cluster/nodes/$NODE_NAME"
log "node $NODE_NAME removed from the cluster"
