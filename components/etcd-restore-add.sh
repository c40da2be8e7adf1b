#!/usr/bin/env bash
# etcd restore, on the first etcd member for each other member in turn: MEMBER joins the restored
# cluster as a learner, as kubeadm's join adds a stacked member (phases/etcd/local.go@v1.36.4: add as
# learner, start, promote): a learner does not count for quorum until it is promoted.
# Parameters: RESTORE_ID MEMBER MEMBER_PEER_URL CLIENT_URL TOOLS_DIR
set -euo pipefail

# etcd refuses a member add ("unhealthy cluster") until the leader has been connected to every voting
# member for 5 s (mayAddMember, isConnectedFullySince, HealthInterval: server/etcdserver/server.go@v3.6.8),
# which a member promoted just before may not be yet.
added() {
  # `member list` lines: ID, status, name, peer URLs, client URLs, is learner (etcdctl/ctlv3/command/printer.go@v3.6.8).
  # Read whole before searching: etcdctl writes a line at a time (printer_simple.go MemberList), so a grep -q that
  # stops at the first match would end it with SIGPIPE, and pipefail would call the member absent.
  local members
  members=$(etcdctl_at "$CLIENT_URL" member list) || return 1
  if grep -qF ", $MEMBER_PEER_URL, " <<<"$members"; then
    log "$MEMBER ($MEMBER_PEER_URL) is a member"
    return 0
  fi
  etcdctl_at "$CLIENT_URL" member add "$MEMBER" --peer-urls="$MEMBER_PEER_URL" --learner >&2
}

restore_step "add-$MEMBER" first
retry 60 5 added || die "etcd did not accept $MEMBER as a member within 5 minutes"
step_done "add-$MEMBER"
