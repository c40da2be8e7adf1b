#!/usr/bin/env bash
# Draining a node from the first control plane with the upgrade.drain settings (kubectl's flags, see
# kubectl pkg/cmd/drain/drain.go@kubernetes-1.36.3). Needs admin_kubectl from common.sh.
# Parameters: DRAIN_TIMEOUT DRAIN_GRACE_PERIOD DRAIN_SKIP_WAIT_FOR_DELETE_TIMEOUT
set -euo pipefail

# drain_blockers — reads kubectl drain's output on stdin and prints NAMESPACE/POD once for each pod
# whose eviction a PodDisruptionBudget refused. kubectl (pkg/drain/drain.go@kubernetes-1.36.3,
# evictPods) prints for an HTTP 429 from the eviction API
#   error when evicting pods/"NAME" -n "NAMESPACE" (will retry after 5s): MESSAGE
# and the API server's MESSAGE for a budget (pkg/registry/core/pod/storage/eviction.go) is
#   Cannot evict pod as it would violate the pod's disruption budget.
drain_blockers() {
  sed -n 's|^error when evicting pods/"\([^"]*\)" -n "\([^"]*\)" (will retry after [^)]*): Cannot evict pod as it would violate the pod.s disruption budget\.$|\2/\1|p' \
    | sort -u
}

# drain_node NODE — cordons and drains NODE. On failure prints why on stdout (the pods a
# PodDisruptionBudget keeps there, or kubectl's last error) and returns 1.
drain_node() {
  local node=$1 output status=0 blockers
  output=$(mktemp)
  admin_kubectl drain "$node" --ignore-daemonsets --delete-emptydir-data --force \
    --timeout="$DRAIN_TIMEOUT" --grace-period="$DRAIN_GRACE_PERIOD" \
    --skip-wait-for-delete-timeout="$DRAIN_SKIP_WAIT_FOR_DELETE_TIMEOUT" 2>&1 | tee "$output" >&2 || status=$?
  if ((status == 0)); then
    rm -f "$output"
    return 0
  fi
  blockers=$(drain_blockers <"$output" | paste -sd, - | sed 's/,/, /g')
  if [[ -n $blockers ]]; then
    echo "a PodDisruptionBudget allows no disruption of pod $blockers (kubectl get pdb -A shows which; scale the workload up or relax the budget, or raise upgrade.drain.timeout from $DRAIN_TIMEOUT)"
  else
    echo "kubectl drain failed: $(grep '^error' "$output" | tail -n1 || true)"
  fi
  rm -f "$output"
  return 1
}
