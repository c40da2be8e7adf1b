#!/usr/bin/env bash
# Write keepalived (VIP by VRRP) and haproxy (TCP balancing over every API server) as static pods.
# Parameters: VIP VIP_INTERFACE ('' = the interface that routes to the VIP) HAPROXY_CFG HAPROXY_MANIFEST
#   KEEPALIVED_CONF (with @INTERFACE@ and @AUTH_PASS@) KEEPALIVED_CHECK KEEPALIVED_MANIFEST
# stdin: the VRRP password (secret).
set -euo pipefail

auth_pass=$(head -c 64)
[[ -n $auth_pass ]] || die "no VRRP password on stdin"
interface=$(vip_interface "$VIP" "$VIP_INTERFACE")
install -d -m 0755 /etc/kubernetes/manifests /etc/haproxy /etc/keepalived
printf '%s\n' "$HAPROXY_CFG" | write_if_changed /etc/haproxy/haproxy.cfg || true
printf '%s\n' "$KEEPALIVED_CHECK" | write_if_changed /etc/keepalived/check_apiserver.sh || true
chmod 0755 /etc/keepalived/check_apiserver.sh
conf=${KEEPALIVED_CONF//@INTERFACE@/$interface}
printf '%s\n' "${conf//@AUTH_PASS@/$auth_pass}" | write_if_changed /etc/keepalived/keepalived.conf || true
chmod 0600 /etc/keepalived/keepalived.conf
printf '%s\n' "$HAPROXY_MANIFEST" | write_if_changed /etc/kubernetes/manifests/haproxy.yaml || true
printf '%s\n' "$KEEPALIVED_MANIFEST" | write_if_changed /etc/kubernetes/manifests/keepalived.yaml || true
log "haproxy and keepalived static pods in place (VIP $VIP on $interface)"
