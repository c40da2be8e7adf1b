#!/usr/bin/env bash
# etcd restore, step 2 on every node the restore touches, once every check passed: the control plane's
# static pods (API server, controller manager, scheduler) and etcd stop (their manifests move aside; the
# kubelet stops a static pod whose manifest is gone), and on an etcd member the data directory moves
# aside, kept whole.
# Parameters: RESTORE_ID NODE_NAME COMPONENTS MEMBER
set -euo pipefail

restore_step stop check
install -d -m 0700 "$PARKED"
for component in $COMPONENTS; do
  if [[ -f $MANIFESTS/$component.yaml ]]; then mv "$MANIFESTS/$component.yaml" "$PARKED/"; fi
  [[ -f $PARKED/$component.yaml ]] || die "the $component manifest is in neither $MANIFESTS nor $PARKED"
done
for component in $COMPONENTS; do
  # The kubelet sees a removed manifest at once (inotify) or within 20 s (fileCheckFrequency,
  # pkg/kubelet/apis/config/v1beta1/defaults.go@v1.36.4); the pod then gets its grace period (30 s).
  retry 36 5 stopped "$component" || die "$component still runs on $NODE_NAME 3 minutes after its manifest moved aside"
  log "$component stopped"
done
if [[ $MEMBER == true && -e $DATA_DIR ]]; then
  [[ ! -e $KEPT_DATA_DIR ]] || die "both $DATA_DIR and $KEPT_DATA_DIR exist: move one of them away by hand"
  mv "$DATA_DIR" "$KEPT_DATA_DIR"
  log "etcd's data directory kept in $KEPT_DATA_DIR"
fi
step_done stop
