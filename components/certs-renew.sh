#!/usr/bin/env bash
# Renew this control plane's certificates when certificates.renew has a new value, then restart its
# static pods so they load them, and wait until this node's own API server and etcd member serve
# again before the next control plane parks its own.
# With external etcd, the API server's etcd client pair renewed on the first etcd member comes on stdin.
# Parameters: NODE_NAME RENEWAL LOCAL_API_SERVER (https://advertise-address:port) STACKED_ETCD
set -euo pipefail

STATE_DIR=/etc/kubernetes/kubeadm-cluster
STATE=$STATE_DIR/certificates-renewal
PARKED=$STATE_DIR/parked-manifests

unpark() {
  if [[ -d $PARKED ]]; then
    find "$PARKED" -maxdepth 1 -name '*.yaml' -exec mv -t /etc/kubernetes/manifests {} +
    rmdir "$PARKED"
  fi
}

local_api_server_ready() { admin_kubectl --server "$LOCAL_API_SERVER" get --raw=/readyz >/dev/null 2>&1; }
# kubeadm's own probe of the etcd member: the metrics listener on 127.0.0.1:2381 (phases/etcd/local.go
# @v1.36.4); /readyz answers once the member has a leader and serves linearizable reads.
local_etcd_ready() { curl -sf --max-time 5 http://127.0.0.1:2381/readyz >/dev/null; }

unpark  # a run stopped while the manifests were parked
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
if [[ $STACKED_ETCD != true ]]; then
  bundle=$(mktemp -d)
  trap 'rm -rf "$bundle"' EXIT
  unpack_bundle "$bundle"
  for file in apiserver-etcd-client.crt apiserver-etcd-client.key; do
    [[ -s $bundle/$file ]] || die "the renewed $file was not on stdin"
  done
  install_if_changed "$bundle/apiserver-etcd-client.crt" /etc/kubernetes/pki/apiserver-etcd-client.crt 0644
  install_if_changed "$bundle/apiserver-etcd-client.key" /etc/kubernetes/pki/apiserver-etcd-client.key 0600
fi
# The kubelet restarts a static pod whose manifest disappears and comes back; it re-reads the directory
# every 20 s (fileCheckFrequency, pkg/kubelet/apis/config/v1beta1/defaults.go@v1.36.4). kube-vip goes
# too: it keeps admin.conf's old client certificate until it restarts.
install -d -m 0700 "$PARKED"
for component in kube-apiserver kube-controller-manager kube-scheduler etcd kube-vip; do
  manifest=/etc/kubernetes/manifests/$component.yaml
  if [[ -f $manifest ]]; then mv "$manifest" "$PARKED"/; fi
done
sleep 20
unpark
# Not through the endpoint, which the other control planes answer: this node's own API server (with
# stacked etcd it talks only to this node's member) and etcd member, before the next node parks its own.
if [[ $STACKED_ETCD == true ]]; then
  retry 60 5 local_etcd_ready || die "the etcd member on $NODE_NAME did not become ready within 5 minutes after its restart"
fi
retry 60 5 local_api_server_ready \
  || die "the API server on $NODE_NAME ($LOCAL_API_SERVER) did not become ready within 5 minutes after its restart"
install -d -m 0700 "$STATE_DIR"
printf '%s' "$RENEWAL" >"$STATE"
log "certificates of $NODE_NAME renewed; static pods restarted and ready"
