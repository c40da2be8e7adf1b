#!/usr/bin/env bash
# Package helpers shared by node preparation and upgrades.
# Parameters: K8S_VERSION K8S_MINOR K8S_REPO_URL ('' = pkgs.k8s.io for K8S_MINOR) RUNTIME
# CRIO_REPO_URL ('' = CRI-O's isv repository for K8S_MINOR) K8S_KEY_FINGERPRINT CRIO_KEY_FINGERPRINT
# (a repository's signing key; '' = the pinned default below, none for a mirror or CRI-O's)
set -euo pipefail

KEYRINGS=/etc/apt/keyrings
RPM_KEYS=/etc/pki/rpm-gpg
# pkgs.k8s.io signs every core:/stable:/vX.Y repository, deb and rpm, with the key of its OBS project,
# "isv:kubernetes OBS Project <isv:kubernetes@build.opensuse.org>" (kubernetes/kubernetes#128609 and
# kubernetes/release#3818 show this fingerprint for the v1.24-v1.31 keys; its expiry is extended in place).
PKGS_K8S_IO_KEY_FINGERPRINT=DE15B14486CD377B9E876E1A234654DA9A296436

# key_fingerprints FILE — the primary-key fingerprints of an OpenPGP key file (armored or not), comma-separated.
key_fingerprints() {
  local home
  home=$(mktemp -d)
  # shellcheck disable=SC2016  # awk's $ fields
  GNUPGHOME=$home gpg --batch --with-colons --show-keys "$1" 2>/dev/null \
    | awk -F: '$1 == "pub" {primary = 1; next} primary && $1 == "fpr" {print $10; primary = 0}' | paste -sd, -
  rm -rf "$home"
}

# fetch_verified_key NAME URL PINNED INSTALLED OUT — repository NAME's signing key from URL into OUT,
# only when its fingerprint is PINNED (when set) or, without a pin, that of the key already INSTALLED
# (a key is never replaced by another silently); with neither, trusted on first use.
fetch_verified_key() {
  local name=$1 url=$2 pinned=$3 installed=$4 out=$5 fetched current setting
  setting=packageRepositories.${name/#docker*/containerd}.keyFingerprint  # Docker's repository serves containerd
  curl -fsSL --retry 3 "$url" >"$out" || die "repository $name: could not fetch its signing key from $url"
  fetched=$(key_fingerprints "$out")
  [[ -n $fetched ]] || die "repository $name: $url holds no OpenPGP key"
  if [[ -n $pinned ]]; then
    [[ $fetched == "$pinned" ]] \
      || die "repository $name: the key at $url has fingerprint $fetched, expected $pinned ($setting, else the pinned default)"
  elif [[ -s $installed ]]; then
    current=$(key_fingerprints "$installed")
    [[ $fetched == "$current" ]] \
      || die "repository $name: the key at $url has fingerprint $fetched, the installed $installed has $current; not replaced: if the repository changed its key, set $setting to the new one"
  else
    log "repository $name: trusting the key at $url on first use (fingerprint $fetched); pin it with $setting"
  fi
}

# Every apt-get waits up to 10 minutes for the dpkg lock that cloud-init or unattended-upgrades may
# hold on a fresh machine (DPkg::Lock::Timeout, apt >= 1.9.11: apt-pkg/deb/debsystem.cc@2.6.1).
# dnf needs nothing: it waits for its lock by default (exit_on_lock defaults to False, dnf/lock.py).
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@"; }

# apt_source NAME KEY_URL LINE PINNED — the repository's verified signing key as a keyring and the
# source `deb [signed-by=keyring] LINE` in /etc/apt/sources.list.d/NAME.list.
apt_source() {
  local name=$1 key_url=$2 line=$3 pinned=$4 keyring=$KEYRINGS/$1-apt-keyring.gpg fetched key
  fetched=$(mktemp) key=$(mktemp)
  fetch_verified_key "$name" "$key_url" "$pinned" "$keyring" "$fetched"
  gpg --dearmor <"$fetched" >"$key"
  install -d -m 0755 "$KEYRINGS"
  cmp -s "$key" "$keyring" || install -m 0644 "$key" "$keyring"
  rm -f "$fetched" "$key"
  echo "deb [signed-by=$keyring] $line" | write_if_changed "/etc/apt/sources.list.d/$name.list" || true
}

# apt_repository NAME URL PINNED: a flat repository (`deb URL /`) signed by URL/Release.key, as pkgs.k8s.io is.
apt_repository() { apt_source "$1" "${2}Release.key" "$2 /" "$3"; }

# rpm_key NAME KEY_URL PINNED — the repository's verified signing key, imported into rpm's database, so
# dnf never imports a key itself (it would, unchecked, under -y); prints the key file for gpgkey=.
rpm_key() {
  local name=$1 key_url=$2 pinned=$3 file=$RPM_KEYS/RPM-GPG-KEY-kubeadm-cluster-$1 fetched
  fetched=$(mktemp)
  fetch_verified_key "$name" "$key_url" "$pinned" "$file" "$fetched"
  install -d -m 0755 "$RPM_KEYS"
  cmp -s "$fetched" "$file" || install -m 0644 "$fetched" "$file"
  rm -f "$fetched"
  rpm --import "$file" >&2
  echo "$file"
}

# dnf_repository NAME TITLE BASEURL KEY_URL PINNED [LINE] — /etc/yum.repos.d/NAME.repo checked against
# the verified key, with one more LINE.
dnf_repository() {
  local key
  key=$(rpm_key "$1" "$4" "$5") || return 1  # also where a caller's || turns errexit off
  {
    printf '[%s]\nname=%s\nbaseurl=%s\nenabled=1\ngpgcheck=1\ngpgkey=file://%s\n' "$1" "$2" "$3" "$key"
    if [[ -n ${6:-} ]]; then printf '%s\n' "$6"; fi
  } | write_if_changed "/etc/yum.repos.d/$1.repo" || true
}

# The Kubernetes package repository for K8S_MINOR (or the configured mirror); sets K8S_REPO.
kubernetes_repository() {
  case $(package_manager) in
    apt)
      K8S_REPO=${K8S_REPO_URL:-https://pkgs.k8s.io/core:/stable:/v${K8S_MINOR}/deb/}
      apt_repository kubernetes "$K8S_REPO" "$(kubernetes_key_fingerprint)"
      ;;
    dnf)
      K8S_REPO=${K8S_REPO_URL:-https://pkgs.k8s.io/core:/stable:/v${K8S_MINOR}/rpm/}
      dnf_repository kubernetes Kubernetes "$K8S_REPO" "${K8S_REPO}repodata/repomd.xml.key" "$(kubernetes_key_fingerprint)" \
        'exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni'
      ;;
  esac
}

# The configured fingerprint, else pkgs.k8s.io's for pkgs.k8s.io itself; a mirror is pinned only when configured.
kubernetes_key_fingerprint() {
  if [[ -n $K8S_KEY_FINGERPRINT ]]; then echo "$K8S_KEY_FINGERPRINT"
  elif [[ -z $K8S_REPO_URL ]]; then echo "$PKGS_K8S_IO_KEY_FINGERPRINT"
  fi
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
      apt_repository cri-o "${CRIO_REPO_URL:-https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v${K8S_MINOR}/deb/}" \
        "$CRIO_KEY_FINGERPRINT"
      ;;
    dnf)
      local url=${CRIO_REPO_URL:-https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v${K8S_MINOR}/rpm/}
      dnf_repository cri-o CRI-O "$url" "${url}repodata/repomd.xml.key" "$CRIO_KEY_FINGERPRINT"
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
