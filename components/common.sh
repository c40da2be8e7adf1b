#!/usr/bin/env bash
# Helpers shared by every rendered script. Progress goes to stderr (streamed to `pulumi up`);
# stdout is reserved for the one JSON document (or file) a later step reads.
set -euo pipefail

log() { printf '[kubeadm-cluster %s] %s\n' "$(hostname)" "$*" >&2; }

die() {
  log "ERROR: $*"
  exit 1
}

# retry ATTEMPTS DELAY_SECONDS COMMAND... — returns the command's success, quietly between tries.
retry() {
  local attempts=$1 delay=$2 i
  shift 2
  for ((i = 1; ; i++)); do
    if "$@"; then return 0; fi
    if ((i >= attempts)); then return 1; fi
    sleep "$delay"
  done
}

package_manager() {
  if command -v apt-get >/dev/null 2>&1; then
    echo apt
  elif command -v dnf >/dev/null 2>&1; then
    echo dnf
  else
    die "neither apt-get nor dnf found; supported: Debian 12/13, Ubuntu 22.04/24.04, RHEL/Rocky/Alma 9"
  fi
}

# write_if_changed FILE [MODE]: writes stdin to FILE only when the content differs; returns 0 when it
# changed the file. With MODE, an unchanged FILE gets that mode too.
write_if_changed() {
  local file=$1 mode=${2:-} dir tmp
  dir=$(dirname "$file")
  mkdir -p "$dir"
  # mktemp creates 0600 beside the file (a dot name, which the kubelet's manifest watch skips): the
  # file appears by rename, whole and never with more than MODE allows (default 0644).
  tmp=$(mktemp "$dir/.${file##*/}.XXXXXX")
  cat >"$tmp"
  if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    [[ -z $mode ]] || chmod "$mode" "$file"
    return 1
  fi
  chmod "${mode:-0644}" "$tmp"
  mv -f "$tmp" "$file"
}

# install_timed_program UNIT PROGRAM SCRIPT SERVICE TIMER MESSAGE: installs SCRIPT as PROGRAM (0700) with
# its UNIT.service and UNIT.timer, reloads systemd and logs MESSAGE when any of them changed, and
# leaves the timer enabled and running (restarted after a change, so a new schedule takes effect).
install_timed_program() {
  local unit=$1 program=$2 script=$3 service=$4 timer=$5 message=$6 changed=false
  printf '%s' "$script" | write_if_changed "$program" 0700 && changed=true
  printf '%s' "$service" | write_if_changed "/etc/systemd/system/$unit.service" && changed=true
  printf '%s' "$timer" | write_if_changed "/etc/systemd/system/$unit.timer" && changed=true
  if [[ $changed == true ]]; then
    systemctl daemon-reload
    log "$message"
  fi
  # A schedule systemd cannot parse fails here: the timer unit does not load.
  systemctl enable --now "$unit.timer" >&2
  if [[ $changed == true ]]; then systemctl restart "$unit.timer"; fi
}

# The interface that carries the VIP: the configured one, else the one whose main-table route to it
# is most specific (the connected subnet). Not `ip route get`: on the node holding the VIP that
# answers from the local table, `local VIP dev lo`. The kernel's host route for the VIP's own address
# (IPv6 adds one for a /128) names where it is held, not the network it belongs to.
vip_interface() {
  local vip=$1 configured=$2 found family=-4
  [[ $vip == *:* ]] && family=-6
  # shellcheck disable=SC2016  # awk's $ fields
  found=${configured:-$(ip -o "$family" route show table main match "$vip" 2>/dev/null | awk -v vip="$vip" '
    { dev = ""; for (i = 1; i < NF; i++) if ($i == "dev") { dev = $(i + 1); break } }
    dev == "" || ($1 == vip || $1 == vip "/128") && / proto kernel / { next }
    { len = $1 == "default" ? 0 : index($1, "/") ? substr($1, index($1, "/") + 1) + 0 : 128 }
    found == "" || len > best { best = len; found = dev }
    END { print found }')}
  [[ -n $found ]] || die "no interface routes to the VIP $vip on $(hostname); set controlPlane.loadBalancer.interface"
  ip link show "$found" >/dev/null 2>&1 || die "interface $found does not exist on $(hostname)"
  echo "$found"
}

admin_kubectl() { kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }

wait_for_apiserver() {
  retry 60 5 admin_kubectl get --raw=/readyz >/dev/null 2>&1 \
    || die "the API server did not become ready within 5 minutes"
}

# The version kubeadm on this node reports, without the leading v (e.g. 1.36.4), or empty.
installed_kubeadm_version() {
  if command -v kubeadm >/dev/null 2>&1; then
    kubeadm version -o short 2>/dev/null | sed 's/^v//'
  fi
}
