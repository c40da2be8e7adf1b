#!/usr/bin/env bash
# On the first control plane: give a node the labels and taints of the config, removing the ones a
# previous run applied and the config no longer lists. Parameters: NODE_NAME LABELS TAINTS (one per line)
set -euo pipefail

STATE=/etc/kubernetes/kubeadm-cluster/nodes/$NODE_NAME
wait_for_apiserver
retry 60 5 admin_kubectl get node "$NODE_NAME" >/dev/null 2>&1 \
  || die "node $NODE_NAME did not register with the API server within 5 minutes"
install -d -m 0700 "$STATE"
touch "$STATE/labels" "$STATE/taints"
while IFS= read -r label; do
  [[ -n $label ]] || continue
  grep -qxF "$label" <<<"$LABELS" || admin_kubectl label node "$NODE_NAME" "${label%%=*}-" >/dev/null
done <"$STATE/labels"
while IFS= read -r taint; do
  [[ -n $taint ]] || continue
  if ! grep -qxF "$taint" <<<"$TAINTS"; then
    key=${taint%%:*}
    admin_kubectl taint node "$NODE_NAME" "${key%%=*}:${taint##*:}-" >/dev/null 2>&1 || true
  fi
done <"$STATE/taints"
while IFS= read -r label; do
  if [[ -n $label ]]; then admin_kubectl label node "$NODE_NAME" "$label" --overwrite >/dev/null; fi
done <<<"$LABELS"
while IFS= read -r taint; do
  if [[ -n $taint ]]; then admin_kubectl taint node "$NODE_NAME" "$taint" --overwrite >/dev/null; fi
done <<<"$TAINTS"
printf '%s\n' "$LABELS" >"$STATE/labels"
printf '%s\n' "$TAINTS" >"$STATE/taints"
log "node $NODE_NAME registered (labels and taints applied)"
