"""Stack configuration → a validated, typed ClusterSpec.

This module is the start of the data flow: nothing else reads Pulumi config. Every rule of
SPEC §2 is checked here, before any resource is registered; all problems are collected and
reported together as one ConfigError whose lines name the key path, the bad value and what
is allowed.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping

import pulumi

PROJECT = "kubeadm-cluster"

SUPPORTED_MINORS = (35, 36, 37)
DEFAULT_KUBERNETES_VERSION = "1.36.4"
ROLES = ("control-plane", "worker", "etcd")
LOAD_BALANCER_TYPES = ("external", "kube-vip", "haproxy-keepalived", "none")
ETCD_TOPOLOGIES = ("stacked", "external")
KUBE_PROXY_MODES = ("iptables", "nftables", "ipvs")
RUNTIMES = ("containerd", "cri-o")
CNI_TYPES = ("flannel", "none")  # none: the user brings their own CNI (Cilium, Calico through GitOps)
FLANNEL_VERSION = "v0.28.9"
CNI_BACKENDS = ("vxlan", "host-gw")
INGRESS_CONTROLLERS = ("ingress-nginx", "traefik", "none")
INGRESS_NGINX_CHART_VERSION = "4.15.1"  # controller v1.15.1, the final release
TRAEFIK_CHART_VERSION = "37.3.0"  # Traefik Proxy v3.6.0
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
CONTROL_PLANE_TAINT_KEY = "node-role.kubernetes.io/control-plane"
API_SERVER_PORT = 6443
HAPROXY_DEFAULT_PORT = 8443
# The chart's default webhook port is 8443 (ingress-nginx values.yaml@helm-chart-4.15.1), which in the host
# network collides with haproxy's default endpoint port on schedulable control planes.
INGRESS_NGINX_WEBHOOK_PORT = 8444

VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A Linux interface name: up to 15 characters, no '/', ':' or whitespace, not '.' or '..'.
INTERFACE_RE = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9_.@-]{1,15}$")
HOST_KEY_RE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( .*)?$")
HOST_KEY_REVISION_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
FINGERPRINT_RE = re.compile(r"^[0-9A-Fa-f]{40}$")
URL_RE = re.compile(r"^https?://[^\s'\"\\]+$")
POD_SECURITY_LEVELS = ("baseline", "restricted", "privileged")
# keepalived copies at most 8 bytes of auth_pass (VRRP_AUTH_LEN; longer is truncated with a config error,
# keepalived/vrrp/vrrp_parser.c vrrp_auth_pass_handler @v2.0.20 and @v2.2.7). Its parser (lib/parser.c,
# same tags) splits words at whitespace and '"', cuts comments at '!' and '#', treats '\\' as an
# escape, '$' as a definition and '{' '}' as blocks; '&' and "'" are refused too, so the password is
# one literal word in keepalived.conf and in haproxy-keepalived.sh's substitution.
KEEPALIVED_AUTH_PASS_RE = re.compile(r"^[!-~]{1,8}$")
KEEPALIVED_AUTH_PASS_REFUSED = frozenset("!\"#$&'\\{}")
IMAGE_REPO_RE = re.compile(r"^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?(/[a-z0-9]([-a-z0-9._/]*[a-z0-9])?)*$")


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. A RunError so Pulumi prints the message without a traceback."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}")


# Every key the config accepts, by the path of the mapping that holds it (the README's reference is
# checked against this).
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "": ("kubernetesVersion", "clusterName", "sshPrivateKey", "ssh", "nodes", "controlPlane", "etcd", "networking",
         "containerRuntime", "imageRepository", "packageRepositories", "cni", "ingress", "upgrade",
         "joinMaterialEpoch", "certificates", "helmReleases", "keepalivedAuthPass", "security", "kubeconfig"),
    "ssh": ("user", "port", "bastion", "agent", "insecureIgnoreHostKeys"),
    "ssh.bastion": ("host", "user", "port", "hostKey", "hostKeyRevision"),
    "nodes[]": ("name", "address", "internalAddress", "roles", "hostKey", "hostKeyRevision", "labels", "taints", "user",
                "port"),
    "nodes[].taints[]": ("key", "value", "effect"),
    "controlPlane": ("endpoint", "loadBalancer", "certSANs", "schedulable"),
    "controlPlane.loadBalancer": ("type", "vip", "interface", "images"),
    "controlPlane.loadBalancer.images": ("kubeVip", "haproxy", "keepalived"),
    "etcd": ("topology", "backup", "restore"),
    "etcd.restore": ("id", "snapshot", "fetchCommand"),
    "etcd.backup": ("enabled", "schedule", "retention", "directory", "copyCommand", "etcdutlUrl", "etcdutlSha256"),
    "networking": ("podSubnet", "serviceSubnet", "dnsDomain", "kubeProxyMode"),
    "containerRuntime": ("type",),
    "packageRepositories": ("kubernetes", "containerd", "cri-o", "allowInsecureHttp"),
    # Each repository is a URL, or these (a url left out keeps the default repository).
    **{f"packageRepositories.{name}": ("url", "keyFingerprint") for name in ("kubernetes", "containerd", "cri-o")},
    "cni": ("type", "version", "backend", "iface"),
    "ingress": ("controller", "chartVersion", "repo", "hostNetwork", "values"),
    "upgrade": ("maxUnavailableWorkers", "drain"),
    "upgrade.drain": ("timeout", "gracePeriod", "skipWaitForDeleteTimeout"),
    "certificates": ("renew",),
    "security": ("profiling", "podSecurity", "auditLog", "encryptionAtRest", "protectKernelDefaults",
                 "kubeletServingCertificates"),
    "kubeconfig": ("revision", "scoped"),
    "kubeconfig.scoped[]": ("name", "namespaces", "role", "revision"),
    "helmReleases[]": ("name", "chart", "repo", "version", "namespace", "values", "timeout", "skipAwait"),
}
SECRET_KEYS = ("sshPrivateKey", "keepalivedAuthPass")

# ---------------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bastion:
    host: str
    user: str
    port: int
    host_key: str | None = None
    host_key_revision: str = ""  # changing it records the host key anew (components/host_keys.py)


@dataclass(frozen=True)
class SshSettings:
    user: str = "root"
    port: int = 22
    bastion: Bastion | None = None
    agent: bool = False
    insecure_ignore_host_keys: bool = False  # no trust on first use: unpinned host keys are not checked


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def kubeadm(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out

    def kubectl(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    internal_address: str
    roles: tuple[str, ...]
    user: str
    port: int
    host_key: str | None = None
    host_key_revision: str = ""  # changing it records the host key anew (components/host_keys.py)
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    @property
    def is_control_plane(self) -> bool:
        return "control-plane" in self.roles

    @property
    def is_worker(self) -> bool:
        return "worker" in self.roles and not self.is_control_plane

    @property
    def is_etcd(self) -> bool:
        return "etcd" in self.roles


# The load balancers' static pod images (components/loadbalancer.py). imageRepository moves only kubeadm's own
# images, so an air-gapped site points these at its mirror (controlPlane.loadBalancer.images).
KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v1.2.3"
# The versions kubeadm's ha-considerations guide was tested with.
HAPROXY_IMAGE = "haproxy:2.8"
KEEPALIVED_IMAGE = "osixia/keepalived:2.0.20"
# An image reference as containerd parses it: [registry[:port]/]path[:tag][@digest], no spaces.
IMAGE_RE = re.compile(r"^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")


@dataclass(frozen=True)
class LoadBalancer:
    type: str
    vip: str | None = None
    interface: str | None = None
    kube_vip_image: str = KUBE_VIP_IMAGE
    haproxy_image: str = HAPROXY_IMAGE
    keepalived_image: str = KEEPALIVED_IMAGE


@dataclass(frozen=True)
class ControlPlane:
    endpoint_host: str
    endpoint_port: int
    load_balancer: LoadBalancer
    cert_sans: tuple[str, ...]
    schedulable: bool

    @property
    def endpoint(self) -> str:
        host = f"[{self.endpoint_host}]" if ":" in self.endpoint_host else self.endpoint_host
        return f"{host}:{self.endpoint_port}"


@dataclass(frozen=True)
class Networking:
    pod_subnet: str = "10.244.0.0/16"
    service_subnet: str = "10.96.0.0/12"
    dns_domain: str = "cluster.local"
    kube_proxy_mode: str = "iptables"


@dataclass(frozen=True)
class Cni:
    type: str = "flannel"
    version: str = FLANNEL_VERSION
    backend: str = "vxlan"
    iface: str | None = None


@dataclass(frozen=True)
class Ingress:
    controller: str = "ingress-nginx"
    chart_version: str = INGRESS_NGINX_CHART_VERSION
    repo: str | None = None  # the chart's repository; None: the controller's upstream one
    host_network: bool = True
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HelmRelease:
    name: str
    chart: str
    version: str
    repo: str | None = None
    namespace: str = "default"
    values: Mapping[str, Any] = field(default_factory=dict)
    timeout: int | None = None
    skip_await: bool = False


@dataclass(frozen=True)
class Security:
    """Control-plane hardening, all on by default; each key opts out of one measure."""

    profiling: bool = False  # --profiling of kube-apiserver, kube-controller-manager, kube-scheduler
    pod_security: str = "baseline"  # the Pod Security level enforced cluster-wide (restricted warns and audits)
    audit_log: bool = True
    encryption_at_rest: bool = True  # Secrets encrypted in etcd (secretbox)
    protect_kernel_defaults: bool = True  # kubelet refuses to start on kernel settings it would change
    # kubelet serving certificates from approved CSRs, verified by the API server (else self-signed, unverified)
    kubelet_serving_certificates: bool = True


@dataclass(frozen=True)
class ScopedCredential:
    """A kubeconfig limited to some namespaces (kubeconfig.scoped[]): one built-in ClusterRole bound in each."""

    name: str
    namespaces: tuple[str, ...]
    role: str = "edit"
    revision: str = "1"


@dataclass(frozen=True)
class KubeconfigSettings:
    """The exported credentials (kubeconfig): changing `revision` replaces every one and revokes the old."""

    revision: str = "1"
    scoped: tuple[ScopedCredential, ...] = ()


@dataclass(frozen=True)
class Drain:
    """`kubectl drain` settings (flags of kubectl pkg/cmd/drain/drain.go@kubernetes-1.36.3)."""

    timeout: str = "5m"  # --timeout; kubectl's own default 0 waits forever on a PodDisruptionBudget
    grace_period: int = -1  # --grace-period; negative: each pod's terminationGracePeriodSeconds
    skip_wait_for_delete_timeout: int = 0  # --skip-wait-for-delete-timeout; 0: always wait


@dataclass(frozen=True)
class EtcdBackup:
    """Scheduled etcd snapshots on every etcd member (etcd.backup)."""

    enabled: bool = True
    schedule: str = "*-*-* 00/6:00:00"  # systemd OnCalendar: every 6 hours
    retention: int = 5
    directory: str = "/var/lib/etcd-backups"  # outside etcd's data directory /var/lib/etcd
    copy_command: str = ""
    etcdutl_url: str = "https://github.com/etcd-io/etcd/releases/download/v{version}/etcd-v{version}-linux-{arch}.tar.gz"
    etcdutl_sha256: Mapping[str, str] = field(default_factory=dict)  # release tarball file name → sha256


@dataclass(frozen=True)
class EtcdRestore:
    """Disaster recovery from a snapshot (etcd.restore): a new `id` runs the restore chain once."""

    id: str = ""  # empty: no restore
    snapshot: str = ""  # a path on the first control plane (or first external etcd member)
    fetch_command: str = ""  # one line of shell that writes the snapshot to $1 there first


@dataclass(frozen=True)
class ClusterSpec:
    kubernetes_version: str
    cluster_name: str
    ssh: SshSettings
    nodes: tuple[Node, ...]
    control_plane: ControlPlane
    etcd_topology: str
    etcd_backup: EtcdBackup
    networking: Networking
    container_runtime: str
    image_repository: str
    package_repositories: Mapping[str, str]
    cni: Cni
    ingress: Ingress
    max_unavailable_workers: int  # upgrade.maxUnavailableWorkers resolved to a count of workers
    join_material_epoch: str
    certificates_renew: str
    helm_releases: tuple[HelmRelease, ...]
    security: Security = Security()
    drain: Drain = Drain()
    kubeconfig: KubeconfigSettings = KubeconfigSettings()
    etcd_restore: EtcdRestore = EtcdRestore()
    package_key_fingerprints: Mapping[str, str] = field(default_factory=dict)  # by repository, as configured
    warnings: tuple[str, ...] = ()
    # Keys the user set with --secret (e.g. a chart password under helmReleases): what comes from them
    # stays secret.
    secret_config_keys: frozenset[str] = frozenset()

    @property
    def minor(self) -> str:
        major, minor, _ = self.kubernetes_version.split(".")
        return f"{major}.{minor}"

    @property
    def control_planes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_control_plane)

    @property
    def first_control_plane(self) -> Node:
        return self.control_planes[0]

    @property
    def workers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_worker)

    @property
    def etcd_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_etcd)

    @property
    def cluster_nodes(self) -> tuple[Node, ...]:
        """Nodes that run a kubelet registered with the API server (not dedicated etcd hosts)."""
        return tuple(n for n in self.nodes if n.is_control_plane or n.is_worker)

    def package_key_fingerprint(self, name: str) -> str:
        """The configured signing-key fingerprint of repository `name`; '' leaves the default to packages.sh."""
        return self.package_key_fingerprints.get(name, "")

    def package_repository(self, name: str, default: str) -> str:
        """The mirror for `name` if configured (with `{minor}` substituted), else `default`."""
        return self.package_repositories.get(name, default).replace("{minor}", self.minor)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


class _Reader:
    """Collects problems while reading a raw config tree, so all of them are reported at once."""

    def __init__(self, secret_keys: Collection[str] = ()) -> None:
        self.problems: list[str] = []
        self.secret_keys = set(secret_keys)

    def fail(self, path: str, value: Any, allowed: str) -> None:
        shown = "[secret]" if re.split(r"[.\[]", path, maxsplit=1)[0] in self.secret_keys else repr(value)
        self.problems.append(f"{path}: {shown} is not valid; {allowed}")

    def mapping(self, path: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, value, "expected a mapping")
            return {}
        for key in value:
            if key not in known:
                # No value in the message: a mistyped key may hold a secret.
                guess = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {guess[0]}?)" if guess else ""
                key_path = f"{path}.{key}" if path else str(key)
                self.problems.append(f"{key_path}: unknown key{hint}; known keys: {', '.join(known)}")
        return dict(value)

    def string(self, path: str, value: Any, default: str | None = None, *, required: bool = False,
               check: Callable[[str], bool] | None = None, allowed: str = "") -> str | None:
        if value is None or value == "":
            if required:
                self.problems.append(f"{path}: is required; {allowed}" if allowed else f"{path}: is required")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, value, allowed or "expected a string")
            return default
        text = str(value)
        if check is not None and not check(text):
            self.fail(path, value, allowed)
            return default
        return text

    def choice(self, path: str, value: Any, choices: tuple[str, ...], default: str) -> str:
        return self.string(path, value, default, check=lambda v: v in choices,
                           allowed=f"allowed: {', '.join(choices)}") or default

    def boolean(self, path: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(path, value, "expected true or false")
        return default

    def integer(self, path: str, value: Any, default: int, lo: int, hi: int) -> int:
        if value is None:
            return default
        try:
            number = int(value) if not isinstance(value, bool) and str(value).strip().lstrip("-").isdigit() else None
        except (TypeError, ValueError):
            number = None
        if number is None or not lo <= number <= hi:
            self.fail(path, value, f"expected an integer from {lo} to {hi}")
            return default
        return number

    def string_list(self, path: str, value: Any, check: Callable[[str], bool], allowed: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, value, "expected a list")
            return ()
        out = []
        for i, item in enumerate(value):
            text = self.string(f"{path}[{i}]", item, check=check, allowed=allowed, required=True)
            if text is not None:
                out.append(text)
        return tuple(out)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _is_hostname(text: str) -> bool:
    labels = text.lower().split(".")
    # All-numeric dotted text is a mistyped IPv4 address, not a name.
    if all(label.isdigit() for label in labels):
        return False
    return len(text) <= 253 and all(DNS_LABEL_RE.match(label) for label in labels)


def _is_host(text: str) -> bool:
    return _is_ip(text) or _is_hostname(text)


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=True)
        return True
    except ValueError:
        return False


def _is_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(LABEL_NAME_RE.match(name)) and (not prefix or _is_hostname(prefix))


def _split_endpoint(text: str) -> tuple[str, int | None] | None:
    """`host`, `host:port`, `[v6]:port` → (host, port or None); None when malformed."""
    match = re.match(r"^\[([0-9a-fA-F:]+)\](?::(\d+))?$", text) or re.match(r"^([^:\[\]]+)(?::(\d+))?$", text)
    if not match or not _is_host(match.group(1)):
        return None
    port = int(match.group(2)) if match.group(2) else None
    if port is not None and not 1 <= port <= 65535:
        return None
    return match.group(1), port


def _read_version(r: _Reader, value: Any, warnings: list[str]) -> str:
    text = r.string("kubernetesVersion", value, DEFAULT_KUBERNETES_VERSION,
                    check=lambda v: bool(VERSION_RE.match(v)),
                    allowed="expected a full version x.y.z such as 1.36.4") or DEFAULT_KUBERNETES_VERSION
    major, minor, patch = (int(p) for p in VERSION_RE.match(text).groups())  # type: ignore[union-attr]
    if major != 1 or minor < SUPPORTED_MINORS[0]:
        r.fail("kubernetesVersion", value, "supported minors: " + ", ".join(f"1.{m}" for m in SUPPORTED_MINORS))
    elif minor > SUPPORTED_MINORS[-1]:
        warnings.append(f"kubernetesVersion {major}.{minor}.{patch} is newer than the tested minors "
                        f"(1.{SUPPORTED_MINORS[0]}-1.{SUPPORTED_MINORS[-1]}); the kubeadm config format may have changed")
    return f"{major}.{minor}.{patch}"


def _read_taints(r: _Reader, path: str, value: Any) -> tuple[Taint, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        r.fail(path, value, "expected a list of {key, value, effect}")
        return ()
    taints = []
    for i, raw in enumerate(value):
        p = f"{path}[{i}]"
        item = r.mapping(p, raw, KNOWN_KEYS["nodes[].taints[]"])
        key = r.string(f"{p}.key", item.get("key"), required=True, check=_is_label_key,
                       allowed="expected a label-style key such as dedicated or example.com/role")
        val = r.string(f"{p}.value", item.get("value"), "", check=lambda v: bool(LABEL_VALUE_RE.match(v)),
                       allowed="expected a label-style value") or ""
        effect = r.choice(f"{p}.effect", item.get("effect"), TAINT_EFFECTS, "NoSchedule")
        if item.get("effect") is None:
            r.problems.append(f"{p}.effect: is required; allowed: {', '.join(TAINT_EFFECTS)}")
        if key:
            taints.append(Taint(key, val, effect))
    return tuple(taints)


def _read_labels(r: _Reader, path: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        r.fail(path, value, "expected a mapping of label keys to values")
        return {}
    labels = {}
    for key, val in value.items():
        if not _is_label_key(str(key)):
            r.fail(f"{path}.{key}", key, "expected a label key such as disk or example.com/tier")
            continue
        text = r.string(f"{path}.{key}", "" if val is None else val, "",
                        check=lambda v: bool(LABEL_VALUE_RE.match(v)),
                        allowed="expected a label value: up to 63 of A-Z a-z 0-9 - _ .")
        labels[str(key)] = text or ""
    return labels


def _read_user(r: _Reader, path: str, value: Any, default: str) -> str:
    return r.string(path, value, default, check=lambda v: bool(re.match(r"^[a-z_][a-z0-9_.-]*$", v)),
                    allowed="expected a Unix user name") or default


def _is_host_key(text: str) -> bool:
    """TYPE BASE64 whose decoded key names TYPE: pulumi-command parses a hostKey with x/crypto's
    ssh.ParseAuthorizedKey (remote/connection.go @v1.2.1), which reads the type from the decoded key."""
    if not HOST_KEY_RE.match(text.strip()):
        return False
    key_type, blob = text.split()[:2]
    try:
        key = base64.b64decode(blob, validate=True)
    except ValueError:
        return False
    length = int.from_bytes(key[:4], "big")
    return len(key) > 4 + length and key[4:4 + length] == key_type.encode()


def _read_host_key(r: _Reader, path: str, value: Any) -> str | None:
    host_key = r.string(path, value, check=_is_host_key,
                        allowed="expected an authorized_keys-style line such as 'ssh-ed25519 AAAA…' "
                                "(the host's /etc/ssh/ssh_host_ed25519_key.pub)")
    return host_key.strip() if host_key else None


def _warn_rsa_host_keys(nodes: tuple[Node, ...], ssh: SshSettings, warnings: list[str]) -> None:
    """pulumi-command offers a pinned key's type as the only host key algorithm (remote/connection.go @v1.2.1:
    HostKeyAlgorithms = []string{publicKey.Type()}); for RSA that is SHA-1 "ssh-rsa", off by default in OpenSSH 8.8+."""
    pinned = [(f"nodes[{i}].hostKey ({n.name})", n.host_key) for i, n in enumerate(nodes)]
    pinned.append(("ssh.bastion.hostKey", ssh.bastion.host_key if ssh.bastion else None))
    for path, key in pinned:
        if key and key.startswith("ssh-rsa "):
            warnings.append(f"{path} is an RSA key: pulumi-command then offers only the SHA-1 ssh-rsa signature, "
                            "which OpenSSH 8.8 and later refuse by default (no common algorithm for host key); "
                            "pin the host's ed25519 or ECDSA key instead")


def _read_host_key_revision(r: _Reader, path: str, value: Any) -> str:
    return r.string(path, value, "", check=lambda v: bool(HOST_KEY_REVISION_RE.match(v)),
                    allowed="expected a revision such as 2 or 2026-11-25 (up to 64 of A-Z a-z 0-9 . _ : -)") or ""


def _read_ssh(r: _Reader, value: Any, warnings: list[str]) -> SshSettings:
    raw = r.mapping("ssh", value, KNOWN_KEYS["ssh"])
    bastion = None
    if raw.get("bastion") is not None:
        b = r.mapping("ssh.bastion", raw["bastion"], KNOWN_KEYS["ssh.bastion"])
        host = r.string("ssh.bastion.host", b.get("host"), required=True, check=_is_host,
                        allowed="expected an IP address or hostname")
        bastion = Bastion(
            host=host or "",
            user=_read_user(r, "ssh.bastion.user", b.get("user"), "root"),
            port=r.integer("ssh.bastion.port", b.get("port"), 22, 1, 65535),
            host_key=_read_host_key(r, "ssh.bastion.hostKey", b.get("hostKey")),
            host_key_revision=_read_host_key_revision(r, "ssh.bastion.hostKeyRevision", b.get("hostKeyRevision")),
        )
    insecure = r.boolean("ssh.insecureIgnoreHostKeys", raw.get("insecureIgnoreHostKeys"), False)
    if insecure:
        warnings.append("ssh.insecureIgnoreHostKeys is true: SSH host keys that are not pinned (hostKey) are NOT "
                        "checked, so whoever answers at a node's address receives its scripts and join secrets")
    return SshSettings(
        user=_read_user(r, "ssh.user", raw.get("user"), "root"),
        port=r.integer("ssh.port", raw.get("port"), 22, 1, 65535),
        bastion=bastion,
        agent=r.boolean("ssh.agent", raw.get("agent"), False),
        insecure_ignore_host_keys=insecure,
    )




def _read_nodes(r: _Reader, value: Any, ssh: SshSettings) -> tuple[Node, ...]:
    if not isinstance(value, list) or not value:
        r.fail("nodes", value, "expected a non-empty list of nodes, each with name, address and roles")
        return ()
    nodes = []
    for i, raw in enumerate(value):
        p = f"nodes[{i}]"
        item = r.mapping(p, raw, KNOWN_KEYS["nodes[]"])
        name = r.string(f"{p}.name", item.get("name"), required=True,
                        check=lambda v: bool(DNS_LABEL_RE.match(v)),
                        allowed="expected a lowercase DNS label (a-z, 0-9, '-'), it becomes the node name")
        address = r.string(f"{p}.address", item.get("address"), required=True, check=_is_host,
                           allowed="expected an IP address or hostname reachable over SSH")
        internal = r.string(f"{p}.internalAddress", item.get("internalAddress"), check=_is_ip,
                            allowed="expected an IP address (it is the advertise and node IP)")
        if internal is None and address is not None and not _is_ip(address):
            r.problems.append(f"{p}.internalAddress: is required when address {address!r} is a hostname "
                              "(the advertise address must be an IP)")
        roles_raw = item.get("roles")
        if not isinstance(roles_raw, list) or not roles_raw:
            r.fail(f"{p}.roles", roles_raw, f"expected a non-empty list of: {', '.join(ROLES)}")
            roles: tuple[str, ...] = ()
        else:
            roles = tuple(r.choice(f"{p}.roles[{j}]", role, ROLES, "") for j, role in enumerate(roles_raw))
            roles = tuple(x for x in roles if x)
        host_key = _read_host_key(r, f"{p}.hostKey", item.get("hostKey"))
        if name and address:
            nodes.append(Node(
                name=name,
                address=address,
                internal_address=internal or address,
                roles=roles,
                user=_read_user(r, f"{p}.user", item.get("user"), ssh.user),
                port=r.integer(f"{p}.port", item.get("port"), ssh.port, 1, 65535),
                host_key=host_key,
                host_key_revision=_read_host_key_revision(r, f"{p}.hostKeyRevision", item.get("hostKeyRevision")),
                labels=_read_labels(r, f"{p}.labels", item.get("labels")),
                taints=_read_taints(r, f"{p}.taints", item.get("taints")),
            ))
    return tuple(nodes)


def _check_inventory(r: _Reader, nodes: tuple[Node, ...], etcd_topology: str, warnings: list[str]) -> None:
    seen_names: dict[str, int] = {}
    seen_addresses: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.name in seen_names:
            r.fail(f"nodes[{i}].name", node.name, f"node names must be unique (also nodes[{seen_names[node.name]}])")
        seen_names.setdefault(node.name, i)
        for addr in {node.address, node.internal_address}:
            if addr in seen_addresses and seen_addresses[addr] != i:
                r.fail(f"nodes[{i}].address", addr,
                       f"node addresses must be unique (also nodes[{seen_addresses[addr]}])")
            seen_addresses.setdefault(addr, i)
        if node.is_etcd and etcd_topology != "external":
            r.fail(f"nodes[{i}].roles", list(node.roles), "role etcd needs etcd.topology: external")
        elif node.is_etcd and len(node.roles) > 1:
            r.fail(f"nodes[{i}].roles", list(node.roles),
                   "external etcd members are dedicated hosts: role etcd cannot be combined with other roles")
    control_planes = [n for n in nodes if n.is_control_plane]
    if nodes and not control_planes:
        r.problems.append("nodes: no node has role control-plane; at least one is required")
    # With external etcd the quorum is the etcd nodes', whose count is enforced odd below.
    if etcd_topology != "external" and len(control_planes) > 1 and len(control_planes) % 2 == 0:
        warnings.append(f"{len(control_planes)} control planes: an even number adds no etcd fault tolerance "
                        f"over {len(control_planes) - 1} (quorum needs a majority)")
    etcd_count = sum(n.is_etcd for n in nodes)
    if etcd_topology == "external" and (etcd_count == 0 or etcd_count % 2 == 0):
        r.fail("etcd.topology", "external",
               f"external etcd needs an odd number of nodes with role etcd (found {etcd_count})")


def default_port_for(lb_type: str) -> int:
    return HAPROXY_DEFAULT_PORT if lb_type == "haproxy-keepalived" else API_SERVER_PORT


def _read_load_balancer_images(r: _Reader, value: Any) -> dict[str, str]:
    raw = r.mapping("controlPlane.loadBalancer.images", value, KNOWN_KEYS["controlPlane.loadBalancer.images"])
    allowed = "expected an image reference such as registry.example/kube-vip/kube-vip:v1.2.3"
    return {field: r.string(f"controlPlane.loadBalancer.images.{key}", raw.get(key), default,
                            check=lambda v: bool(IMAGE_RE.match(v)), allowed=allowed)
            for key, field, default in (("kubeVip", "kube_vip_image", KUBE_VIP_IMAGE),
                                        ("haproxy", "haproxy_image", HAPROXY_IMAGE),
                                        ("keepalived", "keepalived_image", KEEPALIVED_IMAGE))}


def _read_control_plane(r: _Reader, value: Any, nodes: tuple[Node, ...]) -> ControlPlane:
    raw = r.mapping("controlPlane", value, KNOWN_KEYS["controlPlane"])
    lb_raw = r.mapping("controlPlane.loadBalancer", raw.get("loadBalancer"), KNOWN_KEYS["controlPlane.loadBalancer"])
    control_planes = [n for n in nodes if n.is_control_plane]
    endpoint_text = r.string("controlPlane.endpoint", raw.get("endpoint"),
                             check=lambda v: _split_endpoint(v) is not None,
                             allowed="expected host:port, e.g. k8s-api.internal:6443")
    lb_default = "external" if endpoint_text else "none"
    lb_type = r.choice("controlPlane.loadBalancer.type", lb_raw.get("type"), LOAD_BALANCER_TYPES, lb_default)
    vip = r.string("controlPlane.loadBalancer.vip", lb_raw.get("vip"), check=_is_ip, allowed="expected an IP address")
    interface = r.string("controlPlane.loadBalancer.interface", lb_raw.get("interface"),
                         check=lambda v: bool(INTERFACE_RE.match(v)),
                         allowed="expected a network interface name such as eth0 (an alias label like eth0:1 "
                                 "is not an interface)")
    if lb_type in ("kube-vip", "haproxy-keepalived") and vip is None and lb_raw.get("vip") is None:
        r.problems.append(f"controlPlane.loadBalancer.vip: is required with type {lb_type}")
    if vip and any(vip in (n.address, n.internal_address) for n in nodes):
        r.fail("controlPlane.loadBalancer.vip", vip, "the VIP must be a free address, not a node's address")
    if len(control_planes) > 1 and not endpoint_text and raw.get("endpoint") is None:
        example = f"{vip}:{default_port_for(lb_type)} (the VIP)" if vip else "k8s-api.internal:6443"
        r.problems.append(f"controlPlane.endpoint: is required with more than one control plane "
                          f"({len(control_planes)} found); e.g. {example}")
    if lb_type == "none" and len(control_planes) > 1:
        r.fail("controlPlane.loadBalancer.type", "none",
               "type none serves a single control plane; use external, kube-vip or haproxy-keepalived")

    default_port = default_port_for(lb_type)
    if endpoint_text and _split_endpoint(endpoint_text):
        host, port = _split_endpoint(endpoint_text)  # type: ignore[misc]
        port = port or default_port
    elif vip:
        host, port = vip, default_port
    elif control_planes:
        host, port = control_planes[0].internal_address, API_SERVER_PORT
    else:
        host, port = "", API_SERVER_PORT
    if lb_type in ("kube-vip", "haproxy-keepalived") and vip and endpoint_text and host != vip:
        r.fail("controlPlane.endpoint", endpoint_text, f"with {lb_type} the endpoint host must be the VIP {vip}")
    if lb_type == "haproxy-keepalived" and port == API_SERVER_PORT:
        r.fail("controlPlane.endpoint", endpoint_text or f"{host}:{port}",
               f"haproxy runs beside the API server (port {API_SERVER_PORT}) and needs another port, e.g. {HAPROXY_DEFAULT_PORT}")
    if lb_type == "kube-vip" and port != API_SERVER_PORT:
        r.fail("controlPlane.endpoint", endpoint_text, f"kube-vip forwards the API server port: use port {API_SERVER_PORT}")

    sans = r.string_list("controlPlane.certSANs", raw.get("certSANs"), _is_host,
                         "expected IP addresses or DNS names")
    automatic = [host] + ([vip] if vip else [])
    if lb_type == "none" and control_planes:
        # The endpoint is the advertise (internal) address; the SSH address may be the one users reach.
        automatic.append(control_planes[0].address)
    cert_sans = tuple(dict.fromkeys([*sans, *(a for a in automatic if a)]))
    return ControlPlane(
        endpoint_host=host,
        endpoint_port=port,
        load_balancer=LoadBalancer(lb_type, vip, interface, **_read_load_balancer_images(r, lb_raw.get("images"))),
        cert_sans=cert_sans,
        schedulable=r.boolean("controlPlane.schedulable", raw.get("schedulable"), False),
    )


def _read_networking(r: _Reader, value: Any, nodes: tuple[Node, ...], control_plane: ControlPlane,
                     warnings: list[str]) -> Networking:
    raw = r.mapping("networking", value, KNOWN_KEYS["networking"])
    cidr_allowed = "expected a CIDR such as 10.244.0.0/16 (network address, no host bits)"
    pod = r.string("networking.podSubnet", raw.get("podSubnet"), Networking.pod_subnet, check=_is_cidr,
                   allowed=cidr_allowed) or Networking.pod_subnet
    svc = r.string("networking.serviceSubnet", raw.get("serviceSubnet"), Networking.service_subnet,
                   check=_is_cidr, allowed=cidr_allowed) or Networking.service_subnet
    pod_net, svc_net = ipaddress.ip_network(pod), ipaddress.ip_network(svc)
    for key, net in (("podSubnet", pod_net), ("serviceSubnet", svc_net)):
        if net.version != 4:
            r.fail(f"networking.{key}", str(net), "IPv4 only: IPv6 and dual-stack clusters are not supported")
    if pod_net.version == svc_net.version and pod_net.overlaps(svc_net):
        r.fail("networking.serviceSubnet", svc, f"it overlaps networking.podSubnet {pod}; choose disjoint ranges")
    # Addresses the cluster must reach outside its pod and service networks, each named once.
    addresses: dict[str | None, str] = {}
    for i, node in enumerate(nodes):
        addresses.setdefault(node.address, f"nodes[{i}].address")
        addresses.setdefault(node.internal_address, f"nodes[{i}].internalAddress")
    addresses.setdefault(control_plane.load_balancer.vip, "controlPlane.loadBalancer.vip")
    addresses.setdefault(control_plane.endpoint_host, "controlPlane.endpoint")
    for addr, key in addresses.items():
        if addr and _is_ip(addr):
            ip = ipaddress.ip_address(addr)
            for subnet_key, net in (("podSubnet", pod_net), ("serviceSubnet", svc_net)):
                if ip.version == net.version and ip in net:
                    r.fail(f"networking.{subnet_key}", str(net),
                           f"it contains {key} {addr}; node, VIP and endpoint addresses must lie outside it")
    mode = r.choice("networking.kubeProxyMode", raw.get("kubeProxyMode"), KUBE_PROXY_MODES, "iptables")
    if mode == "ipvs":
        warnings.append("networking.kubeProxyMode ipvs is deprecated upstream since Kubernetes 1.35; "
                        "prefer nftables or iptables")
    domain = r.string("networking.dnsDomain", raw.get("dnsDomain"), "cluster.local", check=_is_hostname,
                      allowed="expected a DNS domain such as cluster.local") or "cluster.local"
    return Networking(pod, svc, domain, mode)


def _read_cni(r: _Reader, value: Any) -> Cni:
    raw = r.mapping("cni", value, KNOWN_KEYS["cni"])
    return Cni(
        type=r.choice("cni.type", raw.get("type"), CNI_TYPES, "flannel"),
        version=r.string("cni.version", raw.get("version"), FLANNEL_VERSION,
                         check=lambda v: v == FLANNEL_VERSION,
                         allowed=f"the vendored flannel manifest is {FLANNEL_VERSION}") or FLANNEL_VERSION,
        backend=r.choice("cni.backend", raw.get("backend"), CNI_BACKENDS, "vxlan"),
        iface=r.string("cni.iface", raw.get("iface"), check=lambda v: bool(re.match(r"^[A-Za-z0-9_.:@-]{1,45}$", v)),
                       allowed="expected an interface name or IP address"),
    )


def _read_chart_repo(r: _Reader, path: str, value: Any) -> str | None:
    """A chart repository: an http(s) repository (index.yaml) or an oci:// registry."""
    return r.string(path, value, check=lambda v: bool(re.match(r"^(https?|oci)://\S+$", v)),
                    allowed="expected an http(s):// or oci:// chart repository URL")


