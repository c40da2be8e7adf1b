#!/usr/bin/python3
"""Strict stand-ins for kubeadm, kubelet, kubectl, systemctl, containerd, crio and crictl in lab hosts.

One file, dispatched on the program name; the lab's packages install a copy per tool with its
version baked in (@VERSION@). They share a cluster journal (/var/lib/kclab/journal.json, locked)
and a lab clock (/var/lib/kclab/clock, an offset in seconds tests can move). They reject unknown
flags and invalid kubeadm v1beta4 configuration like the real tools (stricter where noted), check
kubeadm's preflight conditions, enforce the bootstrap token TTL and the 2 h certificate-key
expiry, and record every call.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NoReturn

import yaml

VERSION = "@VERSION@"
LAB = Path("/var/lib/kclab")
JOURNAL = LAB / "journal.json"
CLOCK = LAB / "clock"
K8S = Path("/etc/kubernetes")
PKI = K8S / "pki"
MANIFESTS = K8S / "manifests"
STATE = Path("/var/lib/kclab-node")  # per-host state of the stand-ins (kubelet, units)
HOST = socket.gethostname()
RUNTIME_SOCKETS = {"containerd": Path("/run/containerd/containerd.sock"), "crio": Path("/var/run/crio/crio.sock")}
DEFAULT_CRI_SOCKET = "unix:///run/containerd/containerd.sock"


# ---------------------------------------------------------------------------------------------
# shared plumbing
# ---------------------------------------------------------------------------------------------

def now() -> float:
    offset = float(CLOCK.read_text()) if CLOCK.exists() else 0.0
    return time.time() + offset


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(code)


@contextlib.contextmanager
def journal():
    """The shared cluster journal, locked for the block; written back on exit."""
    LAB.mkdir(parents=True, exist_ok=True)
    with open(LAB / "journal.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(JOURNAL.read_text()) if JOURNAL.exists() and JOURNAL.stat().st_size else {}
        data.setdefault("calls", [])
        data.setdefault("nodes", {})
        data.setdefault("etcd", [])
        data.setdefault("tokens", {})
        data.setdefault("certificateKeys", {})
        data.setdefault("externalEtcd", {})
        yield data
        tmp = JOURNAL.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(JOURNAL)


def record_call(tool: str, argv: list[str]) -> None:
    with journal() as j:
        j["calls"].append({"host": HOST, "tool": tool, "argv": argv, "time": now()})


def parse_flags(argv: list[str], known: dict[str, bool], positional: int | tuple[int, int] = 0
                ) -> tuple[dict[str, Any], list[str]]:
    """cobra-like parsing: `known` maps flag name → takes a value. Unknown flags fail like cobra."""
    flags: dict[str, Any] = {}
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.extend(argv[i + 1:])
            break
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.lstrip("-").partition("=")
            if name not in known:
                fail(f"Error: unknown flag: {arg.split('=')[0]}\nSee '{os.path.basename(sys.argv[0])} --help' for usage.")
            if known[name] and not eq:
                i += 1
                if i >= len(argv):
                    fail(f"Error: flag needs an argument: {arg}")
                value = argv[i]
            flags[name] = value if known[name] else (value != "false" if eq else True)
        else:
            args.append(arg)
        i += 1
    low, high = positional if isinstance(positional, tuple) else (positional, positional)
    if not low <= len(args) <= high:
        fail(f"Error: accepts between {low} and {high} arg(s), received {len(args)}")
    return flags, args


# ---------------------------------------------------------------------------------------------
# kubeadm configuration: strict v1beta4 decoding
# ---------------------------------------------------------------------------------------------

ARG = {"name": str, "value": str}
ENV = {"name": str, "value": str, "valueFrom": dict}
TAINT = {"key": str, "value": str, "effect": str, "timeAdded": str}
API_ENDPOINT = {"advertiseAddress": str, "bindPort": int}
NODE_REGISTRATION = {"name": str, "criSocket": str, "taints": [TAINT], "kubeletExtraArgs": [ARG],
                     "ignorePreflightErrors": [str], "imagePullPolicy": str, "imagePullSerial": bool}
TIMEOUTS = {k: str for k in ("controlPlaneComponentHealthCheck", "kubeletHealthCheck", "kubernetesAPICall",
                             "etcdAPICall", "tlsBootstrap", "discovery", "upgradeManifests")}
PATCHES = {"directory": str}
BOOTSTRAP_TOKEN = {"token": str, "description": str, "ttl": str, "expires": str, "usages": [str], "groups": [str]}
# HostPathMount, kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go (read at commit 017b1e4)
HOST_PATH_MOUNT = {"name": str, "hostPath": str, "mountPath": str, "readOnly": bool, "pathType": str}
CONTROL_PLANE_COMPONENT = {"extraArgs": [ARG], "extraVolumes": [HOST_PATH_MOUNT], "extraEnvs": [ENV]}
SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("kubeadm.k8s.io/v1beta4", "InitConfiguration"): {
        "apiVersion": str, "kind": str, "bootstrapTokens": [BOOTSTRAP_TOKEN], "dryRun": bool,
        "nodeRegistration": NODE_REGISTRATION, "localAPIEndpoint": API_ENDPOINT, "certificateKey": str,
        "skipPhases": [str], "patches": PATCHES, "timeouts": TIMEOUTS},
    ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration"): {
        "apiVersion": str, "kind": str,
        "etcd": {"local": {"imageRepository": str, "imageTag": str, "dataDir": str, "extraArgs": [ARG],
                           "extraEnvs": [ENV], "serverCertSANs": [str], "peerCertSANs": [str]},
                 "external": {"endpoints": [str], "caFile": str, "certFile": str, "keyFile": str,
                              "httpEndpoints": [str]}},
        "networking": {"serviceSubnet": str, "podSubnet": str, "dnsDomain": str},
        "kubernetesVersion": str, "controlPlaneEndpoint": str,
        "apiServer": {**CONTROL_PLANE_COMPONENT, "certSANs": [str]},
        "controllerManager": CONTROL_PLANE_COMPONENT, "scheduler": CONTROL_PLANE_COMPONENT,
        "dns": {"imageRepository": str, "imageTag": str, "disabled": bool},
        "proxy": {"disabled": bool}, "certificatesDir": str, "imageRepository": str, "featureGates": dict,
        "clusterName": str, "encryptionAlgorithm": str, "certificateValidityPeriod": str,
        "caCertificateValidityPeriod": str},
    ("kubeadm.k8s.io/v1beta4", "JoinConfiguration"): {
        "apiVersion": str, "kind": str, "dryRun": bool, "nodeRegistration": NODE_REGISTRATION, "caCertPath": str,
        "discovery": {"bootstrapToken": {"token": str, "apiServerEndpoint": str, "caCertHashes": [str],
                                         "unsafeSkipCAVerification": bool},
                      "file": {"kubeConfigPath": str}, "tlsBootstrapToken": str},
        "controlPlane": {"localAPIEndpoint": API_ENDPOINT, "certificateKey": str},
        "skipPhases": [str], "patches": PATCHES, "timeouts": TIMEOUTS},
    ("kubeadm.k8s.io/v1beta4", "ResetConfiguration"): {
        "apiVersion": str, "kind": str, "cleanupTmpDir": bool, "certificatesDir": str, "criSocket": str,
        "force": bool, "ignorePreflightErrors": [str], "skipPhases": [str], "unmountFlags": [str],
        "dryRun": bool, "timeouts": TIMEOUTS},
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"): {
        "apiVersion": str, "kind": str, "cgroupDriver": str, "address": str, "port": int,
        "authentication": {"anonymous": {"enabled": bool}, "webhook": {"enabled": bool, "cacheTTL": str},
                           "x509": {"clientCAFile": str}},
        "authorization": {"mode": str, "webhook": dict}, "containerRuntimeEndpoint": str, "staticPodPath": str,
        "failSwapOn": bool, "memorySwap": dict, "clusterDNS": [str], "clusterDomain": str, "maxPods": int,
        "rotateCertificates": bool, "serverTLSBootstrap": bool, "resolvConf": str, "evictionHard": dict,
        "kubeReserved": dict, "systemReserved": dict, "featureGates": dict, "failCgroupV1": bool,
        "protectKernelDefaults": bool},
    ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"): {
        "apiVersion": str, "kind": str, "mode": str, "clusterCIDR": str, "bindAddress": str,
        "iptables": dict, "ipvs": dict, "nftables": dict, "conntrack": dict, "featureGates": dict},
}
KUBE_PROXY_MODES = ("iptables", "nftables", "ipvs")
ALLOWED_WITH_CONFIG = {"config", "ignore-preflight-errors", "dry-run", "kubeconfig", "node-name",
                       "kubeconfig-dir", "upload-certs", "print-join-command", "rootfs", "v", "log-file"}


def check_schema(value: Any, schema: Any, path: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            fail(f"error: {path}: expected an object, got {type(value).__name__} (for example extraArgs "
                 f"is a list of {{name, value}} in v1beta4)")
        if schema is dict:
            return
        for key, item in value.items():
            if key not in schema:
                fail(f'error: strict decoding error: unknown field "{path}.{key}"' if path else
                     f'error: strict decoding error: unknown field "{key}"')
            check_schema(item, schema[key], f"{path}.{key}" if path else key)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            fail(f"error: {path}: expected a list, got {type(value).__name__}"
                 + (" (v1beta4 takes extraArgs/kubeletExtraArgs as a list of {name, value})"
                    if path.endswith(("Args", "extraArgs")) else ""))
        for i, item in enumerate(value):
            check_schema(item, schema[0], f"{path}[{i}]")
    elif schema is dict:
        if not isinstance(value, dict):
            fail(f"error: {path}: expected an object")
    elif schema is int:
        if not isinstance(value, int) or isinstance(value, bool):
            fail(f"error: {path}: expected an integer, got {value!r}")
    elif schema is bool:
        if not isinstance(value, bool):
            fail(f"error: {path}: expected true or false, got {value!r}")
    elif schema is str:
        if not isinstance(value, str):
            fail(f"error: {path}: expected a string, got {value!r}")


def load_config(path: str) -> dict[str, dict[str, Any]]:
    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as error:
        fail(f"error: unable to read config from {path!r}: {error}")
    result: dict[str, dict[str, Any]] = {}
    for doc in documents:
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            fail("error: a configuration document lacks apiVersion or kind")
        api, kind = doc["apiVersion"], doc["kind"]
        if api.startswith("kubeadm.k8s.io/") and api != "kubeadm.k8s.io/v1beta4":
            fail(f'error: your configuration file uses an old API spec: "{api}" is no longer supported '
                 f'(kubeadm {VERSION} reads kubeadm.k8s.io/v1beta4). Use "kubeadm config migrate" from an older kubeadm')
        schema = SCHEMAS.get((api, kind))
        if schema is None:
            fail(f'error: no kind "{kind}" is registered for version "{api}"')
        if kind in result:
            fail(f"error: duplicate {kind} document")
        check_schema(doc, schema, "")
        result[kind] = doc
    proxy = result.get("KubeProxyConfiguration", {})
    if proxy.get("mode") not in (None, "", *KUBE_PROXY_MODES):
        fail(f'error: KubeProxyConfiguration.mode: Unsupported value: "{proxy["mode"]}"')
    return result


def reject_flags_with_config(flags: dict[str, Any]) -> None:
    if "config" in flags:
        bad = sorted(f for f in flags if f not in ALLOWED_WITH_CONFIG and not f.startswith("skip-"))
        if bad:
            fail(f"error: can not mix '--config' with arguments {bad}")


# ---------------------------------------------------------------------------------------------
# certificates (real openssl, so `openssl x509 -pubkey` and the CA hash work)
# ---------------------------------------------------------------------------------------------

def openssl(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def request_serving_certificate(j: dict[str, Any], name: str, registration: dict[str, Any]) -> None:
    """The kubelet's serving-certificate CSR once its node is registered, if the cluster's kubelet config has
    serverTLSBootstrap (pkg/kubelet/kubelet.go; pkg/kubelet/certificate/kubelet.go newGetTemplateFn @v1.36.4:
    O=system:nodes, CN=system:node:NAME, its hostname, the node name under kubeadm, and its --node-ip; an
    ECDSA P-256 key, client-go util/certificate/certificate_manager.go@v0.36.2)."""
    if not j["cluster"].get("serverTLSBootstrap"):
        return
    ip = next((a["value"] for a in registration.get("kubeletExtraArgs", []) if a["name"] == "node-ip"), HOST)
    pem = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", "/dev/null", "-subj", f"/O=system:nodes/CN=system:node:{name}",
                  "-addext", f"subjectAltName=DNS:{name},IP:{ip}")
    j.setdefault("csrs", []).append({"name": f"csr-{secrets.token_hex(4)}", "signerName": "kubernetes.io/kubelet-serving",
                                     "username": f"system:node:{name}", "conditions": [],
                                     "request": base64.b64encode(pem.encode()).decode()})


def make_ca(directory: Path, name: str, cn: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / f"{name}.crt").exists():
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", f"/CN={cn}",
                "-keyout", str(directory / f"{name}.key"), "-out", str(directory / f"{name}.crt"))
        (directory / f"{name}.key").chmod(0o600)


def make_cert(ca_dir: Path, ca: str, out: Path, cn: str, sans: list[str] = ()) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    ext = out.with_suffix(".ext")
    ext.write_text("subjectAltName=" + ",".join(
        (f"IP:{s}" if re.match(r"^[0-9.]+$|:", s) else f"DNS:{s}") for s in (sans or [cn])) + "\n")
    csr = openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                  "-keyout", str(out.with_suffix(".key")))
    openssl("x509", "-req", "-CA", str(ca_dir / f"{ca}.crt"), "-CAkey", str(ca_dir / f"{ca}.key"),
            "-CAcreateserial", "-days", "365", "-extfile", str(ext), "-out", str(out.with_suffix(".crt")), stdin=csr)
    out.with_suffix(".key").chmod(0o600)
    ext.unlink()


def ca_hash(cert: Path) -> str:
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(cert)], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True, check=True).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


def kubeconfig(path: Path, server: str, user: str) -> None:
    """A kubeconfig with an embedded client certificate and RSA-2048 key, as kubeadm's kubeconfig phase writes
    (cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go@v1.36.4): signed by the cluster CA where its key is on
    the node, else self-signed; a client (the kubernetes provider) can load the pair."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ca = base64.b64encode((PKI / "ca.crt").read_bytes()).decode()
    with tempfile.TemporaryDirectory() as tmp:
        key_file, cert_file = Path(tmp) / "client.key", Path(tmp) / "client.crt"
        if (PKI / "ca.key").exists():
            csr = openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={user}", "-keyout", str(key_file))
            openssl("x509", "-req", "-CA", str(PKI / "ca.crt"), "-CAkey", str(PKI / "ca.key"), "-set_serial",
                    str(secrets.randbits(63)), "-days", "365", "-out", str(cert_file), stdin=csr)
        else:
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", f"/CN={user}",
                    "-keyout", str(key_file), "-out", str(cert_file))
        cert = base64.b64encode(cert_file.read_bytes()).decode()
        key = base64.b64encode(key_file.read_bytes()).decode()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {"certificate-authority-data": ca, "server": server}}],
        "contexts": [{"name": f"{user}@kubernetes", "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": f"{user}@kubernetes",
        "users": [{"name": user, "user": {"client-certificate-data": cert, "client-key-data": key}}],
    }))
    path.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# kubeadm
