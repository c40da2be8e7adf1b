#!/usr/bin/env bash
# Package helpers shared by node preparation and upgrades.
# Parameters: K8S_VERSION K8S_MINOR K8S_REPO_URL ('' = pkgs.k8s.io for K8S_MINOR) RUNTIME
# CRIO_REPO_URL ('' = CRI-O's isv repository for K8S_MINOR)
set -euo pipefail

KEYRINGS=/etc/apt/keyrings

# Every apt-get waits up to 10 minutes for the dpkg lock that cloud-init or unattended-upgrades may
# hold on a fresh machine (DPkg::Lock::Timeout, apt >= 1.9.11: apt-pkg/deb/debsystem.cc@2.6.1).
# dnf needs nothing: it waits for its lock by default (exit_on_lock defaults to False, dnf/lock.py).
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@"; }

# apt_source NAME KEY_URL LINE — the repository's signing key as a keyring and the source
# `deb [signed-by=keyring] LINE` in /etc/apt/sources.list.d/NAME.list.
apt_source() {
  local name=$1 key_url=$2 line=$3 key
  key=$(mktemp)
  curl -fsSL --retry 3 "$key_url" | gpg --dearmor >"$key"
  install -d -m 0755 "$KEYRINGS"
  cmp -s "$key" "$KEYRINGS/$name-apt-keyring.gpg" || install -m 0644 "$key" "$KEYRINGS/$name-apt-keyring.gpg"
  rm -f "$key"
  echo "deb [signed-by=$KEYRINGS/$name-apt-keyring.gpg] $line" | write_if_changed "/etc/apt/sources.list.d/$name.list" || true
}

# apt_repository NAME URL: a flat repository (`deb URL /`) signed by URL/Release.key, as pkgs.k8s.io is.
apt_repository() { apt_source "$1" "${2}Release.key" "$2 /"; }

# The Kubernetes package repository for K8S_MINOR (or the configured mirror); sets K8S_REPO.
kubernetes_repository() {
  case $(package_manager) in
    apt)
      K8S_REPO=${K8S_REPO_URL:-https://pkgs.k8s.io/core:/stable:/v${K8S_MINOR}/deb/}
      apt_repository kubernetes "$K8S_REPO"
      ;;
    dnf)
      K8S_REPO=${K8S_REPO_URL:-https://pkgs.k8s.io/core:/stable:/v${K8S_MINOR}/rpm/}
      printf '[kubernetes]\nname=Kubernetes\nbaseurl=%s\nenabled=1\ngpgcheck=1\ngpgkey=%srepodata/repomd.xml.key\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n' \
        "$K8S_REPO" "$K8S_REPO" | write_if_changed /etc/yum.repos.d/kubernetes.repo || true
      ;;
  esac
}

refresh_package_index() {
  case $(package_manager) in
    # apt-get update takes the lists lock without waiting (pkgAcquire::GetLock, apt-pkg/acquire.cc@2.6.1):
    # a concurrent update by apt-daily is waited out by retrying.
    apt) retry 30 10 apt_get update >&2 || die "apt-get update failed for 5 minutes" ;;
    dnf) dnf makecache -q >&2 ;;
  esac
}

# The version prefix PKG is pinned to: kubelet, kubeadm and kubectl exactly K8S_VERSION; cri-tools
# (crictl, configured by /etc/crictl.yaml) the K8S_MINOR release pkgs.k8s.io carries beside them.
# kubeadm's packages require nothing since 1.32 (kubernetes/release cmd/krel/templates/latest/metadata.yaml),
# so cri-tools is installed explicitly.
pinned_prefix() { if [[ $1 == cri-tools ]]; then echo "$K8S_MINOR."; else echo "$K8S_VERSION-"; fi; }

# pkgs.k8s.io versions look like 1.36.4-1.1 (cri-tools 1.36.0-1.1): the newest with PKG's prefix.
apt_k8s_version() {
  local pkg=$1 prefix version
  prefix=$(pinned_prefix "$pkg")
  version=$(apt-cache madison "$pkg" 2>/dev/null | awk -v p="$prefix" 'index($3, p) == 1 {print $3}' | sort -V | tail -n1)
  [[ -n $version ]] || die "$pkg ${prefix%[-.]} is not in $K8S_REPO (it has: $(apt-cache madison "$pkg" 2>/dev/null | awk '{print $3}' | head -n5 | xargs))"
  echo "$version"
}

# install_kubernetes_packages PKG... — at their pinned versions, held against unattended upgrades.
install_kubernetes_packages() {
  local pkg version want=()
  case $(package_manager) in
    apt)
      for pkg in "$@"; do
        version=$(apt_k8s_version "$pkg")
        [[ $(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true) == "$version" ]] || want+=("$pkg=$version")
      done
      if ((${#want[@]})); then
        log "installing ${want[*]}"
        apt-mark unhold "$@" >/dev/null 2>&1 || true
        apt_get install -y --allow-change-held-packages --allow-downgrades "${want[@]}" >&2
      fi
      # apt-mark runs dpkg --set-selections (apt-pkg/statechanges.cc@2.6.1), which does not wait for the lock.
      retry 60 10 apt-mark hold "$@" >/dev/null || die "could not hold $* for 10 minutes: the dpkg lock stayed taken"
      ;;
    dnf)
      # The kubernetes repository excludes these packages, which holds them; rpm's VERSION has no release.
      for pkg in "$@"; do
        [[ $(rpm -q --qf '%{VERSION}-' "$pkg" 2>/dev/null || true) == "$(pinned_prefix "$pkg")"* ]] \
          || want+=("$pkg-$(pinned_prefix "$pkg")*")
      done
      if ((${#want[@]})); then
        log "installing ${want[*]}"
        dnf install -y -q --disableexcludes=kubernetes "${want[@]}" >&2
      fi
      ;;
  esac
}

# CRI-O's repository for K8S_MINOR (or the configured mirror): CRI-O's minor follows Kubernetes'.
crio_repository() {
  case $(package_manager) in
    apt)
      apt_repository cri-o "${CRIO_REPO_URL:-https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v${K8S_MINOR}/deb/}"
      ;;
    dnf)
      local url=${CRIO_REPO_URL:-https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v${K8S_MINOR}/rpm/}
      printf '[cri-o]\nname=CRI-O\nbaseurl=%s\nenabled=1\ngpgcheck=1\ngpgkey=%srepodata/repomd.xml.key\n' "$url" "$url" \
        | write_if_changed /etc/yum.repos.d/cri-o.repo || true
      ;;
  esac
}

# On a drained node being upgraded: CRI-O moves to K8S_MINOR's stream with the kubelet.
upgrade_crio() {
  local before after
  crio_repository
  refresh_package_index
  case $(package_manager) in
    apt)
      before=$(dpkg-query -W -f='${Version}' cri-o)
      apt_get install -y --only-upgrade cri-o >&2
      after=$(dpkg-query -W -f='${Version}' cri-o)
      ;;
    dnf)
      before=$(rpm -q --qf '%{VERSION}' cri-o)
      dnf upgrade -y -q cri-o >&2
      after=$(rpm -q --qf '%{VERSION}' cri-o)
      ;;
  esac
  if [[ $before != "$after" ]]; then
    log "CRI-O $before -> $after"
    systemctl restart crio
  fi
}