def _default_ingress_chart(controller: str) -> str:
    return TRAEFIK_CHART_VERSION if controller == "traefik" else INGRESS_NGINX_CHART_VERSION


def _read_ingress(r: _Reader, value: Any, warnings: list[str]) -> Ingress:
    raw = r.mapping("ingress", value, KNOWN_KEYS["ingress"])
    controller = r.choice("ingress.controller", raw.get("controller"), INGRESS_CONTROLLERS, "ingress-nginx")
    values = raw.get("values") or {}
    if not isinstance(values, Mapping):
        r.fail("ingress.values", values, "expected a mapping of chart values")
        values = {}
    if controller == "ingress-nginx":
        warnings.append("ingress-nginx was retired upstream in March 2026 and gets no more security fixes; "
                        "consider ingress.controller: traefik")
    return Ingress(
        controller=controller,
        chart_version=r.string("ingress.chartVersion", raw.get("chartVersion"), _default_ingress_chart(controller),
                               check=lambda v: bool(re.match(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$", v)),
                               allowed="expected an exact chart version such as 4.15.1")
        or _default_ingress_chart(controller),
        repo=_read_chart_repo(r, "ingress.repo", raw.get("repo")),
        host_network=r.boolean("ingress.hostNetwork", raw.get("hostNetwork"), True),
        values=dict(values),
    )


def ingress_host_ports(ingress: Ingress) -> dict[int, str]:
    """The host ports the ingress controller binds on each node it runs on, with where each comes from.

    ingress-nginx (chart 4.15.1 templates/_params.tpl and controller-daemonset.yaml, controller v1.15.1
    pkg/flags/flags.go): in the host network nginx binds containerPort http/https, the admission webhook,
    healthz (also serving metrics) and its internal ports; otherwise only the hostPorts of http/https.
    Traefik: the hostPorts of ports.web and ports.websecure (ours unless the values change them).
    """
    def get(path: str, default: Any) -> Any:
        value: Any = ingress.values
        for key in path.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        return default if value is None else value

    values = "ingress.values."
    if ingress.controller == "traefik":
        return {get("ports.web.hostPort", 80): values + "ports.web.hostPort",
                get("ports.websecure.hostPort", 443): values + "ports.websecure.hostPort"}
    if ingress.controller != "ingress-nginx":
        return {}
    http, https = get("controller.containerPort.http", 80), get("controller.containerPort.https", 443)
    if not get("controller.hostNetwork", ingress.host_network):
        return {get("controller.hostPort.ports.http", http): values + "controller.hostPort.ports.http",
                get("controller.hostPort.ports.https", https): values + "controller.hostPort.ports.https"}
    ports = {port: f"ingress-nginx's {flag} (host network)" for port, flag in (
        (8181, "--default-server-port"), (10245, "--profiler-port"), (10246, "--status-port"),
        (10247, "--stream-port"), (10254, "--healthz-port"))}
    if get("controller.admissionWebhooks.enabled", True):
        ports[get("controller.admissionWebhooks.port", INGRESS_NGINX_WEBHOOK_PORT)] = \
            values + "controller.admissionWebhooks.port (host network)"
    ports[http] = values + "controller.containerPort.http (host network)"
    ports[https] = values + "controller.containerPort.https (host network)"
    return ports


def _check_endpoint_port(r: _Reader, control_plane: ControlPlane, ingress: Ingress) -> None:
    """haproxy binds the endpoint port on every control plane; schedulable ones also run the ingress DaemonSet."""
    if control_plane.load_balancer.type != "haproxy-keepalived" or not control_plane.schedulable:
        return
    port = control_plane.endpoint_port
    source = ingress_host_ports(ingress).get(port)
    if source:
        r.fail("controlPlane.endpoint", f"{control_plane.endpoint_host}:{port}",
               f"haproxy binds port {port} on every control plane, and with controlPlane.schedulable: true the "
               f"{ingress.controller} DaemonSet runs there too and binds the same port ({source}); "
               f"use another endpoint port or move that one")


def _read_helm_releases(r: _Reader, value: Any) -> tuple[HelmRelease, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        r.fail("helmReleases", value, "expected a list of releases")
        return ()
    releases, names = [], set()
    for i, raw in enumerate(value):
        p = f"helmReleases[{i}]"
        item = r.mapping(p, raw, KNOWN_KEYS["helmReleases[]"])
        name = r.string(f"{p}.name", item.get("name"), required=True, check=lambda v: bool(DNS_LABEL_RE.match(v)),
                        allowed="expected a lowercase DNS label")
        if name in names:
            r.fail(f"{p}.name", name, "release names must be unique")
        names.add(name)
        chart = r.string(f"{p}.chart", item.get("chart"), required=True, allowed="the chart name, e.g. metrics-server")
        version = r.string(f"{p}.version", item.get("version"), required=True,
                           check=lambda v: bool(re.match(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$", v)),
                           allowed="an exact chart version such as 3.13.0 (ranges are not pinned)")
        repo = _read_chart_repo(r, f"{p}.repo", item.get("repo"))
        if chart and not repo and item.get("repo") is None and not chart.startswith(("oci://", "/", "./", "../")):
            r.problems.append(f"{p}.repo: is required for chart {chart!r}: a repository URL, or give the chart "
                              "as an oci:// reference or a local path")
        values = item.get("values") or {}
        if not isinstance(values, Mapping):
            r.fail(f"{p}.values", values, "expected a mapping of chart values")
            values = {}
        namespace = r.string(f"{p}.namespace", item.get("namespace"), "default",
                             check=lambda v: bool(DNS_LABEL_RE.match(v)), allowed="expected a namespace name")
        timeout = item.get("timeout")
        if name and chart and version:
            releases.append(HelmRelease(
                name=name, chart=chart, version=version, repo=repo, namespace=namespace or "default",
                values=dict(values),
                timeout=None if timeout is None else r.integer(f"{p}.timeout", timeout, 300, 1, 86400),
                skip_await=r.boolean(f"{p}.skipAwait", item.get("skipAwait"), False),
            ))
    return tuple(releases)


def _read_security(r: _Reader, value: Any) -> Security:
    raw = r.mapping("security", value, KNOWN_KEYS["security"])
    return Security(
        profiling=r.boolean("security.profiling", raw.get("profiling"), Security.profiling),
        pod_security=r.choice("security.podSecurity", raw.get("podSecurity"), POD_SECURITY_LEVELS,
                              Security.pod_security),
        audit_log=r.boolean("security.auditLog", raw.get("auditLog"), Security.audit_log),
        encryption_at_rest=r.boolean("security.encryptionAtRest", raw.get("encryptionAtRest"),
                                     Security.encryption_at_rest),
        protect_kernel_defaults=r.boolean("security.protectKernelDefaults", raw.get("protectKernelDefaults"),
                                          Security.protect_kernel_defaults),
        kubelet_serving_certificates=r.boolean("security.kubeletServingCertificates",
                                               raw.get("kubeletServingCertificates"),
                                               Security.kubelet_serving_certificates),
    )


# The built-in ClusterRoles meant for namespaces (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go
# @v1.36.4: admin, edit, view, aggregated).
SCOPED_ROLES = ("view", "edit", "admin")
# Where a namespaced role reaches cluster-wide power: kube-system holds the controllers' service accounts and
# the bootstrap tokens; kubeadm-cluster holds the exported credentials' own tokens.
CREDENTIALS_NAMESPACE = "kubeadm-cluster"
PRIVILEGED_NAMESPACES = ("kube-system", CREDENTIALS_NAMESPACE)


def _read_kubeconfig(r: _Reader, value: Any) -> KubeconfigSettings:
    raw = r.mapping("kubeconfig", value, KNOWN_KEYS["kubeconfig"])
    revision = r.string("kubeconfig.revision", raw.get("revision"), KubeconfigSettings.revision) \
        or KubeconfigSettings.revision
    scoped_raw = raw.get("scoped")
    if scoped_raw is not None and not isinstance(scoped_raw, list):
        r.fail("kubeconfig.scoped", scoped_raw, "expected a list of {name, namespaces, role, revision}")
        scoped_raw = []
    scoped: list[ScopedCredential] = []
    seen: dict[str, int] = {}
    for i, item_raw in enumerate(scoped_raw or []):
        p = f"kubeconfig.scoped[{i}]"
        item = r.mapping(p, item_raw, KNOWN_KEYS["kubeconfig.scoped[]"])
        # The name is part of a label value with an 8-character suffix (63 at most).
        name = r.string(f"{p}.name", item.get("name"), required=True,
                        check=lambda v: bool(DNS_LABEL_RE.match(v)) and len(v) <= 40 and v != "admin",
                        allowed="expected a lowercase DNS label of up to 40 characters other than admin "
                                "(the name of the full credential)")
        if name in seen:
            r.fail(f"{p}.name", name, f"names must be unique (also kubeconfig.scoped[{seen[name]}])")
            name = None
        namespaces = r.string_list(f"{p}.namespaces", item.get("namespaces"),
                                   check=lambda v: bool(DNS_LABEL_RE.match(v)) and v not in PRIVILEGED_NAMESPACES,
                                   allowed="expected a namespace name (a lowercase DNS label), not "
                                           f"{' or '.join(PRIVILEGED_NAMESPACES)}: a role there reaches "
                                           "cluster-wide credentials")
        if item.get("namespaces") in (None, []):
            r.problems.append(f"{p}.namespaces: is required; expected a non-empty list of namespace names")
        role = r.choice(f"{p}.role", item.get("role"), SCOPED_ROLES, ScopedCredential.role)
        item_revision = r.string(f"{p}.revision", item.get("revision"), ScopedCredential.revision) \
            or ScopedCredential.revision
        if name:
            seen[name] = i
            scoped.append(ScopedCredential(name, tuple(dict.fromkeys(namespaces)), role, item_revision))
    return KubeconfigSettings(revision=revision, scoped=tuple(scoped))


def _read_package_repositories(r: _Reader, value: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Mirror URLs and pinned signing-key fingerprints by name. Plain http:// is refused unless
    allowInsecureHttp: the repository key is fetched from the mirror itself, so whoever is on the path
    could replace it."""
    raw = r.mapping("packageRepositories", value, KNOWN_KEYS["packageRepositories"])
    allow_http = r.boolean("packageRepositories.allowInsecureHttp", raw.pop("allowInsecureHttp", None), False)
    repositories, fingerprints = {}, {}
    for key, entry in raw.items():
        path = f"packageRepositories.{key}"
        raw_url = entry
        if isinstance(entry, Mapping):
            entry = r.mapping(path, entry, KNOWN_KEYS[path])
            raw_url = entry.get("url")
            fingerprint = r.string(f"{path}.keyFingerprint", entry.get("keyFingerprint"),
                                   check=lambda v: bool(FINGERPRINT_RE.match(v.replace(" ", ""))),
                                   allowed="expected an OpenPGP v4 fingerprint: 40 hexadecimal digits (spaces allowed), "
                                           "as `gpg --show-keys KEYFILE` prints it")
            if fingerprint:
                fingerprints[key] = fingerprint.replace(" ", "").upper()
            if raw_url is None:
                continue
        url = r.string(path, raw_url, check=lambda v: bool(URL_RE.match(v)),
                       allowed="expected an http(s) URL ending in /; '{minor}' is replaced by e.g. 1.36")
        if url and url.startswith("http://") and not allow_http:
            r.fail(path, url, "expected an https:// URL: the repository key is fetched from this mirror; "
                              "set packageRepositories.allowInsecureHttp: true to accept plain http")
        elif url:
            repositories[key] = url
    return repositories, fingerprints


DEFAULT_MAX_UNAVAILABLE_WORKERS = "20%"  # kubespray's default; k0sctl's is 10 %
PERCENT_RE = re.compile(r"^(\d+)%$")
# A Go duration as kubectl parses --timeout, limited to whole h/m/s parts, e.g. 5m, 90s, 1h30m.
DURATION_RE = re.compile(r"^(?=\d)(\d+h)?(\d+m)?(\d+s)?$")


def _read_max_unavailable_workers(r: _Reader, value: Any, workers: int) -> int:
    """A count, or a percentage of the workers rounded up (at least 1), as kubespray and k0sctl take it."""
    path = "upgrade.maxUnavailableWorkers"
    allowed = "expected a count (1 to 1000) or a percentage of the workers (1% to 100%, e.g. 20%)"
    text = DEFAULT_MAX_UNAVAILABLE_WORKERS if value is None else value
    percent = PERCENT_RE.match(text) if isinstance(text, str) else None
    if percent:
        if not 1 <= int(percent.group(1)) <= 100:
            r.fail(path, value, allowed)
            return 1
        return max(1, -(-workers * int(percent.group(1)) // 100))
    if isinstance(text, bool) or not re.match(r"^\d+$", str(text).strip()) or not 1 <= int(str(text).strip()) <= 1000:
        r.fail(path, value, allowed)
        return 1
    return int(str(text).strip())


def _read_drain(r: _Reader, value: Any) -> Drain:
    raw = r.mapping("upgrade.drain", value, KNOWN_KEYS["upgrade.drain"])
    timeout = r.string("upgrade.drain.timeout", raw.get("timeout"), Drain.timeout,
                       check=lambda v: bool(DURATION_RE.match(v)) and any(c in "123456789" for c in v),
                       allowed="expected a duration above zero such as 5m, 90s or 1h30m (zero would wait forever)")
    return Drain(
        timeout=timeout or Drain.timeout,
        grace_period=r.integer("upgrade.drain.gracePeriod", raw.get("gracePeriod"), Drain.grace_period, -1, 86400),
        skip_wait_for_delete_timeout=r.integer("upgrade.drain.skipWaitForDeleteTimeout",
                                               raw.get("skipWaitForDeleteTimeout"),
                                               Drain.skip_wait_for_delete_timeout, 0, 86400),
    )


# systemd.time(7) calendar events, the subset accepted here: the shorthands, or
# "[WEEKDAYS] [YEAR-]MONTH-DAY HOUR:MINUTE[:SECOND]" (date or time may be left out) whose fields are
# comma lists of *, N, N..M and N/STEP (*/STEP). The machine's systemd parses it again when the timer
# is enabled; tests/test_etcd_backup.py checks this subset against `systemd-analyze calendar`.
CALENDAR_SHORTHANDS = ("minutely", "hourly", "daily", "weekly", "monthly", "quarterly", "semiannually",
                       "yearly", "annually")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "monday", "tuesday", "wednesday", "thursday",
            "friday", "saturday", "sunday")


def _calendar_field(text: str, lo: int, hi: int) -> bool:
    def number(n: str) -> bool:
        return n.isdigit() and lo <= int(n) <= hi
    for item in text.split(","):
        start, slash, step = item.partition("/")
        if slash and not (step.isdigit() and int(step) > 0):
            return False
        first, dots, last = start.partition("..")
        if start == "*" or number(start):
            continue
        if dots and not slash and number(first) and number(last) and int(first) <= int(last):
            continue
        return False
    return bool(text)


def is_calendar_event(text: str) -> bool:
    """Whether `text` is a systemd OnCalendar expression of the subset above."""
    if text.strip().lower() in CALENDAR_SHORTHANDS:
        return True
    parts = text.split()
    if parts and re.fullmatch(r"[A-Za-z]+((\.\.|,)[A-Za-z]+)*", parts[0]):
        if not all(day.lower() in WEEKDAYS for day in re.split(r"\.\.|,", parts.pop(0))):
            return False
    if not parts or len(parts) > 2:
        return False
    date = parts[0] if "-" in parts[0] else None
    time = parts[-1] if ":" in parts[-1] else None
    if len(parts) != (date is not None) + (time is not None) or (date and time and date == time):
        return False
    if date is not None:
        fields = date.split("-")
        limits = [(1970, 2199), (1, 12), (1, 31)][-len(fields):] if len(fields) in (2, 3) else None
        if limits is None or not all(_calendar_field(f, lo, hi) for f, (lo, hi) in zip(fields, limits)):
            return False
    if time is not None:
        fields = time.split(":")
        if len(fields) not in (2, 3) or not all(_calendar_field(f, 0, hi) for f, hi in zip(fields, (23, 59, 59))):
            return False
    return True


def _read_etcd_backup(r: _Reader, value: Any, etcd_is_secret: bool) -> EtcdBackup:
    raw = r.mapping("etcd.backup", value, KNOWN_KEYS["etcd.backup"])
    schedule = r.string("etcd.backup.schedule", raw.get("schedule"), EtcdBackup.schedule, check=is_calendar_event,
                        allowed="expected a systemd OnCalendar expression such as '*-*-* 00/6:00:00' (every 6 "
                                "hours), 'daily' or 'Mon..Fri 02:30'; fields take *, N, N..M, N/STEP and lists")
    directory = r.string("etcd.backup.directory", raw.get("directory"), EtcdBackup.directory,
                         check=lambda v: bool(re.fullmatch(r"/[A-Za-z0-9._/-]*[A-Za-z0-9._-]", v))
                         and not re.match(r"^/var/lib/etcd(/|$)", v) and "/../" not in v + "/",
                         allowed="expected an absolute path outside etcd's data directory /var/lib/etcd, "
                                 "e.g. /var/lib/etcd-backups")
    copy_command = _read_shell_line(r, "etcd.backup.copyCommand", raw.get("copyCommand"), etcd_is_secret,
                                    "expected one line of shell; the snapshot path is its $1",
                                    "the backup script on every etcd member")
    url = r.string("etcd.backup.etcdutlUrl", raw.get("etcdutlUrl"), EtcdBackup.etcdutl_url,
                   check=lambda v: bool(URL_RE.match(v)),
                   allowed="expected an http(s) URL of etcd's release tarball; {version} and {arch} are replaced")
    sums_raw = raw.get("etcdutlSha256") or {}
    sums: dict[str, str] = {}
    if not isinstance(sums_raw, Mapping):
        r.fail("etcd.backup.etcdutlSha256", sums_raw, "expected a mapping of release tarball names to sha256 sums")
    else:
        for name, digest in sums_raw.items():
            key = f"etcd.backup.etcdutlSha256.{name}"
            if not re.fullmatch(r"etcd-v\d+\.\d+\.\d+-linux-(amd64|arm64)\.tar\.gz", str(name)):
                r.fail(key, name, "expected a release tarball name such as etcd-v3.6.8-linux-amd64.tar.gz")
            elif r.string(key, digest, check=lambda v: bool(re.fullmatch(r"[0-9a-f]{64}", v)),
                          allowed="expected the tarball's sha256 as 64 lowercase hex digits"):
                sums[str(name)] = str(digest)
    return EtcdBackup(
        enabled=r.boolean("etcd.backup.enabled", raw.get("enabled"), EtcdBackup.enabled),
        schedule=schedule or EtcdBackup.schedule,
        retention=r.integer("etcd.backup.retention", raw.get("retention"), EtcdBackup.retention, 1, 1000),
        directory=directory or EtcdBackup.directory,
        copy_command=copy_command,
        etcdutl_url=url or EtcdBackup.etcdutl_url,
        etcdutl_sha256=sums,
    )


def _read_shell_line(r: _Reader, path: str, value: Any, etcd_is_secret: bool, allowed: str, script: str) -> str:
    """One line of shell that is written into SCRIPT on the hosts, so never taken from secret config."""
    command = r.string(path, value, "", check=lambda v: "\n" not in v, allowed=allowed) or ""
    if command and etcd_is_secret:
        r.problems.append(f"{path}: must not be set as a secret: it is written into {script}; keep credentials "
                          "in a file the command reads")
    return command


RESTORE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _read_etcd_restore(r: _Reader, value: Any, etcd_is_secret: bool) -> EtcdRestore:
    raw = r.mapping("etcd.restore", value, KNOWN_KEYS["etcd.restore"])
    restore_id = r.string("etcd.restore.id", raw.get("id"), "", check=lambda v: bool(RESTORE_ID_RE.match(v)),
                          allowed="expected 1-63 letters, digits, '.', '_' or '-' (e.g. 2026-11-25), starting "
                                  "with a letter or digit; a new value runs the restore once") or ""
    snapshot = r.string("etcd.restore.snapshot", raw.get("snapshot"), "", required=bool(restore_id),
                        check=lambda v: v.startswith("/") and not re.match(r"^/var/lib/etcd(/|$)", v)
                        and "/../" not in v + "/" and not re.search(r"\s", v),
                        allowed="expected the absolute path of the snapshot file on the first control plane "
                                "(the first external etcd member), outside etcd's data directory /var/lib/etcd, "
                                "e.g. /var/lib/etcd-backups/etcd-cp1-20261125T060000Z.db") or ""
    fetch_command = _read_shell_line(r, "etcd.restore.fetchCommand", raw.get("fetchCommand"), etcd_is_secret,
                                     "expected one line of shell that writes the snapshot to the path $1",
                                     "the restore script")
    if (snapshot or fetch_command) and raw.get("id") in (None, ""):
        r.problems.append("etcd.restore.id: is required with etcd.restore.snapshot; a new id runs the restore")
    return EtcdRestore(id=restore_id, snapshot=snapshot, fetch_command=fetch_command)


def _check_keepalived_auth_pass(r: _Reader, value: str) -> None:
    """The secret itself is never put in a problem: only what is wrong with it."""
    refused = sorted({c for c in value if c in KEEPALIVED_AUTH_PASS_REFUSED or not "!" <= c <= "~"})
    if KEEPALIVED_AUTH_PASS_RE.match(value) and not refused:
        return
    found = f"{len(value)} characters" + (f", including {', '.join(map(repr, refused))}" if refused else "")
    r.problems.append(f"keepalivedAuthPass: (secret, {found}) expected 1 to 8 printable ASCII characters "
                      f"(keepalived uses at most 8) without whitespace or any of {' '.join(sorted(KEEPALIVED_AUTH_PASS_REFUSED))}")


def parse_spec(raw: Mapping[str, Any], stack: str = "dev", has_private_key: bool = True,
               keepalived_auth_pass: str | None = None, secret_keys: Collection[str] = ()) -> ClusterSpec:
    """Validate raw config values (keys without the project prefix) into a ClusterSpec.

    The secrets are not part of the spec; only whether they are set matters here, and that a set
    keepalivedAuthPass is one keepalived can use (never echoed in a problem).
    Raises ConfigError listing every problem found.
    """
    r = _Reader(secret_keys)
    r.mapping("", raw, KNOWN_KEYS[""])
    warnings: list[str] = []
    version = _read_version(r, raw.get("kubernetesVersion"), warnings)
    cluster_name = r.string("clusterName", raw.get("clusterName"), stack, check=lambda v: bool(DNS_LABEL_RE.match(v)),
                            allowed="expected a lowercase DNS label") or stack
    ssh = _read_ssh(r, raw.get("ssh"), warnings)
    if not has_private_key and not ssh.agent:
        r.problems.append("sshPrivateKey: is required unless ssh.agent is true; set it with "
                          "`pulumi config set --secret kubeadm-cluster:sshPrivateKey < ~/.ssh/id_ed25519`")
    etcd_raw = r.mapping("etcd", raw.get("etcd"), KNOWN_KEYS["etcd"])
    etcd_topology = r.choice("etcd.topology", etcd_raw.get("topology"), ETCD_TOPOLOGIES, "stacked")
    nodes = _read_nodes(r, raw.get("nodes"), ssh)
    _check_inventory(r, nodes, etcd_topology, warnings)
    _warn_rsa_host_keys(nodes, ssh, warnings)
    control_plane = _read_control_plane(r, raw.get("controlPlane"), nodes)
    if control_plane.load_balancer.type == "haproxy-keepalived" and not has_private_key and keepalived_auth_pass is None:
        r.problems.append("keepalivedAuthPass: is required with haproxy-keepalived and ssh.agent (it is otherwise "
                          "derived from sshPrivateKey); set it with `pulumi config set --secret kubeadm-cluster:keepalivedAuthPass`")
    if keepalived_auth_pass is not None:
        _check_keepalived_auth_pass(r, keepalived_auth_pass)
    networking = _read_networking(r, raw.get("networking"), nodes, control_plane, warnings)
    runtime_raw = r.mapping("containerRuntime", raw.get("containerRuntime"), KNOWN_KEYS["containerRuntime"])
    runtime = r.choice("containerRuntime.type", runtime_raw.get("type"), RUNTIMES, "containerd")
    image_repository = r.string("imageRepository", raw.get("imageRepository"), "registry.k8s.io",
                                check=lambda v: bool(IMAGE_REPO_RE.match(v)),
                                allowed="expected a registry path such as registry.k8s.io") or "registry.k8s.io"
    package_repositories, package_key_fingerprints = _read_package_repositories(r, raw.get("packageRepositories"))
    upgrade_raw = r.mapping("upgrade", raw.get("upgrade"), KNOWN_KEYS["upgrade"])
    certs_raw = r.mapping("certificates", raw.get("certificates"), KNOWN_KEYS["certificates"])
    spec = ClusterSpec(
        kubernetes_version=version,
        cluster_name=cluster_name,
        ssh=ssh,
        nodes=nodes,
        control_plane=control_plane,
        etcd_topology=etcd_topology,
        etcd_backup=_read_etcd_backup(r, etcd_raw.get("backup"), "etcd" in secret_keys),
        etcd_restore=_read_etcd_restore(r, etcd_raw.get("restore"), "etcd" in secret_keys),
        networking=networking,
        container_runtime=runtime,
        image_repository=image_repository,
        package_repositories=package_repositories,
        package_key_fingerprints=package_key_fingerprints,
        cni=_read_cni(r, raw.get("cni")),
        ingress=_read_ingress(r, raw.get("ingress"), warnings),
        max_unavailable_workers=_read_max_unavailable_workers(r, upgrade_raw.get("maxUnavailableWorkers"),
                                                              sum(n.is_worker for n in nodes)),
        drain=_read_drain(r, upgrade_raw.get("drain")),
        join_material_epoch=r.string("joinMaterialEpoch", raw.get("joinMaterialEpoch"), "1") or "1",
        certificates_renew=r.string("certificates.renew", certs_raw.get("renew"), "") or "",
        helm_releases=_read_helm_releases(r, raw.get("helmReleases")),
        security=_read_security(r, raw.get("security")),
        kubeconfig=_read_kubeconfig(r, raw.get("kubeconfig")),
        warnings=tuple(warnings),
        secret_config_keys=frozenset(secret_keys),
    )
    _check_endpoint_port(r, spec.control_plane, spec.ingress)
    if r.problems:
        raise ConfigError(r.problems)
    return spec


@dataclass(frozen=True)
class Secrets:
    """Secret config, kept apart from the spec so it only ever travels as secret Outputs."""

    private_key: pulumi.Output[str] | None
    keepalived_auth_pass: pulumi.Output[str] | None


def derive_keepalived_auth_pass(private_key: pulumi.Output[str], cluster_name: str) -> pulumi.Output[str]:
    """A VRRP password derived from the SSH key: stable, secret, and never in plaintext state."""
    return pulumi.Output.secret(private_key.apply(
        lambda key: hashlib.sha256(f"keepalived:{cluster_name}:{key}".encode()).hexdigest()[:8]))


def _stack_config_keys() -> set[str]:
    """Every key the stack sets in this project's namespace. pulumi.Config answers only for keys it is
    asked about, so without this a mistyped key would be silently ignored."""
    prefix = f"{PROJECT}:"
    names = {*pulumi.runtime.config.CONFIG.get(), *pulumi.runtime.config.get_config_env()}
    return {name[len(prefix):] for name in names if name.startswith(prefix)}


def load_spec() -> tuple[ClusterSpec, Secrets]:
    """Read this stack's config: the validated spec and the secrets."""
    config = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key in (set(KNOWN_KEYS[""]) | _stack_config_keys()) - set(SECRET_KEYS):
        try:
            raw[key] = config.get_object(key)
        except pulumi.config.ConfigTypeError:  # a plain string that is not JSON, e.g. 1.36.4
            raw[key] = config.get(key)
    raw = {key: value for key, value in raw.items() if value is not None}
    private_key = config.get_secret("sshPrivateKey")
    auth_pass_text = config.get("keepalivedAuthPass")  # validated here, travels only as the secret below
    auth_pass = None if auth_pass_text is None else pulumi.Output.secret(auth_pass_text)
    secret_keys = {key for key in raw if pulumi.runtime.is_config_secret(f"{PROJECT}:{key}")}
    spec = parse_spec(raw, pulumi.get_stack(), has_private_key=private_key is not None,
                      keepalived_auth_pass=auth_pass_text, secret_keys=secret_keys)
    for warning in spec.warnings:
        pulumi.log.warn(warning)
    if auth_pass is None and private_key is not None:
        auth_pass = derive_keepalived_auth_pass(private_key, spec.cluster_name)
    return spec, Secrets(private_key, auth_pass)