# ---------------------------------------------------------------------------------------------

def minor(version: str) -> int:
    return int(version.lstrip("v").split(".")[1])


def parse_version(version: str) -> tuple[int, int, int]:
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)$", version)
    if not match:
        fail(f"error: invalid version {version!r}")
    return tuple(int(p) for p in match.groups())  # type: ignore[return-value]


def cri_socket_path(endpoint: str) -> Path:
    if not endpoint.startswith("unix:///"):
        fail(f"error: criSocket {endpoint!r}: only unix:// endpoints are supported")
    return Path(endpoint.removeprefix("unix://"))


def detect_cri_socket() -> str:
    """kubeadm's detection when no criSocket is given: exactly one runtime socket must exist."""
    found = [f"unix://{p}" for p in RUNTIME_SOCKETS.values() if p.exists()]
    if len(found) > 1:
        fail(f"found multiple CRI endpoints on the host. Please define which one do you wish to use by setting "
             f"the 'criSocket' field in the kubeadm configuration file: {', '.join(found)}")
    return found[0] if found else DEFAULT_CRI_SOCKET


def preflight(kind: str, ignore: set[str], cri_socket: str | None) -> None:
    cri_socket = cri_socket or detect_cri_socket()
    errors = []
    swaps = [l for l in Path("/proc/swaps").read_text().splitlines()[1:] if l.strip()] if Path("/proc/swaps").exists() else []
    if swaps:
        errors.append("[ERROR Swap]: running with swap on is not supported. Please disable swap")
    if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "1":
        errors.append("[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1")
    bridge = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if bridge.exists() and bridge.read_text().strip() != "1":
        print("\t[WARNING FileContent--proc-sys-net-bridge-bridge-nf-call-iptables]: "
              "/proc/sys/net/bridge/bridge-nf-call-iptables contents are not set to 1", file=sys.stderr)
    if not cri_socket_path(cri_socket).exists():
        errors.append(f"[ERROR CRI]: container runtime is not running: validate service connection: "
                      f"dial unix {cri_socket_path(cri_socket)}: connect: no such file or directory")
    if subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True).stdout.strip() != "cgroup2fs":
        errors.append("[ERROR SystemVerification]: cgroups v1 support is unsupported and will be removed; "
                      "kubelet >= 1.35 refuses to start on cgroup v1 (failCgroupV1)")
    if (K8S / "kubelet.conf").exists():
        errors.append("[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists")
    if kind == "init" and (MANIFESTS / "kube-apiserver.yaml").exists():
        errors.append("[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]: "
                      "/etc/kubernetes/manifests/kube-apiserver.yaml already exists")
    if not unit_enabled("kubelet"):
        print("\t[WARNING Service-Kubelet]: kubelet service is not enabled, please run 'systemctl enable kubelet.service'",
              file=sys.stderr)
    errors = [e for e in errors if not any(i.lower() in e.lower() or i == "all" for i in ignore)]
    print("[preflight] Running pre-flight checks", file=sys.stderr)
    if errors:
        fail("error execution phase preflight: [preflight] Some fatal errors occurred:\n\t"
             + "\n\t".join(errors) + "\n[preflight] If you know what you are doing, you can make a check non-fatal "
             "with `--ignore-preflight-errors=...`")


# kube-apiserver reads these files at start-up and exits when one cannot be read (k8s.io/apiserver
# pkg/server/options admission.go ReadAdmissionConfiguration, audit.go LoadPolicyFromFile, etcd.go
# LoadEncryptionConfig @v0.36.4, i.e. kubernetes v1.36.4); in its static pod only the paths kubeadm
# mounts (PKI, CA certificates) and apiServer.extraVolumes exist.
API_SERVER_FILE_FLAGS = ("admission-control-config-file", "audit-policy-file", "encryption-provider-config")
# kubelet pkg/kubelet/cm/container_manager_linux.go setupKernelTunables (read at commit 001332b, 2026), values from
# staging/src/k8s.io/component-helpers/node/util/sysctl/sysctl.go: with protectKernelDefaults the
# kubelet fails instead of setting them.
KERNEL_DEFAULTS = {"vm/overcommit_memory": 1, "vm/panic_on_oom": 0, "kernel/panic": 10, "kernel/panic_on_oops": 1,
                   "kernel/keys/root_maxkeys": 1000000, "kernel/keys/root_maxbytes": 25000000}


