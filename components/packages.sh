#!/usr/bin/env bash
# Package helpers shared by node preparation and upgrades.
# Parameters: K8S_VERSION K8S_MINOR K8S_REPO_URL ('' = pkgs.k8s.io for K8S_MINOR) RUNTIME
# CRIO_REPO_URL ('' = CRI-O's isv repository for K8S_MINOR)
set -euo pipefail

KEYRINGS=/etc/apt/keyrings

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
    apt) apt-get update -q >&2 ;;
    dnf) dnf makecache -q >&2 ;;
  esac
}

# pkgs.k8s.io versions look like 1.36.4-1.1: the one for K8S_VERSION.
apt_k8s_version() {
  local pkg=$1 version
  version=$(apt-cache madison "$pkg" 2>/dev/null | awk '{print $3}' | grep -E "^${K8S_VERSION//./\\.}-" | head -n1 || true)
  [[ -n $version ]] || die "$pkg $K8S_VERSION is not in $K8S_REPO (it has: $(apt-cache madison "$pkg" 2>/dev/null | awk '{print $3}' | head -n5 | xargs))"
  echo "$version"
}

# install_kubernetes_packages PKG... — exactly K8S_VERSION, held against unattended upgrades.
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
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-change-held-packages --allow-downgrades "${want[@]}"
      fi
      apt-mark hold "$@" >/dev/null
      ;;
    dnf)
      for pkg in "$@"; do
        [[ $(rpm -q --qf '%{VERSION}' "$pkg" 2>/dev/null || true) == "$K8S_VERSION" ]] || want+=("$pkg-$K8S_VERSION")
      done
      if ((${#want[@]})); then
        log "installing ${want[*]}"
        dnf install -y -q --disableexcludes=kubernetes "${want[@]}"
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
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade cri-o >&2
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
