#!/usr/bin/env bash
# Prepare a node for kubeadm: kernel settings, container runtime, pinned kubeadm/kubelet/kubectl.
# Parameters: K8S_VERSION K8S_MINOR RUNTIME IMAGE_REPOSITORY K8S_REPO_URL CONTAINERD_REPO_URL CRIO_REPO_URL
#   CONTAINERD_KEY_FINGERPRINT ('' = Docker's for Docker's repository, none for a mirror) and packages.sh's
# Uses packages.sh.
# Idempotent: every step checks before it changes anything.
set -euo pipefail

check_cgroup_v2() {
  local fs
  fs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null || true)
  [[ $fs == cgroup2fs ]] || die "cgroup v2 is required (kubelet >= 1.35 refuses cgroup v1); /sys/fs/cgroup is '$fs'. Boot with systemd.unified_cgroup_hierarchy=1"
}

disable_swap() {
  swapoff -a
  # Comment out swap entries so the change survives a reboot.
  if grep -Eq '^[^#]\S*\s+\S+\s+swap\s' /etc/fstab 2>/dev/null; then
    sed -ri 's/^([^#]\S*\s+\S+\s+swap\s.*)$/# disabled by kubeadm-cluster: \1/' /etc/fstab
    log "swap entries commented out in /etc/fstab"
  fi
  local unit
  for unit in $(systemctl list-units --type=swap --all --plain --no-legend 2>/dev/null | awk '{print $1}'); do
    systemctl mask "$unit" >/dev/null
  done
}

load_kernel_modules() {
  printf 'overlay\nbr_netfilter\n' | write_if_changed /etc/modules-load.d/kubernetes.conf || true
  # A module may be built into the kernel: then modprobe has nothing to load but the feature is there.
  modprobe overlay 2>/dev/null || [[ -d /sys/module/overlay ]] || grep -qw overlay /proc/filesystems \
    || die "kernel module overlay is not available"
  modprobe br_netfilter 2>/dev/null || [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] \
    || die "kernel module br_netfilter is not available (needed for Service traffic on the pod bridge)"
}

apply_sysctls() {
  # vm.* and kernel.*: what the kubelet sets itself unless protectKernelDefaults, which makes it refuse
  # to start without them (kubelet pkg/kubelet/cm/container_manager_linux.go setupKernelTunables).
  printf '%s\n' 'net.bridge.bridge-nf-call-iptables = 1' 'net.bridge.bridge-nf-call-ip6tables = 1' \
    'net.ipv4.ip_forward = 1' \
    'vm.overcommit_memory = 1' 'vm.panic_on_oom = 0' 'kernel.panic = 10' 'kernel.panic_on_oops = 1' \
    'kernel.keys.root_maxkeys = 1000000' 'kernel.keys.root_maxbytes = 25000000' \
    | write_if_changed /etc/sysctl.d/99-kubernetes.conf || true
  # Only our file: `sysctl --system` would also re-apply unrelated distribution defaults.
  sysctl -q -p /etc/sysctl.d/99-kubernetes.conf
}

apt_install_prerequisites() {
  local missing=()
  local pkg
  for pkg in apt-transport-https ca-certificates curl gpg openssl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    refresh_package_index
    apt_get install -y "${missing[@]}"
  fi
}

# Docker's repository signing keys, as Docker's install guides give them (docs.docker.com/engine/install/
# debian: "Docker Release (CE deb)"; /rhel: "Docker Release (CE rpm)").
DOCKER_DEB_KEY_FINGERPRINT=9DC858229FC7DD38854AE2D88D81803C0EBFCD88
DOCKER_RPM_KEY_FINGERPRINT=060A61C51B558A7F742B77AAC52FEB6B621E9F35

# Docker's repository carries containerd 2.x as containerd.io for Debian and Ubuntu.
apt_docker_repository() {
  # shellcheck source=/dev/null
  . /etc/os-release
  apt_source docker "https://download.docker.com/linux/${ID}/gpg" "https://download.docker.com/linux/${ID} ${VERSION_CODENAME} stable" \
    "${CONTAINERD_KEY_FINGERPRINT:-$DOCKER_DEB_KEY_FINGERPRINT}"
}

# The newest candidate version of an apt package, or empty when no configured repository has it.
apt_candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)' || true; }

# The package repository for the configured runtime.
runtime_repository() {
  case $(package_manager)/$RUNTIME in
    apt/containerd)
      if [[ -n $CONTAINERD_REPO_URL ]]; then
        apt_repository containerd "$CONTAINERD_REPO_URL" "$CONTAINERD_KEY_FINGERPRINT"
      else
        apt_docker_repository
      fi
      ;;
    */cri-o) crio_repository ;;
    dnf/containerd)
      if [[ -n $CONTAINERD_REPO_URL ]]; then
        dnf_repository containerd containerd "$CONTAINERD_REPO_URL" "${CONTAINERD_REPO_URL}repodata/repomd.xml.key" \
          "$CONTAINERD_KEY_FINGERPRINT"
      else
        # The stable section of Docker's docker-ce.repo, with the verified key instead of its URL.
        # shellcheck disable=SC2016  # dnf's own variables
        dnf_repository docker-ce 'Docker CE Stable - $basearch' 'https://download.docker.com/linux/rhel/$releasever/$basearch/stable' \
          https://download.docker.com/linux/rhel/gpg "${CONTAINERD_KEY_FINGERPRINT:-$DOCKER_RPM_KEY_FINGERPRINT}"
      fi
      ;;
  esac
}