def check_api_server_files(api_server: dict[str, Any]) -> None:
    args = {a["name"]: a["value"] for a in api_server.get("extraArgs", [])}
    for flag in (f for f in API_SERVER_FILE_FLAGS if f in args):
        path = args[flag]
        mount = next((m for m in api_server.get("extraVolumes", [])
                      if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
        source = Path(mount["hostPath"]) / Path(path).relative_to(mount["mountPath"]) if mount else None
        if source is None or not source.is_file():
            fail("error execution phase wait-control-plane: kube-apiserver is not healthy: the static pod exits: "
                 f"--{flag}: open {path}: no such file or directory"
                 + ("" if mount else " (no apiServer.extraVolumes entry mounts it)"))


def check_kernel_defaults(protect: bool) -> None:
    if not protect:
        return
    wrong = [f"invalid kernel flag: {key}, expected value: {value}, actual value: {actual}"
             for key, value in KERNEL_DEFAULTS.items()
             if (actual := Path(f"/proc/sys/{key}").read_text().strip()) != str(value)]
    if wrong:
        fail("error execution phase wait-control-plane: the kubelet is not healthy (protectKernelDefaults): "
             + "; ".join(wrong))


def write_control_plane_manifests(image_repository: str, version: str, etcd_local: bool) -> None:
    MANIFESTS.mkdir(parents=True, exist_ok=True)
    components = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    for component in components:
        (MANIFESTS / f"{component}.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": component, "namespace": "kube-system"},
            "spec": {"containers": [{"name": component, "image": f"{image_repository}/{component}:v{version}"}],
                     "hostNetwork": True}}))
    if etcd_local:
        Path("/var/lib/etcd/member").mkdir(parents=True, exist_ok=True)  # what the etcd pod makes in its data dir
        start_etcd_metrics_server()
        (MANIFESTS / "etcd.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "etcd", "image": f"{image_repository}/etcd:3.6.6-0"}]}}))


def ignore_set(flags: dict[str, Any], registration: dict[str, Any]) -> set[str]:
    values = set(filter(None, str(flags.get("ignore-preflight-errors", "")).split(",")))
    return values | set(registration.get("ignorePreflightErrors", []))


def uploaded_etcd_set(cluster: dict[str, Any] | None) -> str:
    """Which etcd certificates an upload to the kubeadm-certs Secret holds: the set of the config the
    upload was given, the local-etcd one for kubeadm's defaults (cmd/kubeadm/app/phases/copycerts/
    copycerts.go certsToTransfer; cmd/init.go newInitData → LoadOrDefaultInitConfiguration, @v1.36.4).
    Each upload replaces the Secret's data (apiclient.CreateOrUpdate in copycerts.UploadCerts)."""
    return "external" if (cluster or {}).get("etcd", {}).get("external") else "local"


def uploaded_external_etcd_files(cluster: dict[str, Any] | None) -> dict[str, str]:
    """The external-etcd files an upload carries (caFile, certFile, keyFile), which a joining control
    plane writes to the same paths (copycerts.go DownloadCerts); missing files upload empty."""
    external = (cluster or {}).get("etcd", {}).get("external") or {}
    return {external[k]: Path(external[k]).read_text() if Path(external[k]).exists() else ""
            for k in ("caFile", "certFile", "keyFile") if k in external}


def kubeadm_init(argv: list[str]) -> None:
    if argv and argv[0] == "phase":
        return kubeadm_init_phase(argv[1:])
    flags, _ = parse_flags(argv, {"config": True, "upload-certs": False, "skip-token-print": False,
                                  "skip-certificate-key-print": False, "ignore-preflight-errors": True,
                                  "v": True, "control-plane-endpoint": True, "pod-network-cidr": True,
                                  "dry-run": False, "certificate-key": True, "node-name": True})
    reject_flags_with_config(flags)
    if "config" not in flags:
        fail("error: the lab's kubeadm stand-in expects --config")
    docs = load_config(flags["config"])
    init = docs.get("InitConfiguration", {})
    cluster = docs.get("ClusterConfiguration")
    if cluster is None:
        fail("error: init needs a ClusterConfiguration")
    registration = init.get("nodeRegistration", {})
    preflight("init", ignore_set(flags, registration), registration.get("criSocket"))
    version = cluster.get("kubernetesVersion", "").lstrip("v")
    if minor(version) != minor(VERSION) or parse_version(version) > parse_version(VERSION):
        fail(f"error: this version of kubeadm only supports deploying clusters with the control plane version "
             f">= 1.{minor(VERSION) - 1}.0. Current version: v{version} (kubeadm is v{VERSION})")
    if cluster.get("etcd", {}).get("external"):
        external = cluster["etcd"]["external"]
        for key in ("caFile", "certFile", "keyFile"):
            if not Path(external[key]).exists():
                fail(f"error: [preflight] external etcd {key} {external[key]} does not exist")
    name = registration.get("name", HOST)
    endpoint = cluster.get("controlPlaneEndpoint") or init.get("localAPIEndpoint", {}).get("advertiseAddress")
    make_ca(PKI, "ca", "kubernetes")
    make_ca(PKI, "front-proxy-ca", "front-proxy-ca")
    make_cert(PKI, "ca", PKI / "apiserver", "kube-apiserver", list(cluster.get("apiServer", {}).get("certSANs", [])) + [HOST])
    stacked = not cluster.get("etcd", {}).get("external")
    if stacked:
        # The stacked member's certificates (cmd/kubeadm/app/phases/certs/certlist.go GetDefaultCertList, names
        # from util/pkiutil/pki_helpers.go getAltNames, @v1.36.4): what the real etcd and etcdctl use in the lab.
        make_ca(PKI / "etcd", "ca", "etcd-ca")
        advertise = init.get("localAPIEndpoint", {}).get("advertiseAddress")
        member_names = [n for n in (name, "localhost", advertise, "127.0.0.1") if n]
        make_cert(PKI / "etcd", "ca", PKI / "etcd" / "server", name, member_names)
        make_cert(PKI / "etcd", "ca", PKI / "etcd" / "peer", name, member_names)
        make_cert(PKI / "etcd", "ca", PKI / "etcd" / "healthcheck-client", "kube-etcd-healthcheck-client")
        make_cert(PKI / "etcd", "ca", PKI / "apiserver-etcd-client", "kube-apiserver-etcd-client")
    for conf, user in (("admin.conf", "kubernetes-admin"), ("super-admin.conf", "kubernetes-super-admin"),
                       ("kubelet.conf", f"system:node:{name}"), ("controller-manager.conf", "controller-manager"),
                       ("scheduler.conf", "scheduler")):
        kubeconfig(K8S / conf, f"https://{endpoint}", user)
    image_repository = cluster.get("imageRepository", "registry.k8s.io")
    protect = docs.get("KubeletConfiguration", {}).get("protectKernelDefaults", False)
    check_kernel_defaults(protect)
    check_api_server_files(cluster.get("apiServer", {}))
    write_control_plane_manifests(image_repository, version, stacked)
    with journal() as j:
        j["cluster"] = {"name": cluster.get("clusterName", "kubernetes"), "endpoint": endpoint, "version": version,
                        "imageRepository": image_repository, "caHash": ca_hash(PKI / "ca.crt"),
                        "stackedEtcd": stacked, "init": name,
                        "networking": cluster.get("networking", {}),
                        "apiServer": cluster.get("apiServer", {}), "protectKernelDefaults": protect,
                        "serverTLSBootstrap": docs.get("KubeletConfiguration", {}).get("serverTLSBootstrap", False),
                        "pki": {p: (PKI / p).read_text() for p in ("ca.crt", "ca.key", "front-proxy-ca.crt",
                                                                    "front-proxy-ca.key")}}
        if stacked:
            j["cluster"]["pki"].update({f"etcd/{p}": (PKI / "etcd" / p).read_text() for p in ("ca.crt", "ca.key")})
        j["nodes"][name] = {"role": "control-plane", "kubelet": VERSION, "controlPlane": version, "host": HOST,
                            "labels": {}, "taints": [f"{t['key']}={t.get('value', '')}:{t['effect']}"
                                                     for t in registration.get("taints", [])],
                            "unschedulable": False, "criSocket": registration.get("criSocket")}
        request_serving_certificate(j, name, registration)
        if stacked:
            j["etcd"].append({"id": secrets.token_hex(8), "name": name})
        # An empty bootstrapTokens list is defaulted to one token (v1beta4 defaults.go SetDefaults_BootstrapTokens).
        for token in init.get("bootstrapTokens") or [{}]:
            add_token(j, token.get("token") or new_token(), duration_seconds(token.get("ttl", "24h0m0s"), "ttl"),
                      token.get("description", ""), token.get("usages") or DEFAULT_TOKEN_USAGES,
                      token.get("groups") or DEFAULT_TOKEN_GROUPS)
        if "upload-certs" in flags:
            j["certificateKeys"][secrets.token_hex(32)] = now() + 7200
            add_kubeadm_certs_owner(j)
            j["uploadedEtcdCerts"] = uploaded_etcd_set(cluster)
            j["uploadedExternalEtcd"] = uploaded_external_etcd_files(cluster)
    set_kubelet_running(True)
    print("[init] Using Kubernetes version: v" + version)
    print("Your Kubernetes control-plane has initialized successfully!")
    if "skip-token-print" not in flags:
        print("kubeadm join ... --token <printed>")


def kubeadm_init_phase(argv: list[str]) -> None:
    if not argv:
        fail("error: missing phase")
    if argv[0] == "upload-certs":
        flags, _ = parse_flags(argv[1:], {"upload-certs": False, "certificate-key": True, "config": True,
                                          "kubeconfig": True, "skip-certificate-key-print": False, "v": True})
        if "upload-certs" not in flags:
            fail("error: to upload certificates use --upload-certs")
        reject_flags_with_config(flags)
        cluster_config = None
        if "config" in flags:
            cluster_config = load_config(flags["config"]).get("ClusterConfiguration", {})
            version = cluster_config.get("kubernetesVersion", "")
            if not version:
                fail("error: the lab has no internet: kubernetesVersion unset, so kubeadm would look up "
                     "stable-1 online (v1beta4 defaults.go DefaultKubernetesVersion)")
            if minor(version) < minor(VERSION) - 1 or parse_version(version) > parse_version(VERSION):
                fail(f"error: this version of kubeadm only supports deploying clusters with the control plane "
                     f"version >= 1.{minor(VERSION) - 1}.0. Current version: {version}")
        else:
            # kubeadm's defaults: kubernetesVersion stable-1, looked up online (util/config/common.go).
            print("W could not fetch a Kubernetes version from the internet: unable to get URL "
                  "\"https://dl.k8s.io/release/stable-1.txt\"", file=sys.stderr)
        if not (K8S / "admin.conf").exists():
            fail("error: open /etc/kubernetes/admin.conf: no such file or directory")
        key = flags.get("certificate-key") or secrets.token_hex(32)
        if not re.match(r"^[0-9a-f]{64}$", key):
            fail("error: certificate key must be 64 hex characters")
        with journal() as j:
            if "cluster" not in j:
                fail("error: the cluster is not initialized")
            j["certificateKeys"][key] = now() + 7200
            add_kubeadm_certs_owner(j)
            j["uploadedEtcdCerts"] = uploaded_etcd_set(cluster_config)
            j["uploadedExternalEtcd"] = uploaded_external_etcd_files(cluster_config)
        print('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        if "skip-certificate-key-print" not in flags:
            print("[upload-certs] Using certificate key:")
            print(key)
        return
    if argv[0] == "certs":
        return kubeadm_phase_certs(argv[1:])
    if argv[0] == "etcd" and argv[1:2] == ["local"]:
        return kubeadm_phase_etcd_local(argv[2:])
    fail(f"error: unknown phase {argv[0]!r} for the lab's stand-in")


def etcd_local_config(flags: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = load_config(flags["config"])
    cluster = docs.get("ClusterConfiguration", {})
    return docs.get("InitConfiguration", {}), cluster.get("etcd", {}).get("local", {})


def kubeadm_phase_certs(argv: list[str]) -> None:
    if not argv:
        fail("error: missing certificate name")
    flags, _ = parse_flags(argv[1:], {"config": True, "cert-dir": True, "v": True})
    which = argv[0]
    init, local = etcd_local_config(flags) if "config" in flags else ({}, {})
    # The CA is read from and the files written under the config's certificatesDir (default
    # /etc/kubernetes/pki): cmd/kubeadm/app/phases/certs/certs.go@v1.36.4 CreateCertAndKeyFilesWithCA.
    pki = Path(load_config(flags["config"]).get("ClusterConfiguration", {}).get("certificatesDir", PKI)) \
        if "config" in flags else PKI
    etcd_dir = pki / "etcd"
    if which == "etcd-ca":
        make_ca(etcd_dir, "ca", "etcd-ca")
    elif which in ("etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client"):
        if not (etcd_dir / "ca.key").exists():
            fail(f"error: couldn't load CA certificate etcd-ca: open {etcd_dir}/ca.crt: no such file or directory")
        name = which.removeprefix("etcd-")
        sans = {"server": local.get("serverCertSANs", []), "peer": local.get("peerCertSANs", [])}.get(name, [])
        target = pki / "apiserver-etcd-client" if which == "apiserver-etcd-client" else etcd_dir / name
        make_cert(etcd_dir, "ca", target, init.get("nodeRegistration", {}).get("name", HOST), [*sans, "127.0.0.1", HOST])
    else:
        fail(f"error: unknown certificate {which!r}")
    print(f"[certs] Generating \"{which}\" certificate and key")


def kubeadm_phase_etcd_local(argv: list[str]) -> None:
    flags, _ = parse_flags(argv, {"config": True, "v": True})
    init, local = etcd_local_config(flags)
    args = {a["name"]: a["value"] for a in local.get("extraArgs", [])}
    for required in ("name", "initial-cluster", "listen-client-urls"):
        if required not in args:
            fail(f"error: etcd extraArgs lacks {required}")
    for cert in ("server", "peer", "healthcheck-client"):
        if not (PKI / "etcd" / f"{cert}.crt").exists():
            fail(f"error: etcd {cert} certificate missing")
    if not kubelet_running():
        fail("error: the kubelet is not running: the etcd static pod would never start")
    MANIFESTS.mkdir(parents=True, exist_ok=True)
    (MANIFESTS / "etcd.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                                                         "metadata": {"name": "etcd", "namespace": "kube-system"},
                                                         "spec": {"containers": [{"name": "etcd", "command": [
                                                             "etcd", *[f"--{k}={v}" for k, v in args.items()]]}]}}))
    with journal() as j:
        j["externalEtcd"][args["name"]] = {"host": HOST, "clientURL": args["listen-client-urls"],
                                          "initialCluster": args["initial-cluster"]}
    start_etcd_health_server(args["listen-client-urls"])
    print("[etcd] Creating static Pod manifest for local etcd in \"/etc/kubernetes/manifests\"")


def start_etcd_metrics_server() -> None:
    """A stacked member's metrics listener, where kubeadm's probes ask /readyz (--listen-metrics-urls
    http://127.0.0.1:2381, cmd/kubeadm/app/phases/etcd/local.go@v1.36.4): ready while the kubelet runs
    the etcd static pod, i.e. while its manifest is in place. Started once; reset ends it."""
    code = f"""
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path in ("/readyz", "/livez") and os.path.exists("{MANIFESTS}/etcd.yaml")
        self.send_response(200 if ok else 503); self.end_headers(); self.wfile.write(b"ok" if ok else b"")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", 2381), H).serve_forever()
"""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 2381)) == 0:
            return
    subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def start_etcd_health_server(url: str) -> None:
    """The etcd static pod's client port: TLS with client certificates, answering /health."""
    host, port = url.removeprefix("https://").split(":")
    code = f"""
import http.server, os, ssl
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        # Healthy while the kubelet runs the etcd static pod, i.e. while its manifest is in place.
        ok = self.path == "/health" and os.path.exists("{MANIFESTS}/etcd.yaml")
        self.send_response(200 if ok else 503); self.end_headers()
        self.wfile.write(b'{{"health":"true","reason":""}}' if ok else b"")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("{host}", {port}), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain("{PKI}/etcd/server.crt", "{PKI}/etcd/server.key")
c.load_verify_locations("{PKI}/etcd/ca.crt"); c.verify_mode = ssl.CERT_REQUIRED
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"""
    subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def kubeadm_join(argv: list[str]) -> None:
    flags, args = parse_flags(argv, {"config": True, "ignore-preflight-errors": True, "v": True, "token": True,
                                     "discovery-token-ca-cert-hash": True, "control-plane": False,
                                     "certificate-key": True, "node-name": True, "dry-run": False}, (0, 1))
    reject_flags_with_config(flags)
    if "config" not in flags:
        fail("error: the lab's kubeadm stand-in expects --config")
    docs = load_config(flags["config"])
    join = docs.get("JoinConfiguration")
    if join is None:
        fail("error: join needs a JoinConfiguration")
    registration = join.get("nodeRegistration", {})
    discovery = join.get("discovery", {}).get("bootstrapToken", {})
    preflight("join", ignore_set(flags, registration), registration.get("criSocket"))
    name = registration.get("name", HOST)
    control_plane = "controlPlane" in join
    with journal() as j:
        cluster = j.get("cluster")
        if cluster is None:
            fail("error execution phase preflight: couldn't validate the identity of the API Server: "
                 "connection refused")
        token = discovery.get("token", "")
        expiry = j["tokens"].get(token)
        if expiry is None or expiry < now():
            fail("error execution phase preflight: couldn't validate the identity of the API Server: "
                 "could not find a JWS signature in the cluster-info ConfigMap for token ID "
                 f"\"{token.split('.')[0]}\"")
        if cluster["caHash"] not in discovery.get("caCertHashes", []):
            fail("error execution phase preflight: couldn't validate the identity of the API Server: "
                 "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys match")
        if discovery.get("apiServerEndpoint") != cluster["endpoint"]:
            fail(f"error: discovery endpoint {discovery.get('apiServerEndpoint')} is not the cluster's "
                 f"controlPlaneEndpoint {cluster['endpoint']}")
        if minor(VERSION) != minor(cluster["version"]):
            fail(f"error execution phase preflight: kubeadm v{VERSION} cannot join a v{cluster['version']} "
                 "cluster: the kubeadm used for join must match the cluster's version")
        # A joining node gets the cluster's kubelet config and, on a control plane, its API server flags.
        check_kernel_defaults(cluster.get("protectKernelDefaults", False))
        if control_plane:
            check_api_server_files(cluster.get("apiServer", {}))
        if control_plane:
            key = join["controlPlane"].get("certificateKey", "")
            key_expiry = j["certificateKeys"].get(key)
            if key_expiry is None or key_expiry < now():
                fail('error execution phase control-plane-prepare/download-certs: error downloading certs: '
                     'error downloading the secret: Secret "kubeadm-certs" was not found in the "kube-system" '
                     'Namespace. This Secret might have expired. Please, run `kubeadm init phase upload-certs '
                     '--upload-certs` on a control plane to generate a new one')
            # The joiner's certsToTransfer comes from the cluster's config (copycerts.go DownloadCerts).
            needed = "local" if cluster["stackedEtcd"] else "external"
            if j.get("uploadedEtcdCerts", needed) != needed:
                missing = ("etcd/ca.crt", "etcd/ca.crt") if needed == "local" else ("external-etcd-ca.crt", "etcd/ca.crt")
                fail("error execution phase control-plane-prepare/download-certs: error downloading certs: the Secret "
                     f"does not include the required certificate or key - name: {missing[0]}, "
                     f"path: /etc/kubernetes/pki/{missing[1]}")
        pki = cluster["pki"]
        external_etcd_files = j.get("uploadedExternalEtcd", {}) if control_plane else {}
        j["nodes"][name] = {"role": "control-plane" if control_plane else "worker", "kubelet": VERSION,
                            "controlPlane": cluster["version"] if control_plane else None, "host": HOST,
                            "labels": {}, "taints": [f"{t['key']}={t.get('value', '')}:{t['effect']}"
                                                     for t in registration.get("taints", [])],
                            "unschedulable": False, "criSocket": registration.get("criSocket")}
        request_serving_certificate(j, name, registration)
        if control_plane and cluster["stackedEtcd"]:
            j["etcd"] = [m for m in j["etcd"] if m["name"] != name] + [{"id": secrets.token_hex(8), "name": name}]
        endpoint, image_repository, version, stacked = (cluster["endpoint"], cluster["imageRepository"],
                                                        cluster["version"], cluster["stackedEtcd"])
    PKI.mkdir(parents=True, exist_ok=True)
    (PKI / "ca.crt").write_text(pki["ca.crt"])
    if control_plane:
        for path, content in pki.items():
            (PKI / path).parent.mkdir(parents=True, exist_ok=True)
            (PKI / path).write_text(content)
        for path, content in external_etcd_files.items():
            if content:  # copycerts.go DownloadCerts skips what was uploaded empty
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(content)
        kubeconfig(K8S / "admin.conf", f"https://{endpoint}", "kubernetes-admin")
        write_control_plane_manifests(image_repository, version, stacked)
    kubeconfig(K8S / "kubelet.conf", f"https://{endpoint}", f"system:node:{name}")
    set_kubelet_running(True)
    print("This node has joined the cluster" + (" and a new control plane instance was created" if control_plane else ""))


