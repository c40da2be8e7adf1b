#!/bin/sh
# keepalived's health check (kubeadm ha-considerations): the local haproxy must answer /healthz.
# @PORT@ is replaced by the endpoint port when the file is rendered.
port=@PORT@
curl -sfk --max-time 2 "https://localhost:${port}/healthz" -o /dev/null || {
  echo "*** Error GET https://localhost:${port}/healthz" >&2
  exit 1
}
