#!/usr/bin/env bash
# etcd restore, on the first etcd member after MEMBER started: the learner becomes a voting member once
# it has caught up (etcd refuses the promotion until then: "can only promote a learner member which is
# in sync with leader", ErrLearnerNotReady in server/etcdserver/errors/errors.go@v3.6.8), then MEMBER
# answers healthy.
# Parameters: RESTORE_ID MEMBER MEMBER_PEER_URL MEMBER_CLIENT_URL CLIENT_URL TOOLS_DIR
set -euo pipefail

promoted() {
  local line id
  line=$(etcdctl_at "$CLIENT_URL" member list | grep -F ", $MEMBER_PEER_URL, ") || return 1
  [[ $line == *", false" ]] && return 0
  id=${line%%,*}
  etcdctl_at "$CLIENT_URL" member promote "$id" >&2
}

restore_step "promote-$MEMBER" first
retry 60 5 promoted || die "$MEMBER did not catch up with the restored cluster within 5 minutes"
retry 60 5 etcd_member_healthy "$MEMBER_CLIENT_URL" || die "etcd member $MEMBER is not healthy after 5 minutes"
step_done "promote-$MEMBER"
log "etcd restore $RESTORE_ID: $MEMBER is a voting member again"