# Bootstrap tokens as kubeadm keeps them, a Secret bootstrap-token-<id> each with a description, usages
# and groups (cmd/kubeadm/app/apis/bootstraptoken/v1/defaults.go, utils.go @v1.36.4): the lab keeps the
# expiry in j["tokens"], the rest in j["tokenInfo"], and what was deleted in j["deletedTokens"] (for the
# secrets scan).
DEFAULT_TOKEN_USAGES = ["signing", "authentication"]  # bootstrapapi.KnownTokenUsages
DEFAULT_TOKEN_GROUPS = ["system:bootstrappers:kubeadm:default-node-token"]


def new_token() -> str:
    return secrets.token_hex(3) + "." + secrets.token_hex(8)


def duration_seconds(value: str, flag: str) -> int:
    match = re.match(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$", value)
    if not match or not value:
        fail(f'error: invalid argument "{value}" for "--{flag}" flag: time: invalid duration "{value}"')
    return int(match.group(1) or 0) * 3600 + int(match.group(2) or 0) * 60 + int(match.group(3) or 0)


def add_token(j: dict[str, Any], token: str, seconds: int, description: str, usages: list[str],
              groups: list[str]) -> None:
    j["tokens"][token] = now() + seconds if seconds else now() + 10 ** 9  # a TTL of 0 never expires
    j.setdefault("tokenInfo", {})[token] = {"description": description, "usages": usages, "groups": groups}


def add_kubeadm_certs_owner(j: dict[str, Any]) -> None:
    """Each upload makes a 2 h token without usages, the kubeadm-certs Secret's owner, which the garbage
    collector deletes the Secret with (phases/copycerts/copycerts.go createShortLivedBootstrapToken,
    @v1.36.4; the lab does not imitate that collection)."""
    add_token(j, new_token(), 7200, "Proxy for managing TTL for the kubeadm-certs secret", [], [])


def tabwriter_lines(rows: list[list[str]]) -> list[str]:
    """Rows as Go's text/tabwriter aligns them with minwidth 10, padding 3, ' ' (token.go tokenTextPrinter)."""
    widths = [max(10, max(len(row[i]) for row in rows) + 3) for i in range(len(rows[0]) - 1)]
    return ["".join(cell.ljust(width) for cell, width in zip(row, widths)) + row[-1] for row in rows]


def short_human_duration(seconds: float) -> str:
    """k8s.io/apimachinery pkg/util/duration ShortHumanDuration."""
    if seconds < -1:
        return "<invalid>"
    for unit, size, limit in (("s", 1, 60), ("m", 60, 3600), ("h", 3600, 86400), ("d", 86400, 86400 * 365)):
        if seconds < limit:
            return f"{max(0, int(seconds // size))}{unit}"
    return f"{int(seconds // (86400 * 365))}y"


def kubeadm_token(argv: list[str]) -> None:
    if not argv or argv[0] not in ("create", "list", "delete"):
        fail("error: the lab's stand-in supports token create, list and delete")
    flags, args = parse_flags(argv[1:], {"ttl": True, "description": True, "print-join-command": False,
                                         "certificate-key": True, "kubeconfig": True, "v": True, "usages": True,
                                         "groups": True}, (0, 1) if argv[0] != "delete" else (0, 100))
    if not (K8S / "admin.conf").exists():
        fail("error: failed to load admin kubeconfig: open /etc/kubernetes/admin.conf: no such file or directory")
    if argv[0] == "list":
        # cmd/kubeadm/app/cmd/token.go RunListTokens, formatBootstrapToken @v1.36.4: the full token, a header
        # printed with the first token, each token through its own tabwriter.
        with journal() as j:
            for i, (token, expiry) in enumerate(j["tokens"].items()):
                info = j.get("tokenInfo", {}).get(token, {"description": "", "usages": DEFAULT_TOKEN_USAGES,
                                                          "groups": DEFAULT_TOKEN_GROUPS})
                cells = [token, f"{short_human_duration(expiry - now()):<9}",
                         datetime.datetime.fromtimestamp(expiry, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         f"{','.join(info['usages']) or '<none>':<22}", f"{info['description'] or '<none>':<56}",
                         ",".join(info["groups"]) or "<none>"]
                header = ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"]
                print("\n".join(tabwriter_lines([header, cells] if i == 0 else [cells])))
        return
    if argv[0] == "delete":
        # token.go RunDeleteTokens: a token ID or a whole token; a missing one is an error.
        if not args:
            fail('missing argument; \'token delete\' is missing token of form "[a-z0-9]{6}.[a-z0-9]{16}" '
                 'or "[a-z0-9]{6}"')
        with journal() as j:
            for value in args:
                if not re.match(r"^[a-z0-9]{6}(\.[a-z0-9]{16})?$", value):
                    fail('given token didn\'t match pattern "[a-z0-9]{6}.[a-z0-9]{16}" or "[a-z0-9]{6}"')
                token_id = value.split(".")[0]
                found = [t for t in j["tokens"] if t.split(".")[0] == token_id]
                if not found:
                    fail(f'failed to delete bootstrap token "{token_id}": secrets "bootstrap-token-{token_id}" '
                         "not found")
                for token in found:
                    del j["tokens"][token]
                    j.setdefault("tokenInfo", {}).pop(token, None)
                    j.setdefault("deletedTokens", []).append(token)
                print(f'bootstrap token "{token_id}" deleted')
        return
    seconds = duration_seconds(flags.get("ttl", "24h0m0s"), "ttl")
    token = args[0] if args else new_token()
    with journal() as j:
        add_token(j, token, seconds, flags.get("description", ""),
                  flags["usages"].split(",") if "usages" in flags else DEFAULT_TOKEN_USAGES,
                  flags["groups"].split(",") if "groups" in flags else DEFAULT_TOKEN_GROUPS)
    print(token)


def kubeadm_certs(argv: list[str]) -> None:
    if argv[:1] == ["certificate-key"]:
        parse_flags(argv[1:], {"v": True})
        print(secrets.token_hex(32))
    elif argv[:1] == ["check-expiration"]:
        flags, _ = parse_flags(argv[1:], {"output": True, "o": True, "config": True, "cert-dir": True,
                                          "kubeconfig": True, "v": True})
        output = flags.get("output", flags.get("o", "text"))
        if not (K8S / "admin.conf").exists():
            # An external etcd member: kubeadm reads the member's config (local etcd) and reports every
            # certificate of that list, the ones it does not find as missing (cmd/kubeadm/app/cmd/certs.go
            # @v1.36.4 fetchCertificateExpirationInfo).
            if "config" not in flags or not load_config(flags["config"]).get("ClusterConfiguration", {}) \
                    .get("etcd", {}).get("local") is not None:
                fail("error: no admin.conf and no --config with local etcd: nothing to check on this node")
            return print_expiry(output, ETCD_MEMBER_CERTS)
        renewed = float((STATE / "certs-renewed").read_text()) if (STATE / "certs-renewed").exists() else None
        base = renewed or (K8S / "admin.conf").stat().st_mtime
        expires = datetime.datetime.fromtimestamp(base + 365 * 86400, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        names = ["admin.conf", "apiserver", "controller-manager.conf", "scheduler.conf", "super-admin.conf"]
        print_expiry(output, [(n, "ca", expires) for n in names], [("ca", expires)])
    elif argv[:1] == ["renew"] and argv[1:2] != ["all"]:
        # One certificate, signed again by its CA with the same subject and names (renewal/manager.go).
        flags, args = parse_flags(argv[1:], {"config": True, "cert-dir": True, "kubeconfig": True, "v": True}, 1)
        files = {"etcd-server": PKI / "etcd" / "server", "etcd-peer": PKI / "etcd" / "peer",
                 "etcd-healthcheck-client": PKI / "etcd" / "healthcheck-client",
                 "apiserver-etcd-client": PKI / "apiserver-etcd-client"}
        if args[0] not in files:
            fail(f"error: the lab's stand-in renews one certificate only for {sorted(files)}")
        target = files[args[0]]
        if not target.with_suffix(".crt").exists():
            print(f"MISSING! certificate {args[0]}")
            return
        if not (PKI / "etcd" / "ca.key").exists():
            fail(f"error: failed to renew certificate {args[0]}: the CA key etcd/ca.key is missing")
        subject = openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", str(target.with_suffix(".crt")))
        sans = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(target.with_suffix(".crt")))
        names = [n.strip().split(":", 1)[1] for n in sans.splitlines()[1].split(",")] if "\n" in sans.strip() else []
        make_cert(PKI / "etcd", "ca", target, subject.strip().removeprefix("subject=").removeprefix("CN="), names)
        print(f"certificate {args[0]} renewed")
    elif argv[:2] == ["renew", "all"]:
        parse_flags(argv[2:], {"config": True, "cert-dir": True, "kubeconfig": True, "v": True})
        if not (K8S / "admin.conf").exists():
            fail("error: [renew] no control-plane certificates on this node")
        STATE.mkdir(parents=True, exist_ok=True)
        (STATE / "certs-renewed").write_text(str(now()))
        print("Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, "
              "kube-scheduler and etcd, so that they can use the new certificates.")
    else:
        fail("error: unknown certs command for the lab's stand-in")


# The certificates a member's config (local etcd) lists, with their CA (certs/certlist.go@v1.36.4).
ETCD_MEMBER_CERTS = [("etcd-server", "etcd-ca", PKI / "etcd" / "server.crt"),
                     ("etcd-peer", "etcd-ca", PKI / "etcd" / "peer.crt"),
                     ("etcd-healthcheck-client", "etcd-ca", PKI / "etcd" / "healthcheck-client.crt"),
                     ("apiserver-etcd-client", "etcd-ca", PKI / "apiserver-etcd-client.crt"),
                     ("apiserver", "ca", PKI / "apiserver.crt")]


def not_after(cert: Path) -> str:
    end = openssl("x509", "-noout", "-enddate", "-in", str(cert)).strip().removeprefix("notAfter=")
    return datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").strftime("%Y-%m-%dT%H:%M:%SZ")


def print_expiry(output: str, certs: list[tuple[str, str, Any]], cas: list[tuple[str, str]] | None = None) -> None:
    """kubeadm's report; `certs` are (name, CA, expiry or certificate file). JSON field names of
    cmd/kubeadm/app/apis/output/v1alpha3/types.go@v1.36.4 Certificate: caName, missing."""
    def entry(name: str, ca: str | None, when: Any) -> dict[str, Any]:
        missing = isinstance(when, Path) and not when.exists()
        expires = "0001-01-01T00:00:00Z" if missing else not_after(when) if isinstance(when, Path) else when
        return {"name": name, "expirationDate": expires, "residualTime": 0, "externallyManaged": False,
                **({"caName": ca} if ca and not missing else {}), "missing": missing}
    if cas is None:  # an etcd member: its CA from the file
        cas = [("etcd-ca", PKI / "etcd" / "ca.crt"), ("ca", PKI / "ca.crt")]
    report = {"kind": "CertificateExpirationInfo", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
              "certificates": [entry(n, ca, w) for n, ca, w in certs],
              "certificateAuthorities": [entry(n, None, w) for n, w in cas]}
    if output == "json":
        print(json.dumps(report))
    elif output == "text":
        print("CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY")
        for c in report["certificates"]:
            print(f"{c['name']:<26} {c['expirationDate']:<24} 364d            {c.get('caName', '')}")
    else:
        fail(f"error: output format {output!r} is not supported by the stand-in")


def control_plane_version_here() -> str | None:
    manifest = MANIFESTS / "kube-apiserver.yaml"
    if not manifest.exists():
        return None
    image = yaml.safe_load(manifest.read_text())["spec"]["containers"][0]["image"]
    return image.rsplit(":v", 1)[1]


def kubeadm_upgrade(argv: list[str]) -> None:
    if not argv:
        fail("error: missing upgrade command")
    command = argv[0]
    if command == "plan":
        flags, args = parse_flags(argv[1:], {"config": True, "v": True, "ignore-preflight-errors": True}, (0, 1))
        with journal() as j:
            current = j["cluster"]["version"]
        target = (args[0] if args else f"v{VERSION}").lstrip("v")
        print(f"[upgrade/versions] Cluster version: v{current}\n[upgrade/versions] kubeadm version: v{VERSION}\n"
              f"[upgrade/versions] Target version: v{target}")
        return
    if command == "apply":
        flags, args = parse_flags(argv[1:], {"yes": False, "y": False, "config": True, "v": True, "force": False,
                                             "certificate-renewal": True, "etcd-upgrade": True,
                                             "ignore-preflight-errors": True}, (0, 1))
        if not args:
            fail("error: missing version argument")
        if not (flags.get("yes") or flags.get("y") or flags.get("force")):
            fail("error: upgrade apply asks for confirmation; the lab has no terminal (use -y)")
        target = args[0].lstrip("v")
        with journal() as j:
            current = j["cluster"]["version"]
            cur, tgt = parse_version(current), parse_version(target)
            if tgt < cur:
                fail(f"error: [upgrade/version] FATAL: the --version argument is invalid due to these fatal errors:\n"
                     f"\t- Specified version to upgrade to \"v{target}\" is lower than the cluster version "
                     f"\"v{current}\". Downgrades are not supported yet")
            if tgt[1] > cur[1] + 1:
                fail(f"error: [upgrade/version] FATAL: the --version argument is invalid due to these fatal errors:\n"
                     f"\t- Specified version to upgrade to \"v{target}\" is too high; kubeadm can upgrade only 1 "
                     f"minor version at a time")
            if target != VERSION:
                fail(f"error: [upgrade/version] FATAL: the --version argument is invalid: Specified version to "
                     f"upgrade to \"v{target}\" is higher than the kubeadm version \"v{VERSION}\"")
            j["cluster"]["version"] = target
            node = next(n for n, v in j["nodes"].items() if v["host"] == HOST)
            j["nodes"][node]["controlPlane"] = target
            image_repository, stacked = j["cluster"]["imageRepository"], j["cluster"]["stackedEtcd"]
        write_control_plane_manifests(image_repository, target, stacked)
        print(f'[upgrade/successful] SUCCESS! Your cluster was upgraded to "v{target}". Enjoy!')
        return
    if command == "node":
        parse_flags(argv[1:], {"v": True, "certificate-renewal": True, "etcd-upgrade": True, "config": True,
                               "ignore-preflight-errors": True, "skip-phases": True})
        with journal() as j:
            version = j["cluster"]["version"]
            if minor(VERSION) != minor(version):
                fail(f"error: kubeadm v{VERSION} cannot upgrade a node of a v{version} cluster")
            node = next(n for n, v in j["nodes"].items() if v["host"] == HOST)
            if j["nodes"][node]["role"] == "control-plane":
                j["nodes"][node]["controlPlane"] = version
            image_repository, stacked = j["cluster"]["imageRepository"], j["cluster"]["stackedEtcd"]
        if (MANIFESTS / "kube-apiserver.yaml").exists():
            write_control_plane_manifests(image_repository, version, stacked)
        print("[upgrade] The configuration for this node was successfully upgraded!")
        return
    fail(f"error: unknown upgrade command {command!r}")


def kubeadm_reset(argv: list[str]) -> None:
    flags, _ = parse_flags(argv, {"force": False, "f": False, "v": True, "cleanup-tmp-dir": False,
                                  "cri-socket": True, "ignore-preflight-errors": True, "config": True})
    if not (flags.get("force") or flags.get("f")):
        fail("error: reset asks for confirmation; the lab has no terminal (use -f)")
    if "cri-socket" in flags:
        cri_socket_path(flags["cri-socket"])
    else:
        detect_cri_socket()
    with journal() as j:
        names = [n for n, v in j["nodes"].items() if v["host"] == HOST]
        for name in names:
            if j["nodes"][name]["role"] == "control-plane":
                before = len(j["etcd"])
                j["etcd"] = [m for m in j["etcd"] if m["name"] != name]
                if len(j["etcd"]) != before:
                    print(f"[reset] Removing member {name} from the etcd cluster")
            del j["nodes"][name]
        for name, member in list(j["externalEtcd"].items()):
            if member["host"] == HOST:
                del j["externalEtcd"][name]
        if j.get("cluster", {}).get("init") in names:
            j.pop("cluster")
            j["tokens"], j["certificateKeys"] = {}, {}
    subprocess.run(["pkill", "-f", "ThreadingHTTPServer"], capture_output=True)
    for path in (K8S / "manifests", PKI, Path("/var/lib/etcd"), Path("/var/lib/kubelet")):
        subprocess.run(["rm", "-rf", str(path)], check=True)
    for conf in K8S.glob("*.conf"):
        conf.unlink()
    set_kubelet_running(False)
    print("[reset] Stopping the kubelet service\n[reset] Deleting contents of directories: "
          "[/etc/kubernetes/manifests /var/lib/kubelet /etc/kubernetes/pki]\n\n"
          "The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d\n\n"
          "The reset process does not reset or clean up iptables rules or IPVS tables.")


def kubeadm(argv: list[str]) -> None:
    if not argv:
        fail("Usage: kubeadm [command]")
    command, rest = argv[0], argv[1:]
    if command == "version":
        flags, _ = parse_flags(rest, {"output": True, "o": True})
        out = flags.get("output", flags.get("o", ""))
        print(f"v{VERSION}" if out == "short" else f'kubeadm version: &version.Info{{GitVersion:"v{VERSION}"}}')
    elif command == "config" and rest[:2] == ["images", "list"]:
        flags, _ = parse_flags(rest[2:], {"kubernetes-version": True, "image-repository": True, "config": True})
        repo = flags.get("image-repository", "registry.k8s.io")
        version = flags.get("kubernetes-version", f"v{VERSION}")
        for image in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
            print(f"{repo}/{image}:{version}")
        print(f"{repo}/coredns:v1.13.1\n{repo}/pause:3.10.1\n{repo}/etcd:3.6.6-0")
    elif command == "init":
        kubeadm_init(rest)
    elif command == "join":
        kubeadm_join(rest)
    elif command == "token":
        kubeadm_token(rest)
    elif command == "certs":
        kubeadm_certs(rest)
    elif command == "upgrade":
        kubeadm_upgrade(rest)
    elif command == "reset":
        kubeadm_reset(rest)
    else:
        fail(f'Error: unknown command "{command}" for "kubeadm"')


# ---------------------------------------------------------------------------------------------
# kubelet, systemctl, containerd, crictl
# ---------------------------------------------------------------------------------------------

def unit_enabled(unit: str) -> bool:
    return (STATE / "units" / f"{unit}.enabled").exists()


def kubelet_running() -> bool:
    return (STATE / "units" / "kubelet.active").exists()


def set_kubelet_running(running: bool) -> None:
    (STATE / "units").mkdir(parents=True, exist_ok=True)
    marker = STATE / "units" / "kubelet.active"
    if running:
        marker.touch()
    elif marker.exists():
        marker.unlink()


def kubelet(argv: list[str]) -> None:
    flags, _ = parse_flags(argv, {"version": False, "config": True, "kubeconfig": True,
                                  "bootstrap-kubeconfig": True})
    if flags.get("version"):
        print(f"Kubernetes v{VERSION}")
    else:
        fail("error: the lab's kubelet stand-in only answers --version; systemctl starts it")


def installed_version(tool: str) -> str | None:
    result = subprocess.run([tool, "--version"], capture_output=True, text=True)
    match = re.search(r"v(\d+\.\d+\.\d+)", result.stdout)
    return match.group(1) if match else None


# What systemd 252 (Debian bookworm) does when a Type=oneshot service installed in /etc/systemd/system starts
# (`systemctl start`, or its timer elapsing: systemd.timer(5) Unit= defaults to the service of the same name),
# per its man pages: systemd.service(5) "Type=" (oneshot: the unit is up once the main process exits; without
# RemainAfterExit= it never enters "active") and "COMMAND LINES" (ExecStart= is unquoted per systemd.syntax(7),
# not run by a shell); systemd.exec(5) "$PATH" (fixed /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin on a
# merged /usr), "WorkingDirectory=" (the root directory), "StandardInput=" (null), "StandardOutput=" (the
# journal); systemctl(1) exits non-zero when the start job fails, printing "Job for UNIT failed because the
# control process exited with error code." Not imitated: specifiers, $VAR expansion and "-"/"@" prefixes in
# ExecStart=, Nice=, IOSchedulingClass=, User=, sandboxing. The journal is STATE/units/UNIT.journal.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"


def oneshot_exec_start(unit: str) -> list[str] | None:
    """ExecStart= of /etc/systemd/system/UNIT.service if it is Type=oneshot (one command line only)."""
    path = Path("/etc/systemd/system") / f"{unit}.service"
    if not path.is_file():
        return None
    section, service = "", {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            service[key.strip()] = value.strip()
    if service.get("Type") != "oneshot" or not service.get("ExecStart"):
        return None
    return shlex.split(service["ExecStart"])


def run_oneshot(unit: str, command: list[str]) -> None:
    with (STATE / "units" / f"{unit}.journal").open("a") as journal_file:
        done = subprocess.run(command, cwd="/", env={"PATH": SYSTEMD_PATH}, stdin=subprocess.DEVNULL,
                              stdout=journal_file, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        fail(f"Job for {unit}.service failed because the control process exited with error code.\n"
             f"See \"systemctl status {unit}.service\" and \"journalctl -xeu {unit}.service\" for details.")


# Long-running services: a unit whose UNIT.service is installed (and not Type=oneshot) runs as systemd 252 runs
# it, per systemd.unit(5) "Drop-in" (UNIT.service.d/*.conf of every unit directory, applied in file-name order,
# a name in /etc hiding the same name in /usr/lib; an empty assignment resets a list setting such as
# ExecStart=), systemd.exec(5) "Environment=" (space-separated, quoted assignments) and "EnvironmentFile="
# (KEY=VALUE lines, # and ; comments, "-" = optional; read at each start and overriding Environment=),
# systemd.service(5) "COMMAND LINES" ("$VAR" as a word of its own splits at whitespace into zero or more words,
# "${VAR}" is replaced as it is; a "-" prefix ignores the exit status), "Restart=" (always, on-failure)
# after "RestartSec=" (default 100ms), "Type=notify" (started once the process sends READY=1 to
# $NOTIFY_SOCKET) and "TimeoutStopSec=" (default 90 s: SIGTERM, then SIGKILL). A supervisor process of its own
# session holds the service (it outlives the SSH session that started it); the main process gets a session of
# its own too, so what it starts in other sessions is not stopped with it. Not imitated: cgroups
# (KillMode=control-group kills only the main process's session), other prefixes, specifiers, User=.
UNIT_DIRS = (Path("/etc/systemd/system"), Path("/run/systemd/system"), Path("/usr/lib/systemd/system"),
             Path("/lib/systemd/system"))


def unit_settings(unit: str) -> dict[str, list[str]] | None:
    """The [Service] settings of an installed UNIT.service with its drop-ins, each key's assignments in order."""
    dirs = list(dict.fromkeys(d.resolve() for d in UNIT_DIRS))  # /lib is /usr/lib on a merged /usr
    main = next((d / f"{unit}.service" for d in dirs if (d / f"{unit}.service").is_file()), None)
    if main is None:
        return None
    dropins: dict[str, Path] = {}
    for directory in reversed(dirs):
        for conf in (directory / f"{unit}.service.d").glob("*.conf"):
            dropins[conf.name] = conf
    settings: dict[str, list[str]] = {}
    for path in [main, *(dropins[name] for name in sorted(dropins))]:
        section = ""
        for line in path.read_text().replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Service" and "=" in line:
                key, value = (part.strip() for part in line.split("=", 1))
                settings[key] = settings.get(key, []) + [value] if value else []
    return settings


def long_running(unit: str) -> dict[str, list[str]] | None:
    settings = unit_settings(unit)
    return settings if settings is not None and settings.get("Type", ["simple"])[-1] != "oneshot" else None


def unit_environment(settings: dict[str, list[str]]) -> dict[str, str]:
    env = {"PATH": SYSTEMD_PATH}
    for value in settings.get("Environment", []):
        env.update(word.split("=", 1) for word in shlex.split(value) if "=" in word)
    for value in settings.get("EnvironmentFile", []):
        path = Path(value.removeprefix("-"))
        if not path.is_file():
            if value.startswith("-"):
                continue
            raise FileNotFoundError(f"Failed to load environment files: {path}: No such file or directory")
        for line in path.read_text().splitlines():
            key, sep, val = line.strip().partition("=")
            if sep and key and key[0] not in "#;":
                val = val.strip()
                env[key.strip()] = val[1:-1] if len(val) > 1 and val[0] == val[-1] and val[0] in "\"'" else val
    return env


def expand_command(line: str, env: dict[str, str]) -> tuple[bool, list[str]]:
    """(ignore failure, argv) of an Exec*= line."""
    words: list[str] = []
    for word in shlex.split(line.removeprefix("-")):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            words.extend(env.get(whole.group(1), "").split())
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    return line.startswith("-"), words


def seconds(value: str) -> float:
    """A systemd time span (systemd.time(5)): "10", "10s", "100ms", "1min 30s"."""
    units = {"": 1, "s": 1, "sec": 1, "ms": 0.001, "m": 60, "min": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)\s*([a-z]*)", value))


def pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid if state not in ("Z", "X") else None


def notified_ready(sock: socket.socket, main: subprocess.Popen) -> bool:
    """Whether MAIN sent READY=1 (sd_notify(3)) before it exited."""
    with sock:
        while main.poll() is None:
            with contextlib.suppress(TimeoutError):
                if b"READY=1" in sock.recv(4096).split(b"\n"):
                    return True
    return False


def supervise(unit: str) -> None:
    """The service's life in systemd: runs in its own session with the journal on stdout/stderr."""
    settings = long_running(unit)
    units_dir = STATE / "units"
    restart, delay = settings.get("Restart", ["no"])[-1], seconds(settings.get("RestartSec", ["100ms"])[-1])
    notify = settings.get("Type", ["simple"])[-1] == "notify"
    stopping, main = False, None

    def on_term(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        if main is not None and main.poll() is None:
            os.killpg(main.pid, signal.SIGTERM)
    signal.signal(signal.SIGTERM, on_term)
    (units_dir / f"{unit}.supervisor").write_text(str(os.getpid()))
    while not stopping:
        code = 1
        try:
            env = unit_environment(settings)
            for line in settings.get("ExecStartPre", []):
                ignore, argv = expand_command(line, env)
                try:
                    code = subprocess.run(argv, env=env, cwd="/", stdin=subprocess.DEVNULL).returncode
                except OSError as error:  # systemd's 203/EXEC, which "-" ignores like any other failure
                    print(error, flush=True)
                    code = 203
                if code and not ignore:
                    raise RuntimeError(f"ExecStartPre={line} failed")
            argv = expand_command(settings["ExecStart"][-1], env)[1]
            if notify:
                sock_path = units_dir / f"{unit}.notify"
                sock_path.unlink(missing_ok=True)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.bind(str(sock_path))
                sock.settimeout(0.2)
                env["NOTIFY_SOCKET"] = str(sock_path)
            main = subprocess.Popen(argv, env=env, cwd="/", stdin=subprocess.DEVNULL, start_new_session=True)
            (units_dir / f"{unit}.main").write_text(str(main.pid))
            if not notify or notified_ready(sock, main):
                (units_dir / f"{unit}.ready").touch()
                (units_dir / f"{unit}.started").touch()
            code = main.wait()
        except (OSError, RuntimeError) as error:
            print(error, flush=True)
        (units_dir / f"{unit}.ready").unlink(missing_ok=True)
        (units_dir / f"{unit}.main").unlink(missing_ok=True)
        if restart == "no" or (restart == "on-failure" and code == 0):
            break
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
    (units_dir / f"{unit}.supervisor").unlink(missing_ok=True)


def service_state(unit: str) -> str:
    units_dir = STATE / "units"
    if pid_alive(units_dir / f"{unit}.supervisor") is None:
        return "inactive"
    ready = pid_alive(units_dir / f"{unit}.main") and (units_dir / f"{unit}.ready").exists()
    return "active" if ready else "activating"


def start_service(unit: str) -> None:
    """`systemctl start` of a long-running unit: done once its main process runs (Type=notify: once ready)."""
    units_dir = STATE / "units"
    if service_state(unit) != "inactive":
        return
    (units_dir / f"{unit}.started").unlink(missing_ok=True)
    with (units_dir / f"{unit}.journal").open("a") as journal_file:
        supervisor = subprocess.Popen([sys.executable, os.path.abspath(sys.argv[0]), "--supervise", unit], cwd="/",
                                      stdin=subprocess.DEVNULL, stdout=journal_file, stderr=subprocess.STDOUT,
                                      start_new_session=True, env={"PATH": SYSTEMD_PATH})
    deadline = time.monotonic() + seconds(long_running(unit).get("TimeoutStartSec", ["90"])[-1])
    # The supervisor is this process's child: its exit is read from the kernel, not from its PID file.
    while not (units_dir / f"{unit}.started").exists() and supervisor.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not (units_dir / f"{unit}.started").exists():
        fail(f"Job for {unit}.service failed because the control process exited with error code.\n"
             f"See \"systemctl status {unit}.service\" and \"journalctl -xeu {unit}.service\" for details."
             f" (the lab's supervisor: {'running' if supervisor.poll() is None else f'exit {supervisor.returncode}'})")


def stop_service(unit: str) -> None:
    """SIGTERM to the service, SIGKILL after TimeoutStopSec=; returns once it is gone."""
    units_dir = STATE / "units"
    supervisor = pid_alive(units_dir / f"{unit}.supervisor")
    if supervisor is None:
        return
    os.kill(supervisor, signal.SIGTERM)
    deadline = time.monotonic() + seconds(long_running(unit).get("TimeoutStopSec", ["90"])[-1])
    while pid_alive(units_dir / f"{unit}.supervisor") == supervisor and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(units_dir / f"{unit}.supervisor") == supervisor:
        main = pid_alive(units_dir / f"{unit}.main")
        for group in ([main] if main else []) + [supervisor]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
    for marker in ("supervisor", "main", "ready"):
        (units_dir / f"{unit}.{marker}").unlink(missing_ok=True)


def service_status(unit: str) -> None:
    """`systemctl status`: the lines kubeadm reads (initsystem_unix.go@v1.36.4 ServiceExists: "Loaded: not-found")."""
    if unit_settings(unit) is None:
        fail(f"Unit {unit}.service could not be found.", 4)
    state = service_state(unit)
    enabled = "enabled" if unit_enabled(unit) else "disabled"
    print(f"* {unit}.service\n     Loaded: loaded ({unit}.service; {enabled})\n     Active: {state}")
    sys.exit(0 if state == "active" else 3)


def systemctl(argv: list[str]) -> None:
    if argv[:1] == ["--supervise"]:  # the supervisor start_service runs, not a systemctl verb
        supervise(argv[1])
        return
    flags, args = parse_flags(argv, {"now": False, "quiet": False, "q": False, "type": True, "all": False,
                                     "plain": False, "no-legend": False, "no-pager": False}, (0, 10))
    if not args:
        fail("Too few arguments.")
    verb, units = args[0], [u.removesuffix(".service") for u in args[1:]]
    units_dir = STATE / "units"
    units_dir.mkdir(parents=True, exist_ok=True)
    if verb == "daemon-reload" or verb == "list-units":
        return
    if verb in ("enable", "disable", "mask"):
        for unit in units:
            (units_dir / f"{unit}.enabled").touch() if verb == "enable" else (units_dir / f"{unit}.enabled").unlink(missing_ok=True)
        if not (verb == "enable" and flags.get("now")):
            return
        verb = "start"
    for unit in units:
        if verb == "status":
            service_status(unit)
        elif long_running(unit) is not None and verb in ("start", "restart", "stop", "is-active"):
            if verb in ("restart", "stop"):
                stop_service(unit)
            if verb in ("start", "restart"):
                start_service(unit)
            elif verb == "is-active":
                print(service_state(unit))
                sys.exit(0 if service_state(unit) == "active" else 3)
        elif verb == "is-enabled":
            print("enabled" if unit_enabled(unit) else "disabled")
            sys.exit(0 if unit_enabled(unit) else 1)
        elif verb in ("start", "restart") and oneshot_exec_start(unit) is not None:
            run_oneshot(unit, oneshot_exec_start(unit))
        elif verb in ("start", "restart"):
            if unit in RUNTIME_SOCKETS:
                if not Path(f"/usr/bin/{unit}").exists():
                    fail(f"Failed to {verb} {unit}.service: Unit {unit}.service not found.")
                RUNTIME_SOCKETS[unit].parent.mkdir(parents=True, exist_ok=True)
                RUNTIME_SOCKETS[unit].touch()
            elif unit == "kubelet":
                if not Path("/usr/bin/kubelet").exists():
                    fail("Failed to start kubelet.service: Unit kubelet.service not found.")
                if (K8S / "kubelet.conf").exists() or (Path("/etc/systemd/system/kubelet.service.d/kubelet.conf")).exists():
                    set_kubelet_running(True)
                    version = installed_version("kubelet")
                    with journal() as j:
                        for node in j["nodes"].values():
                            if node["host"] == HOST:
                                node["kubelet"] = version
            (units_dir / f"{unit}.active").touch()
        elif verb == "stop":
            (units_dir / f"{unit}.active").unlink(missing_ok=True)
        elif verb == "is-active":
            if not (units_dir / f"{unit}.active").exists():
                print("inactive")
                sys.exit(3)
            print("active")
        else:
            fail(f"Unknown command verb {verb}.")


CONTAINERD_CONFIG = """version = 3
root = '/var/lib/containerd'
state = '/run/containerd'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10'

  [plugins.'io.containerd.cri.v1.runtime']
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
          runtime_type = 'io.containerd.runc.v2'

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            BinaryName = ''
            SystemdCgroup = false
"""


def containerd(argv: list[str]) -> None:
    if argv in (["--version"], ["-v"]):
        print(f"containerd github.com/containerd/containerd/v2 v{VERSION} lab")
    elif argv == ["config", "default"]:
        print(CONTAINERD_CONFIG, end="")
    else:
        fail(f"containerd: the lab's stand-in does not run {' '.join(argv)!r}")


def crio(argv: list[str]) -> None:
    if argv in (["--version"], ["version"]):
        print(f"crio version {VERSION}")
    else:
        fail(f"crio: the lab's stand-in does not run {' '.join(argv)!r}")


def crictl(argv: list[str]) -> None:
    if argv[:1] == ["version"]:
        running = [unit for unit, path in RUNTIME_SOCKETS.items() if path.exists()]
        if not running:
            fail("crictl: validate service connection: no runtime socket")
        print(f"RuntimeName:  {'cri-o' if running[0] == 'crio' else running[0]}")
    else:
        fail("crictl: the lab's stand-in answers only `version`")


# ---------------------------------------------------------------------------------------------
# kubectl
# ---------------------------------------------------------------------------------------------

# The objects of the exported credentials (components/kubeconfig.sh), kept in the journal under "objects" as
# "Kind/namespace/name". What the API server and the ServiceAccount token controller do with them, at
# kubernetes v1.36.4: a token Secret gets a token once its ServiceAccount exists and is deleted when that
# is missing (pkg/controller/serviceaccount/tokens_controller.go syncSecret; here at once, not
# asynchronously); a token is accepted while its Secret holds it and its ServiceAccount exists
# (pkg/serviceaccount/legacy.go legacyValidator.Validate), else kubectl prints "You must be logged in to
# the server" (kubectl pkg/cmd/util/helpers.go); RBAC refusals are worded as forbiddenMessage
# (k8s.io/apiserver pkg/endpoints/handlers/responsewriters/errors.go). Not imitated: the token's JWT
# format, roleRef immutability, the verbs each built-in role allows (view, edit and admin all list pods).
API_KINDS = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Secret": "secrets",
             "ClusterRoleBinding": "clusterrolebindings.rbac.authorization.k8s.io",
             "RoleBinding": "rolebindings.rbac.authorization.k8s.io"}
CLUSTER_SCOPED = ("Namespace", "ClusterRoleBinding")
BUILT_IN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SA_TOKEN = "kubernetes.io/service-account-token"


def api_key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{'' if kind in CLUSTER_SCOPED else namespace}/{name}"


def kubectl_apply(j: dict[str, Any], text: str) -> None:
    objects = j.setdefault("objects", {})
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        kind, meta = doc.get("kind"), doc.get("metadata", {})
        if kind not in API_KINDS:
            fail(f'error: resource mapping not found for name: "{meta.get("name")}": no matches for kind "{kind}"')
        namespace = "" if kind in CLUSTER_SCOPED else meta.get("namespace", "default")
        if namespace and namespace not in BUILT_IN_NAMESPACES and api_key("Namespace", "", namespace) not in objects:
            fail(f'Error from server (NotFound): error when creating "STDIN": namespaces "{namespace}" not found')
        key = api_key(kind, namespace, meta["name"])
        old = objects.get(key)
        new = json.loads(json.dumps(doc))
        if old is not None and "data" in old:  # the controller's data stays: apply patches only what it manages
            new.setdefault("data", old["data"])
        objects[key] = new
        if kind == "Secret" and new.get("type") == SA_TOKEN:
            account = new["metadata"].get("annotations", {}).get("kubernetes.io/service-account.name", "")
            if api_key("ServiceAccount", namespace, account) not in objects:
                del objects[key]
            elif "data" not in new:
                token = f"lab-token.{secrets.token_urlsafe(24)}"
                new["data"] = {name: base64.b64encode(value.encode()).decode() for name, value in
                               (("token", token), ("namespace", namespace), ("ca.crt", (PKI / "ca.crt").read_text()))}
        state = "created" if old is None else ("unchanged" if old == new else "configured")
        print(f"{API_KINDS[kind].split('.')[0].rstrip('s')}/{meta['name']} {state}")


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """A label selector of `key`, `!key`, `key=value`, `key!=value`, `key in (…)`, `key notin (…)` terms."""
    for term in (t.strip() for t in re.split(r",(?![^(]*\))", selector)):
        match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if match:
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            if (labels.get(key) in values) != (op == "in") or (op == "in" and key not in labels):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value.lstrip("="):
                return False
        elif term not in labels:
            return False
    return True


def kubectl_delete_selected(j: dict[str, Any], resources: str, selector: str) -> None:
    objects = j.setdefault("objects", {})
    kinds = {plural.split(".")[0]: kind for kind, plural in API_KINDS.items()}
    deleted = 0
    for resource in resources.split(","):
        if resource not in kinds:
            fail(f'error: the server doesn\'t have a resource type "{resource}"')
        for key, doc in list(objects.items()):
            if key.startswith(kinds[resource] + "/") and selector_matches(selector, doc["metadata"].get("labels", {})):
                del objects[key]
                deleted += 1
                print(f'{resource.rstrip("s")} "{doc["metadata"]["name"]}" deleted')
    # The token controller deletes the token Secrets of a deleted ServiceAccount (deleteTokens).
    for key, doc in list(objects.items()):
        account = doc["metadata"].get("annotations", {}).get("kubernetes.io/service-account.name")
        if doc.get("type") == SA_TOKEN and api_key("ServiceAccount", key.split("/")[1], account) not in objects:
            del objects[key]
    if not deleted:
        print("No resources found", file=sys.stderr)


CSR_QUERY = ('jsonpath={range .items[*]}{.metadata.name}{" "}{.spec.signerName}{" "}{.spec.username}{" "}'
             '{.spec.request}{" "}{.status.conditions[*].type}{"\\n"}{end}')


def kubectl(argv: list[str]) -> None:
    known = {"kubeconfig": True, "n": True, "namespace": True, "o": True, "output": True, "raw": True,
             "overwrite": False, "ignore-daemonsets": False, "delete-emptydir-data": False, "force": False,
             "timeout": True, "ignore-not-found": False, "w": True,
             # kubectl's global --server/-s (cli-runtime genericclioptions/config_flags.go@kubernetes-1.36.4)
             "server": True, "s": True,
             # drain's, kubectl pkg/cmd/drain/drain.go@kubernetes-1.36.3
             "grace-period": True, "skip-wait-for-delete-timeout": True,
             # apply's and delete's (kubectl pkg/cmd/apply/apply.go, pkg/cmd/delete/delete.go@kubernetes-1.36.4)
             "f": True, "filename": True, "l": True, "selector": True, "A": False, "all-namespaces": False,
             # auth can-i's and the global --as (kubectl pkg/cmd/auth/cani.go@v0.36.4, config_flags.go)
             "quiet": False, "q": False, "as": True}
    flags, args = parse_flags(argv, known, (1, 40))
    config = flags.get("kubeconfig") or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if not Path(config).exists():
        fail("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
    document = yaml.safe_load(Path(config).read_text())
    user = document.get("users", [{}])[0]
    # Tokens (the exported kubeconfigs) are authenticated by the real API server only (test_scenarios_real.py).
    if "token" in user.get("user", {}) or user.get("name") not in ("kubernetes-admin", "kubernetes-super-admin"):
        fail("error: the lab's kubectl stand-in answers only admin.conf's client certificate")
    with journal() as j:
        if "cluster" not in j:
            fail("The connection to the server was refused - is the cluster initialized?")
        verb = args[0]
        selector = flags.get("l", flags.get("selector"))
        if verb == "get" and flags.get("raw"):
            server = flags.get("server", flags.get("s"))
            # One named API server answers only while the kubelet runs its static pod, i.e. while its
            # manifest is in place; the endpoint is answered by any control plane.
            if server and not (MANIFESTS / "kube-apiserver.yaml").exists():
                fail(f"The connection to the server {server.removeprefix('https://')} was refused - "
                     "did you specify the right host or port?")
            print("ok")
        elif verb == "auth" and args[1:2] == ["can-i"]:
            # kubeconfig.sh asks whether an exported credential is authorized where it is bound: here as soon as
            # a binding names its ServiceAccount (the real authorizer's lag and the aggregated roles' rules are the
            # real API server's, test_kubeconfig_revocation_real.py). With --quiet, only the exit status answers.
            _, _, account_namespace, account = flags["as"].split(":")
            namespace = flags.get("n", flags.get("namespace", "default"))
            subject = {"kind": "ServiceAccount", "name": account, "namespace": account_namespace}
            allowed = any(subject in doc.get("subjects", []) for key, doc in j.get("objects", {}).items()
                          if key.startswith(("ClusterRoleBinding//", f"RoleBinding/{namespace}/")))
            if not (flags.get("quiet") or flags.get("q")):
                print("yes" if allowed else "no")
            if not allowed:
                sys.exit(1)
        elif verb == "get" and args[1:2] in (["node"], ["nodes"]):
            names = args[2:] or sorted(j["nodes"])
            for name in names:
                node = j["nodes"].get(name)
                if node is None:
                    fail(f'Error from server (NotFound): nodes "{name}" not found')
                output = flags.get("o", flags.get("output", ""))
                annotation = re.match(r"^jsonpath=\{\.metadata\.annotations\.(.+)\}$", output)
                if output == "jsonpath={.status.nodeInfo.kubeletVersion}":
                    print(f"v{node['kubelet']}", end="")
                elif annotation:
                    print(node.get("annotations", {}).get(annotation.group(1).replace("\\.", "."), ""), end="")
                elif output == "json":
                    print(json.dumps({"metadata": {"name": name, "labels": node["labels"]},
                                      "spec": {"unschedulable": node["unschedulable"]},
                                      "status": {"nodeInfo": {"kubeletVersion": f"v{node['kubelet']}"}}}))
                elif output:
                    fail(f"error: the lab's kubectl does not print -o {output}")
                else:
                    print(f"{name}\tReady\t{node['role']}\tv{node['kubelet']}")
        elif verb in ("label", "annotate", "taint", "drain", "cordon", "uncordon", "delete") and args[1:2] == ["node"] or \
                verb in ("drain", "cordon", "uncordon"):
            rest = args[2:] if args[1:2] == ["node"] else args[1:]
            name = rest[0]
            node = j["nodes"].get(name)
            if node is None:
                if verb == "delete" and flags.get("ignore-not-found"):
                    return
                fail(f'Error from server (NotFound): nodes "{name}" not found')
            if verb == "label":
                for item in rest[1:]:
                    if item.endswith("-"):
                        node["labels"].pop(item[:-1], None)
                    else:
                        key, _, value = item.partition("=")
                        if key in node["labels"] and not flags.get("overwrite") and node["labels"][key] != value:
                            fail(f"error: '{key}' already has a value ({node['labels'][key]}), and --overwrite is false")
                        node["labels"][key] = value
            elif verb == "annotate":
                annotations = node.setdefault("annotations", {})
                for item in rest[1:]:
                    if item.endswith("-"):
                        annotations.pop(item[:-1], None)
                    else:
                        key, _, value = item.partition("=")
                        if key in annotations and not flags.get("overwrite") and annotations[key] != value:
                            fail(f"error: --overwrite is false but found the following declared annotation(s): '{key}' already has a value")
                        annotations[key] = value
            elif verb == "taint":
                for item in rest[1:]:
                    if item.endswith("-"):
                        key, effect = item[:-1].split(":")
                        node["taints"] = [t for t in node["taints"] if not (t.split("=")[0].split(":")[0] == key
                                                                            and t.endswith(":" + effect))]
                    else:
                        if not re.match(r"^[^=:]+(=[^:]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$", item):
                            fail(f"error: invalid taint spec: {item}")
                        key = item.split(":")[0].split("=")[0]
                        effect = item.rsplit(":", 1)[1]
                        node["taints"] = [t for t in node["taints"] if not (t.split(":")[0].split("=")[0] == key
                                                                            and t.endswith(":" + effect))]
                        node["taints"].append(item if "=" in item else f"{key}=:{effect}")
            elif verb in ("drain", "cordon"):
                if verb == "drain" and not (flags.get("ignore-daemonsets") and flags.get("force")):
                    fail("error: cannot delete DaemonSet-managed Pods (use --ignore-daemonsets)")
                node["unschedulable"] = True
                # The lines kubectl's printer writes (staging/src/k8s.io/kubectl/pkg/cmd/drain/drain.go@v1.36.4).
                print(f"node/{name} cordoned" + (f"\nnode/{name} drained" if verb == "drain" else ""))
            elif verb == "uncordon":
                node["unschedulable"] = False
                print(f"node/{name} uncordoned")
            elif verb == "delete":
                del j["nodes"][name]
                print(f'node "{name}" deleted')
        elif verb == "exec":
            pod = args[1]
            command = args[2:]
            if flags.get("n", flags.get("namespace")) != "kube-system" or not pod.startswith("etcd-"):
                fail(f'Error from server (NotFound): pods "{pod}" not found')
            if pod.removeprefix("etcd-") not in j["nodes"] or not j["cluster"]["stackedEtcd"]:
                fail(f'Error from server (NotFound): pods "{pod}" not found')
            if not command or command[0] != "etcdctl":
                fail(f'exec: "{command[0] if command else ""}": executable file not found in $PATH')
            etcdctl(j, command[1:])
        elif verb == "apply":
            if flags.get("f", flags.get("filename")) != "-":
                fail("error: the lab's kubectl applies only -f -")
            kubectl_apply(j, sys.stdin.read())
        elif verb == "get" and args[1:2] == ["secret"] and len(args) == 3:
            secret = j.get("objects", {}).get(api_key("Secret", flags.get("n", flags.get("namespace", "default")), args[2]))
            if secret is None:
                fail(f'Error from server (NotFound): secrets "{args[2]}" not found')
            if flags.get("o", flags.get("output")) != "jsonpath={.data.token}":
                fail("error: the lab's kubectl prints a Secret only as -o jsonpath={.data.token}")
            print((secret.get("data") or {}).get("token", ""), end="")
        elif verb == "delete" and selector is not None and len(args) == 2:
            kubectl_delete_selected(j, args[1], selector)
        elif verb == "get" and args[1:2] == ["csr"]:
            # Only the kubelet-serving approver's query (components/kubelet-serving-approve.sh), printed as
            # kubectl's jsonpath printer does.
            if flags.get("o") != CSR_QUERY:
                fail(f"error: the lab's kubectl prints CSRs only as -o {CSR_QUERY}")
            for c in j.get("csrs", []):
                print(f"{c['name']} {c['signerName']} {c['username']} {c['request']} {' '.join(c['conditions'])}")
        elif verb == "certificate" and args[1:2] in (["approve"], ["deny"]):
            csr = next((c for c in j.get("csrs", []) if c["name"] == args[2]), None)
            if csr is None:
                fail(f'Error from server (NotFound): certificatesigningrequests.certificates.k8s.io "{args[2]}" not found')
            decision = {"approve": "Approved", "deny": "Denied"}[args[1]]
            csr["conditions"].append(decision)
            print(f"certificatesigningrequest.certificates.k8s.io/{args[2]} {decision.lower()}")
        elif verb == "delete" and args[1:3] in (["secret", "kubeadm-certs"], ["secrets", "kubeadm-certs"]):
            # The Secret copycerts.UploadCerts writes; it exists while an upload's key is unexpired (its owner
            # token's TTL, phases/copycerts/copycerts.go @v1.36.4). Deleted keys stay for the secrets scan.
            if flags.get("n", flags.get("namespace")) != "kube-system":
                fail('Error from server (NotFound): secrets "kubeadm-certs" not found')
            live = [k for k, expiry in j["certificateKeys"].items() if expiry >= now()]
            j.setdefault("deletedCertificateKeys", []).extend(j["certificateKeys"])
            j["certificateKeys"] = {}
            if live:
                print('secret "kubeadm-certs" deleted')
            elif not flags.get("ignore-not-found"):
                fail('Error from server (NotFound): secrets "kubeadm-certs" not found')
        elif verb == "version":
            print(f"Client Version: v{VERSION}\nServer Version: v{j['cluster']['version']}")
        else:
            fail(f"error: the lab's kubectl stand-in does not implement {' '.join(args)!r}")


def etcdctl(j: dict[str, Any], argv: list[str]) -> None:
    flags, args = parse_flags(argv, {"endpoints": True, "cacert": True, "cert": True, "key": True, "w": True,
                                     "write-out": True}, (1, 3))
    for required in ("cacert", "cert", "key"):
        if required not in flags:
            fail(f"etcdctl: TLS flag --{required} missing: the client would be refused")
    if args[:2] == ["member", "list"]:
        if flags.get("w", flags.get("write-out", "simple")) != "simple":
            fail("etcdctl: the lab prints member list only as -w simple")
        for member in j["etcd"]:
            host = j["nodes"].get(member["name"], {}).get("host", member["name"])
            print(f"{member['id']}, started, {member['name']}, https://{host}:2380, https://{host}:2379, false")
    elif args[:2] == ["member", "remove"]:
        before = len(j["etcd"])
        j["etcd"] = [m for m in j["etcd"] if m["id"] != args[2]]
        if len(j["etcd"]) == before:
            fail("Error: etcdserver: member not found")
        print(f"Member {args[2]} removed from cluster")
    elif args[:2] == ["snapshot", "save"]:
        # etcdctl runs in the etcd pod, which sees of the machine only its hostPaths, the data directory
        # and the etcd certificates (cmd/kubeadm/app/phases/etcd/local.go@v1.36.4): a snapshot saved
        # anywhere else stays in the container.
        target = Path(args[2])
        if target.parent.is_relative_to("/var/lib/etcd") and target.parent.is_dir():
            target.write_text(f"lab etcd snapshot at v{j['cluster']['version']}\n")
        print(f"Snapshot saved at {args[2]}")
    else:
        fail(f"etcdctl: the lab does not implement {' '.join(args)}")


TOOLS: dict[str, Callable[[list[str]], None]] = {
    "kubeadm": kubeadm, "kubelet": kubelet, "kubectl": kubectl, "systemctl": systemctl,
    "containerd": containerd, "crio": crio, "crictl": crictl,
}

if __name__ == "__main__":
    tool = os.path.basename(sys.argv[0])
    if tool not in TOOLS:
        fail(f"stand-in: unknown tool {tool}")
    record_call(tool, sys.argv[1:])
    TOOLS[tool](sys.argv[1:])
