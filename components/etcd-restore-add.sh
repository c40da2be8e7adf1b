#!/usr/bin/env bash
# etcd restore, on the first etcd member for each other member in turn: MEMBER joins the restored
# cluster as a learner, as kubeadm's join adds a stacked member (phases/etcd/local.go@v1.36.4: add as
# learner, start, promote): a learner does not count for quorum until it is promoted.
# Parameters: RESTORE_ID MEMBER MEMBER_PEER_URL CLIENT_URL TOOLS_DIR
set -euo pipefail

restore_step "add-$MEMBER" first
# `member list` lines: ID, status, name, peer URLs, client URLs, is learner (etcdctl/ctlv3/command/printer.go@v3.6.8).
if etcdctl_at "$CLIENT_URL" member list | grep -qF ", $MEMBER_PEER_URL, "; then
  log "$MEMBER ($MEMBER_PEER_URL) is already a member"
else
  etcdctl_at "$CLIENT_URL" member add "$MEMBER" --peer-urls="$MEMBER_PEER_URL" --learner >&2
fi
step_done "add-$MEMBER"
