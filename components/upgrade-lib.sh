#!/usr/bin/env bash
# Version helpers for the upgrade steps. Parameters: K8S_VERSION (the target); upgrade_kubelet also
# needs packages.sh and its parameters.
set -euo pipefail

# The control-plane version this node runs (from its kube-apiserver manifest), or empty.
local_control_plane_version() {
  sed -n 's/.*kube-apiserver:v\([0-9][0-9.]*\).*/\1/p' /etc/kubernetes/manifests/kube-apiserver.yaml 2>/dev/null | head -n1
}

local_kubelet_version() {
  kubelet --version 2>/dev/null | sed -n 's/^Kubernetes v//p'
}

# check_upgrade_path FROM TO — refuses downgrades and minor skips, naming both versions.
check_upgrade_path() {
  local from=$1 to=$2 from_major from_minor from_patch to_major to_minor to_patch
  IFS=. read -r from_major from_minor from_patch <<<"$from"
  IFS=. read -r to_major to_minor to_patch <<<"$to"
  if ((to_major != from_major || to_minor < from_minor || (to_minor == from_minor && to_patch < from_patch))); then
    die "refusing to downgrade Kubernetes from $from to $to: kubeadm does not support downgrades"
  fi
  if ((to_minor > from_minor + 1)); then
    die "refusing to upgrade Kubernetes from $from to $to: kubeadm upgrades one minor version at a time; set kubernetesVersion to the latest 1.$((from_minor + 1)).x patch first, run pulumi up, then go on to $to"
  fi
}

DRAIN_MARK=kubeadm-cluster.io/drained-for-upgrade

# drain_for_upgrade NODE — marks the node first, so a later step (or a re-run after an interruption)
# knows this tool cordoned it and may uncordon it. Needs drain.sh.
drain_for_upgrade() {
  local why
  admin_kubectl annotate node "$1" "$DRAIN_MARK=v$K8S_VERSION" --overwrite >/dev/null
  why=$(drain_node "$1") || die "$1 was not drained within $DRAIN_TIMEOUT, so its upgrade did not start: $why. It stays cordoned; run pulumi up again once the pods can move"
}

# uncordon_after_upgrade NODE — uncordons a node drained by drain_for_upgrade; a node someone
# cordoned by hand stays cordoned.
uncordon_after_upgrade() {
  local mark
  mark=$(admin_kubectl get node "$1" -o "jsonpath={.metadata.annotations.kubeadm-cluster\.io/drained-for-upgrade}")
  if [[ -n $mark ]]; then
    admin_kubectl uncordon "$1" >&2
    admin_kubectl annotate node "$1" "$DRAIN_MARK-" >/dev/null
  fi
}

upgrade_kubelet() {
  if [[ $RUNTIME == cri-o ]]; then upgrade_crio; fi
  install_kubernetes_packages kubelet kubectl cri-tools
  systemctl daemon-reload
  systemctl restart kubelet
}

# prune_snapshots DIR KEEP — removes all but the KEEP newest before-v*.db snapshots in DIR: each one
# holds the whole keyspace, and a cluster upgraded for years would otherwise fill the disk.
prune_snapshots() {
  local dir=$1 keep=$2
  find "$dir" -maxdepth 1 -name 'before-v*.db' -printf '%T@ %p\n' | sort -rn | tail -n +"$((keep + 1))" \
    | cut -d' ' -f2- | xargs -r rm -f --
}
