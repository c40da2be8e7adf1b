#!/usr/bin/env bash
# Renew this control plane's certificates when certificates.renew has a new value, then restart its
# static pods so they load them. Parameters: NODE_NAME RENEWAL
set -euo pipefail

STATE=/etc/kubernetes/kubeadm-cluster/certificates-renewal
if [[ -z $RENEWAL ]]; then
  log "no certificate renewal requested"
  exit 0
fi
if [[ -f $STATE && $(cat "$STATE") == "$RENEWAL" ]]; then
  log "certificates already renewed for '$RENEWAL'"
  exit 0
fi
log "renewing the certificates of $NODE_NAME"
kubeadm certs renew all >&2
# The kubelet restarts a static pod whose manifest disappears and comes back (it looks every 20 s).
parked=$(mktemp -d)
for component in kube-apiserver kube-controller-manager kube-scheduler etcd; do
  manifest=/etc/kubernetes/manifests/$component.yaml
  if [[ -f $manifest ]]; then mv "$manifest" "$parked"/; fi
done
sleep 20
mv "$parked"/*.yaml /etc/kubernetes/manifests/
rmdir "$parked"
wait_for_apiserver
install -d -m 0700 "${STATE%/*}"
printf '%s' "$RENEWAL" >"$STATE"
log "certificates of $NODE_NAME renewed; static pods restarted"
