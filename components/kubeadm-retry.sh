#!/usr/bin/env bash
# Retrying a half-finished kubeadm init or join the way kubeadm supports: `kubeadm reset`, then again.
# reset empties /etc/kubernetes/manifests and /etc/kubernetes/pki and removes the kubeconfig files
# (cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go@v1.36.4), which also takes what earlier steps put
# there for this one (the endpoint's static pods, the external-etcd client pair) and the cluster's
# identity (its CAs and service-account key). Those are kept across the reset: kubeadm uses existing
# CAs and keys rather than making new ones (phases/certs/certs.go), so a retried init keeps the
# identity under which a half-finished one may already have written to an external etcd, and the
# data there stays valid.
set -euo pipefail

# restore_kept STATE_DIR — puts back what reset_keeping saved, if a run stopped before it could.
restore_kept() {
  local keep=$1/kept-across-reset file
  if [[ -d $keep ]]; then
    while IFS= read -r -d '' file; do
      file=${file#"$keep"}
      mkdir -p "${file%/*}"
      cp -p "$keep$file" "$file"
    done < <(find "$keep" -type f -print0)
    rm -rf "$keep"
  fi
}

# reset_keeping STATE_DIR CRI_SOCKET FILE... — kubeadm reset -f, keeping the FILEs that exist. The copy
# is complete before reset runs and is removed only after it is back, so a retry at any line converges.
reset_keeping() {
  local state=$1 socket=$2 keep=$1/kept-across-reset file
  shift 2
  if [[ ! -d $keep ]]; then
    rm -rf "$keep.partial"
    install -d -m 0700 "$keep.partial"
    for file in "$@"; do
      if [[ -f $file ]]; then
        install -d -m 0700 "$keep.partial${file%/*}"
        cp -p "$file" "$keep.partial$file"
      fi
    done
    mv "$keep.partial" "$keep"
  fi
  kubeadm reset -f --cri-socket "$socket" >&2
  restore_kept "$state"
}

# remove_own_etcd_member — before a half-finished control-plane join is reset: its stacked etcd member, if the
# join added one. The join adds the member before it waits for the kubelet's TLS bootstrap and the control plane
# (phases control-plane-join-etcd, then kubelet-wait-bootstrap: cmd/kubeadm/app/cmd/join.go@v1.36.4), but reset
# removes it only when it can read the node's registration from the cluster, and an unfinished join has no Node
# (cmd/kubeadm/app/cmd/phases/reset/removeetcdmember.go: it then only empties the data directory). Left behind,
# the member panics when the next join starts it on the emptied directory ("tocommit(N) is out of range
# [lastIndex(0)]"): every retry fails and the cluster keeps a dead voter. Removed through another member's gRPC
# gateway (POST /v3/cluster/member/list and /remove), with the etcd client certificate the join created.
remove_own_etcd_member() {
  local manifest=/etc/kubernetes/manifests/etcd.yaml pki=/etc/kubernetes/pki/etcd own peer endpoint members id
  local -a tls peers
  [[ -f $manifest && -f $pki/healthcheck-client.crt ]] || return 0
  tls=(--cacert "$pki/ca.crt" --cert "$pki/healthcheck-client.crt" --key "$pki/healthcheck-client.key")
  own=$(sed -n 's/^ *- --initial-advertise-peer-urls=//p' "$manifest")
  mapfile -t peers < <(sed -n 's/^ *- --initial-cluster=//p' "$manifest" | tr ',' '\n' | sed 's/^[^=]*=//' | grep -vxF "$own")
  ((${#peers[@]})) || return 0
  for peer in "${peers[@]}"; do
    endpoint=${peer%:*}:2379  # kubeadm's members serve clients on 2379 of their peer address
    members=$(curl -sf --max-time 10 "${tls[@]}" -X POST -d '{}' "$endpoint/v3/cluster/member/list") || continue
    id=$(grep -o '{[^{}]*}' <<<"$members" | grep -F "\"$own\"" | sed -n 's/.*"ID": *"\([0-9]*\)".*/\1/p' || true)
    if [[ -z $id ]]; then
      return 0
    fi
    curl -sf --max-time 10 "${tls[@]}" -X POST -d "{\"ID\":\"$id\"}" "$endpoint/v3/cluster/member/remove" >/dev/null \
      || die "could not remove this node's etcd member $id (left by the unfinished join) through $endpoint"
    log "removed this node's etcd member $id, left by the unfinished join, through $endpoint"
    return 0
  done
  die "no other etcd member (${peers[*]}) answered: this node's member, left by the unfinished join, is not removed"
}

# wait_until_own_node_is_not_ready NODE_NAME — before a half-finished join is reset: when its kubelet already
# registered the Node, kubeadm join refuses to run again while that Node is Ready ("a Node with name ... and status
# Ready already exists in the cluster": cmd/kubeadm/app/cmd/phases/join/kubelet.go@v1.36.4), and a node's own
# credentials cannot delete its Node (role system:node: plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
# So the kubelet stops and the node's kubeconfig reads the Node until the node lifecycle controller marks it not
# ready (node-monitor-grace-period: 50 s by default, pkg/controller/nodelifecycle/config/v1alpha1/defaults.go).
# Without a registration, or an API server to ask, there is nothing to wait for.
# own_node_is_not_ready NODE_NAME — true unless the node's kubeconfig reads the Node as Ready.
own_node_is_not_ready() {
  local ready
  ready=$(kubectl --kubeconfig /etc/kubernetes/kubelet.conf --request-timeout 10s get node "$1" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) || return 0
  [[ $ready != True ]]
}

wait_until_own_node_is_not_ready() {
  [[ -f /etc/kubernetes/kubelet.conf ]] || return 0
  systemctl stop kubelet
  own_node_is_not_ready "$1" && return 0
  log "the unfinished join registered the Node $1: waiting until it is marked not ready (about a minute)"
  retry 36 5 own_node_is_not_ready "$1" \
    || die "the Node $1, registered by the unfinished join, was still Ready 3 minutes after its kubelet stopped"
}