# kubeadm's install guide for RHEL-family hosts: SELinux permissive, so containers can read host paths.
selinux_permissive() {
  if command -v getenforce >/dev/null 2>&1 && [[ $(getenforce) == Enforcing ]]; then
    setenforce 0
    log "SELinux set to permissive"
  fi
  if [[ -f /etc/selinux/config ]]; then
    sed -i 's/^SELINUX=enforcing$/SELINUX=permissive/' /etc/selinux/config
  fi
}

install_runtime() {
  case $(package_manager) in
    apt)
      if [[ $RUNTIME == cri-o ]]; then
        RUNTIME_PACKAGE=cri-o
      elif [[ -n $(apt_candidate containerd.io) ]]; then
        RUNTIME_PACKAGE=containerd.io
      else
        RUNTIME_PACKAGE=containerd
      fi
      dpkg -s "$RUNTIME_PACKAGE" >/dev/null 2>&1 \
        || apt_get install -y "$RUNTIME_PACKAGE"
      ;;
    dnf)
      if [[ $RUNTIME == cri-o ]]; then RUNTIME_PACKAGE=cri-o; else RUNTIME_PACKAGE=containerd.io; fi
      rpm -q "$RUNTIME_PACKAGE" >/dev/null 2>&1 || dnf install -y -q "$RUNTIME_PACKAGE"
      ;;
  esac
}

pause_image() {
  kubeadm config images list --kubernetes-version "v$K8S_VERSION" --image-repository "$IMAGE_REPOSITORY" 2>/dev/null \
    | grep '/pause:' | head -n1
}

# containerd_config SANDBOX — containerd's own default config with systemd cgroups for runc and SANDBOX
# as the pause image. Every 2.x default prints both keys (`SystemdCgroup = false` under runc's options,
# `sandbox` under the images plugin's pinned_images: internal/cri/config/config_unix.go@v2.1.5).
containerd_config() {
  containerd config default \
    | sed -E "s/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*).*/\1true/" \
    | sed -E "s|^([[:space:]]*sandbox[[:space:]]*=[[:space:]]*).*|\1'$1'|"
}

configure_containerd() {
  local version sandbox config
  version=$(containerd --version | grep -oE ' v?[0-9]+\.[0-9]+' | head -n1 | tr -d ' v')
  [[ ${version%%.*} -ge 2 ]] || die "containerd $version is installed; 2.x is required (RuntimeConfig CRI call). Remove it or provide a repository with containerd 2.x (packageRepositories.containerd)"
  sandbox=$(pause_image)
  [[ -n $sandbox ]] || die "could not determine the pause image from kubeadm config images list"
  config=$(containerd_config "$sandbox")
  grep -q 'SystemdCgroup = true' <<<"$config" || die "containerd config default has no SystemdCgroup option to set"
  if printf '%s\n' "$config" | write_if_changed /etc/containerd/config.toml; then
    log "containerd configured (systemd cgroups, sandbox $sandbox)"
    systemctl restart containerd
  fi
  systemctl enable --now containerd >/dev/null 2>&1
  printf 'runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\n' \
    | write_if_changed /etc/crictl.yaml || true
}

configure_crio() {
  local sandbox
  sandbox=$(pause_image)
  [[ -n $sandbox ]] || die "could not determine the pause image from kubeadm config images list"
  if printf '[crio.image]\npause_image = "%s"\n' "$sandbox" | write_if_changed /etc/crio/crio.conf.d/10-kubeadm-cluster.conf; then
    systemctl restart crio
  fi
  systemctl enable --now crio >/dev/null 2>&1
}

log "preparing for Kubernetes $K8S_VERSION with $RUNTIME"
check_cgroup_v2
disable_swap
load_kernel_modules
apply_sysctls
case $(package_manager) in
  apt) apt_install_prerequisites ;;
  dnf) selinux_permissive ;;
esac
kubernetes_repository
runtime_repository
refresh_package_index
RUNTIME_PACKAGE=""
install_runtime
install_kubernetes_packages kubelet kubeadm kubectl cri-tools
case $RUNTIME in
  containerd) configure_containerd ;;
  cri-o) configure_crio ;;
esac
systemctl enable kubelet >/dev/null 2>&1
log "node prepared: $(installed_kubeadm_version) with $RUNTIME_PACKAGE"
