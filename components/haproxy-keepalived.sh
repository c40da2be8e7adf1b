#!/usr/bin/env bash
# Write keepalived (VIP by VRRP) and haproxy (TCP balancing over every API server) as static pods.
# Parameters: VIP VIP_INTERFACE ('' = the interface that routes to the VIP) PORT (the endpoint's)
#   HAPROXY_CFG HAPROXY_MANIFEST KEEPALIVED_CONF (with @INTERFACE@ and @AUTH_PASS@) KEEPALIVED_CHECK
#   KEEPALIVED_MANIFEST
# stdin: the VRRP password (secret).
# When haproxy already runs and its config changes (a control plane added or removed), the kubelet
# restarts it: wait until the new one answers, so the next control plane's update (which waits for
# this step) never restarts its haproxy while this one is down.
set -euo pipefail

# The start time (seconds since the epoch) of each process listening on the endpoint port; none
# before the kubelet runs haproxy.
listener_starts() {
  local pid btime tick stat fields
  btime=$(sed -n 's/^btime //p' /proc/stat) tick=$(getconf CLK_TCK)
  for pid in $(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # Field 22 is the start time in clock ticks since boot; the command name before it may hold spaces.
    read -r -a fields <<<"${stat##*) }"
    echo $((btime + fields[19] / tick))
  done
}

# haproxy started after its manifest was last written, and answers /healthz (as keepalived's check asks).
current_haproxy_answers() {
  local written start
  written=$(stat -c %Y /etc/kubernetes/manifests/haproxy.yaml)
  for start in $(listener_starts); do
    if ((start >= written)) && curl -sfk --max-time 2 "https://localhost:$PORT/healthz" -o /dev/null; then
      return 0
    fi
  done
  return 1
}

auth_pass=$(head -c 64)
[[ -n $auth_pass ]] || die "no VRRP password on stdin"
interface=$(vip_interface "$VIP" "$VIP_INTERFACE")
install -d -m 0755 /etc/kubernetes/manifests /etc/haproxy /etc/keepalived
printf '%s\n' "$HAPROXY_CFG" | write_if_changed /etc/haproxy/haproxy.cfg || true
printf '%s\n' "$KEEPALIVED_CHECK" | write_if_changed /etc/keepalived/check_apiserver.sh 0755 || true
# Quoted replacements are literal: unquoted, bash 5.2 (patsub_replacement) puts the match for each '&'.
conf=${KEEPALIVED_CONF//@INTERFACE@/"$interface"}
# It holds the VRRP password: readable by root only, from its first byte (keepalived itself only asks
# for a regular file without execute bits, lib/parser.c check_conf_file @v2.2.7).
printf '%s\n' "${conf//@AUTH_PASS@/"$auth_pass"}" | write_if_changed /etc/keepalived/keepalived.conf 0600 || true
printf '%s\n' "$KEEPALIVED_MANIFEST" | write_if_changed /etc/kubernetes/manifests/keepalived.yaml || true
# The haproxy manifest carries the config's hash, so it changes exactly when haproxy must restart.
printf '%s\n' "$HAPROXY_MANIFEST" | write_if_changed /etc/kubernetes/manifests/haproxy.yaml || true
# Also on a retry after the manifest was written: an older haproxy still runs until the kubelet restarts it.
if [[ -n $(listener_starts) ]] && ! current_haproxy_answers; then
  log "haproxy runs an older config: waiting for the kubelet to restart it and for it to answer on port $PORT"
  retry 60 3 current_haproxy_answers || die "haproxy did not answer on port $PORT within 3 minutes of its new manifest"
fi
log "haproxy and keepalived static pods in place (VIP $VIP on $interface)"
