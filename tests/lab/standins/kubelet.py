#!/usr/bin/python3
"""The lab's kubelet: the one Kubernetes program that cannot run in the lab (its hosts' kernel binds every
cgroup controller to cgroup v1, which the kubelet v1.36 refuses), so this stand-in does what kubeadm and
the program rely on, each behaviour following the kubelet (k8s.io/kubernetes@v1.36.4, cited per function):

- flags as 10-kubeadm.conf and /var/lib/kubelet/kubeadm-flags.env give them (unknown flags are refused);
  `--version`; exits when its --config file is missing (before `kubeadm init`/`join` the real kubelet
  crash-loops and systemd restarts it);
- healthz on healthzBindAddress:healthzPort (kubeadm's wait-control-plane and join wait on it);
- static pods from staticPodPath: each container's command + args + env is a process in the host's network
  with a mount namespace of its own: the container's image (image_root) as its root, its hostPath volumes
  mounted (CONTAINER); restarted on a manifest change (the config hash), stopped on
  removal (SIGTERM, then SIGKILL after the grace period), restarted with the kubelet's back-off when it
  exits. The processes outlive the kubelet and are adopted by the next one, as containers are, and end
  when `kubeadm reset` cleans /var/lib/kubelet (CONTAINER). Not imitated: liveness probes, volumes other
  than host paths, resource limits, sandboxes;
- the client certificate: kubelet.conf's, or TLS bootstrap with bootstrap-kubelet.conf through a real
  CSR; client certificates rotated into /var/lib/kubelet/pki/kubelet-client-current.pem; a serving
  certificate through a kubernetes.io/kubelet-serving CSR when serverTLSBootstrap is true;
- port 10250 serves exec into static pods' containers (KubeletServer), no logs or metrics;
- the Node (registered with its labels and taints, kept Ready with status updates and its Lease);
- mirror pods of the static pods, with the kubelet's annotations, Running and Ready;
- pods of the API server bound to this node (DaemonSets, Deployments) are reported Running and Ready
  WITHOUT RUNNING THEM (no container, no network); a pod being deleted is finished off as the kubelet
  does (deleted with grace period 0), so drains complete. Run-to-completion pods (restartPolicy Never or
  OnFailure: Jobs' pods) are the exception: their containers run (run_to_completion).
It talks to the API server over HTTPS with Python's standard library and the client certificate.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import datetime
import functools
import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, NoReturn

import yaml

VERSION = "@VERSION@"
# Flags the real kubelet has that kubeadm and the packages pass (cmd/kubelet/app/options/options.go@v1.36.4);
# True: takes a value.
FLAGS = {"version": False, "config": True, "kubeconfig": True, "bootstrap-kubeconfig": True,
         "container-runtime-endpoint": True, "node-ip": True, "hostname-override": True, "node-labels": True,
         "register-with-taints": True, "pod-infra-container-image": True, "cert-dir": True}
# Where the stand-in keeps what the real kubelet keeps in the container runtime (which containers run).
STATE = Path("/var/lib/kubelet/standin")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# pkg/kubelet/kubelet.go@v1.36.4 backOffPeriod; pkg/kubelet/apis/config/v1beta1/defaults.go MaxContainerBackOff.
BACKOFF, MAX_BACKOFF = 10.0, 300.0
# pkg/apis/core/v1/defaults.go@v1.36.4: terminationGracePeriodSeconds defaults to 30.
DEFAULT_GRACE = 30
LOCK = threading.Lock()


def log(message: str) -> None:
    print(f"{datetime.datetime.now(datetime.timezone.utc).isoformat()} {message}", flush=True)


def fail(message: str) -> NoReturn:
    print(f'E "command failed" err="{message}"', file=sys.stderr)
    sys.exit(1)


def rfc3339(when: float | None = None) -> str:
    return datetime.datetime.fromtimestamp(time.time() if when is None else when,
                                           datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(when: float | None = None) -> str:
    """metav1.MicroTime (RFC3339 with microseconds), as Lease renewTime takes."""
    return datetime.datetime.fromtimestamp(time.time() if when is None else when,
                                           datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_flags(argv: list[str]) -> dict[str, str]:
    """pflag's --name=value / --name value; an unknown flag is an error as in the real kubelet."""
    flags, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or name not in FLAGS:
            fail(f"unknown flag: {arg}")
        if FLAGS[name] and not eq:
            i += 1
            if i >= len(argv):
                fail(f"flag needs an argument: --{name}")
            value = argv[i]
        flags[name] = value if FLAGS[name] else "true"
        i += 1
    return flags


def parse_taint(text: str) -> dict[str, str]:
    """key[=value]:Effect (pkg/util/taints/taints.go@v1.36.4 parseTaint)."""
    key_value, _, effect = text.rpartition(":")
    key, _, value = key_value.partition("=")
    if not key or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        fail(f"invalid taint spec: {text}")
    return {"key": key, "effect": effect, **({"value": value} if value else {})}


# ---------------------------------------------------------------------------------------------
# API server client
# ---------------------------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


class Client:
    """A client of a kubeconfig's current context: a client certificate (file or data) or a token, trusting the
    kubeconfig's CA only (client-go transport/transport.go@v0.36.4 rootCertPool: the CA data become the only roots),
    over one kept-alive connection as client-go's transport keeps its connections."""

    def __init__(self, kubeconfig: Path, cert_file: Path | None = None):
        # Every file it was made from, with its bytes: client_for makes a new client when one changes.
        self.sources: dict[Path, bytes] = {kubeconfig: kubeconfig.read_bytes()}
        cluster, user = kubeconfig_context(self.sources[kubeconfig])
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.token = user.get("token")
        # Not ssl.create_default_context(): without cafile/cadata it loads the system's roots, which the kubelet does
        # not trust for the API server, at 36 ms of CPU each time.
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if "certificate-authority-data" in cluster:
            self.context.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        else:
            self.context.load_verify_locations(cafile=self.read(Path(cluster["certificate-authority"])))
        if cert_file is not None:
            self.context.load_cert_chain(self.read(cert_file))
        elif "client-certificate-data" in user:
            with tempfile.TemporaryDirectory() as scratch:
                pem = Path(scratch) / "client.pem"
                pem.write_bytes(base64.b64decode(user["client-certificate-data"])
                                + base64.b64decode(user["client-key-data"]))
                self.context.load_cert_chain(pem)
        elif "client-certificate" in user:
            self.context.load_cert_chain(self.read(Path(user["client-certificate"])), self.read(Path(user["client-key"])))
        self.connection: http.client.HTTPSConnection | None = None
        self.lock = threading.Lock()

    def read(self, path: Path) -> Path:
        self.sources[path] = path.read_bytes()
        return path

    def unchanged(self) -> bool:
        try:
            return all(path.read_bytes() == data for path, data in self.sources.items())
        except OSError:
            return False

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                self.connection.close()
                self.connection = None

    def exchange(self, method: str, path: str, body: str | None, headers: dict[str, str]) -> tuple[int, str]:
        if self.connection is None:
            self.connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=15)
        try:
            self.connection.request(method, path, body, headers)
            response = self.connection.getresponse()
            text = response.read().decode()
        except BaseException:
            self.connection.close()
            self.connection = None
            raise
        if response.will_close:
            self.connection.close()
            self.connection = None
        return response.status, text

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        headers = {"Accept": "application/json", "User-Agent": f"kubelet/v{VERSION} (linux/amd64) kubernetes/lab"}
        if body is not None:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = None if body is None else json.dumps(body)
        with self.lock:
            reused = self.connection is not None
            try:
                status, text = self.exchange(method, path, payload, headers)
            except (ConnectionResetError, BrokenPipeError):  # http.client.RemoteDisconnected among them
                # The server had closed the kept-alive connection (its idle timeout, a restarted API server): a GET
                # once more on a new one, as Go's http.Transport retries a replayable request on a reused connection
                # (net/http/transport.go@go1.26.8 persistConn.shouldRetryRequest); anything else fails, the loops
                # try again.
                if not reused or method != "GET":
                    raise
                status, text = self.exchange(method, path, payload, headers)
        if status >= 300:
            raise ApiError(status, text)
        return json.loads(text) if text else None

    def get(self, path: str) -> Any | None:
        try:
            return self.request("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise


CLIENTS: dict[tuple[Path, Path | None], Client] = {}
CLIENTS_LOCK = threading.Lock()


def client_for(kubeconfig: Path, cert_file: Path | None = None) -> Client:
    """The client of KUBECONFIG (with CERT_FILE), made again only when a file it was made from has changed (a
    rotated certificate, kubeadm's kubelet-finalize), when the kubelet's transport closes its connections too
    (client-go transport/cert_rotation.go@v0.36.4): the loops ask every second, and a new TLS context and handshake
    each time were most of the lab's CPU."""
    with CLIENTS_LOCK:
        client = CLIENTS.get((kubeconfig, cert_file))
        if client is None or not client.unchanged():
            if client is not None:
                client.close()
            client = CLIENTS[(kubeconfig, cert_file)] = Client(kubeconfig, cert_file)
        return client


# ---------------------------------------------------------------------------------------------
# certificates (k8s.io/client-go@v0.36.4 util/certificate, pkg/kubelet/certificate)
# ---------------------------------------------------------------------------------------------

def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout


@functools.lru_cache(maxsize=32)
def not_after(pem: bytes) -> float | None:
    """The certificate's NotAfter in seconds since the epoch, None if openssl reads no certificate. Read once per
    certificate: an openssl process costs 30 ms of CPU, and the loops check every second."""
    try:
        done = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem, capture_output=True)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    end = done.stdout.decode().strip().removeprefix("notAfter=")
    return calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y %Z"))


def cert_valid(pem: bytes) -> bool:
    """isClientConfigStillValid (pkg/kubelet/certificate/bootstrap/bootstrap.go@v1.36.4): not after its NotAfter,
    by the clock of this moment."""
    end = not_after(pem)
    return end is not None and time.time() <= end


@functools.lru_cache(maxsize=16)
def kubeconfig_context(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cluster and the user of a kubeconfig's current context, parsed once per content (the loops read
    kubelet.conf every second). Shared: copied before a change."""
    config = yaml.safe_load(data)
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    return (next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"]),
            next(u["user"] for u in config["users"] if u["name"] == context["user"]))


def kubeconfig_cert(path: Path) -> bytes | None:
    """The client certificate (PEM) a kubeconfig names, or None if it has none that can be read."""
    try:
        _, user = kubeconfig_context(path.read_bytes())
        if "client-certificate-data" in user:
            return base64.b64decode(user["client-certificate-data"])
        return Path(user["client-certificate"]).read_bytes()
    except (OSError, KeyError, StopIteration, TypeError, ValueError, yaml.YAMLError):
        return None


class CertStore:
    """certificate.NewFileStore (client-go util/certificate/certificate_store.go@v0.36.4): PAIR-<time>.pem
    holds the certificate(s) then the key, PAIR-current.pem links to the newest."""

    def __init__(self, directory: Path, pair: str):
        self.directory, self.pair = directory, pair

    @property
    def current(self) -> Path:
        return self.directory / f"{self.pair}-current.pem"

    def valid(self) -> bool:
        return self.current.exists() and cert_valid(self.current.read_bytes())

    def update(self, cert: bytes, key: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.pair}-{time.strftime('%Y-%m-%d-%H-%M-%S', time.gmtime())}.pem"
        path.write_bytes(cert.rstrip(b"\n") + b"\n" + key)
        path.chmod(0o600)
        link = self.directory / f".{self.pair}-current.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(path)
        link.replace(self.current)


def digested_name(key: bytes, cn: str, orgs: list[str], usages: list[str]) -> str:
    """digestedName (bootstrap.go@v1.36.4): node-csr-<sha512/256 of the public key, subject and usages>."""
    encode = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=")  # noqa: E731 (RawURLEncoding)
    digest = hashlib.new("sha512_256")
    for data in [openssl("pkey", "-pubout", "-outform", "DER", stdin=key), cn.encode(), *(o.encode() for o in orgs),
                 *(u.encode() for u in usages)]:
        digest.update(encode(data) + b"|")
    return "node-csr-" + encode(digest.digest()).decode()


def request_certificate(client: Client, key: bytes, signer: str, node: str, usages: list[str],
                        sans: list[str] = (), digested: bool = False) -> bytes:
    """A CSR for system:node:NODE in system:nodes (csr.RequestCertificate, client-go util/certificate/csr
    @v0.36.4: a digested name for the bootstrap request, else generateName csr-), then waits for the
    certificate (WaitForCertificate); a denied or failed request raises."""
    cn = f"system:node:{node}"
    with tempfile.NamedTemporaryFile() as key_file:
        key_file.write(key)
        key_file.flush()
        extra = ["-addext", "subjectAltName=" + ",".join(sans)] if sans else []
        request = openssl("req", "-new", "-key", key_file.name, "-subj", f"/O=system:nodes/CN={cn}", *extra)
    metadata = {"name": digested_name(key, cn, ["system:nodes"], usages)} if digested else {"generateName": "csr-"}
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": metadata,
            "spec": {"request": base64.b64encode(request).decode(), "signerName": signer, "usages": usages}}
    path = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
    try:
        created = client.request("POST", path, body)
    except ApiError as error:
        if error.status != 409:
            raise
        created = client.request("GET", f"{path}/{metadata['name']}")  # this process's earlier request
    name = created["metadata"]["name"]
    log(f"CSR {name} ({signer}) created, waiting for its certificate")
    deadline = time.time() + 3600
    while time.time() < deadline:
        status = (client.get(f"{path}/{name}") or {}).get("status", {})
        if any(c["type"] in ("Denied", "Failed") for c in status.get("conditions", [])):
            raise RuntimeError(f"CSR {name} was {status['conditions']}")
        if status.get("certificate"):
            return base64.b64decode(status["certificate"])
        time.sleep(1)
    raise RuntimeError(f"CSR {name}: no certificate within an hour")


def new_key() -> bytes:
    """keyutil.MakeEllipticPrivateKeyPEM: ECDSA P-256 (client-go util/keyutil@v0.36.4)."""
    return openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout")


# ---------------------------------------------------------------------------------------------
# static pods
# ---------------------------------------------------------------------------------------------

def fnv128a(data: bytes) -> str:
    value = 0x6C62272E07BB014262B821756295C58D
    for byte in data:
        value = ((value ^ byte) * 0x0000000001000000000000000000013B) % (1 << 128)
    return f"{value:032x}"


def config_hash(pod: dict[str, Any], node: str, source: Path) -> str:
    """The pod's UID and kubernetes.io/config.hash (pkg/kubelet/config/common.go@v1.36.4 applyDefaults: FNV-128a
    of the decoded pod, then host:NODE and file:SOURCE; the pod is hashed here as canonical JSON)."""
    return fnv128a(json.dumps(pod, sort_keys=True).encode() + f"host:{node}file:{source}".encode())


def image_root(image: str, endpoint: str) -> Path | None:
    """IMAGE's root filesystem, or None if the container runtime cannot pull it (the pod waits in
    ErrImagePull). Pulled through the CRI when absent (imagePullPolicy IfNotPresent, the default for a tagged
    image: pkg/apis/core/v1/defaults.go@v1.36.4; pkg/kubelet/images/image_manager.go@v1.36.4), then mounted
    read-only as containerd's view of it (`ctr -n k8s.io images mount`: tests/lab/README.md "Images")."""
    directory = STATE / "rootfs" / re.sub(r"[^A-Za-z0-9_.-]", "_", image)
    if os.path.ismount(directory):
        return directory
    crictl = ["crictl", "--runtime-endpoint", endpoint, "--image-endpoint", endpoint]
    for argv in ([*crictl, "inspecti", image], [*crictl, "pull", image]):
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode == 0:
            break
    else:
        log(f"image {image}: {result.stderr.strip()}")
        return None
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["ctr", "--address", endpoint.removeprefix("unix://"), "-n", "k8s.io", "images", "mount",
                             image, str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        log(f"image {image}: {result.stderr.strip()}")
        return None
    return directory


def expand(text: str, env: dict[str, str]) -> str:
    """$(VAR) in command and args (third_party/forked/golang/expansion@v1.36.4): $$ is $, unknown stays."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


# Runs a container's process (argv: SPEC as JSON) in a mount namespace of its own (unshare --mount): its root is the
# image's root filesystem under a writable layer of its own (an overlay with its upper layer on a tmpfs, as the
# runtime's container snapshot), the pod's hostPath volumes and the host's /proc, /dev, /sys, /etc/hosts and
# /etc/resolv.conf (a host-network pod's) mounted in it, then chroot and exec: /proc/PID/root is the container's
# root, as for a container of the runtime (runc's pivot_root). Not imitated: the other namespaces, cgroups.
# The process the kubelet tracks is a parent in containerd-shim's place: it waits for the container's process and
# exits with its code (128 + the signal when killed), passing SIGTERM on (the kubelet's killpg reaches both; the
# parent ignores it and waits, so a stopped container is one whose process is gone). It also stands in for the
# runtime under `kubeadm reset`, which stops the kubelet and removes every pod sandbox through CRI before it cleans
# /var/lib/kubelet (cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go@v1.36.4 runCleanupNode, removeContainers):
# these containers are not CRI's, so the parent kills its process when the kubelet's state directory (the
# stand-in's record of its containers, spec["state"]) is gone, with SIGKILL as containerd's StopPodSandbox does
# (stopContainer with timeout 0, internal/cri/server/sandbox_stop.go@v2.1.5). Reset's removal is synchronous, so
# the parent looks every 50 ms: a `kubeadm join` right after the reset must find the ports free (Port-6443 ...).
CONTAINER = """import json, os, select, signal, subprocess, sys
spec = json.loads(sys.argv[1])
scratch, root = spec["scratch"], spec["scratch"] + "/root"
def mount(*args):
    subprocess.run(["mount", *args], check=True)
os.makedirs(scratch, exist_ok=True)
mount("-t", "tmpfs", "tmpfs", scratch)
for name in ("upper", "work", "root"):
    os.mkdir(scratch + "/" + name)
mount("-t", "overlay", "overlay", "-o", f"lowerdir={spec['image']},upperdir={scratch}/upper,workdir={scratch}/work", root)
for source, target, read_only in spec["mounts"]:
    if not os.path.exists(source):
        continue
    destination = root + target
    if os.path.isdir(source):
        os.makedirs(destination, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        open(destination, "a").close()
    mount("--rbind", source, destination)
    if read_only:
        mount("-o", "remount,bind,ro", destination)
PASSED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
for number in PASSED:
    signal.signal(number, signal.SIG_IGN)
child = os.fork()
if child == 0:
    for number in (*PASSED, signal.SIGPIPE):  # a container starts with default dispositions (Python ignores SIGPIPE)
        signal.signal(number, signal.SIG_DFL)
    os.chroot(root)
    os.chdir(spec["workdir"])
    try:
        os.execve(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as error:  # the runtime's start error: exit code 128, as runc's
        print(f"exec {spec['argv'][0]}: {error}", file=sys.stderr)
        os._exit(128)
exited = os.pidfd_open(child)
while not select.select([exited], [], [], 0.05)[0]:
    if not os.path.isdir(spec["state"]):
        os.kill(child, signal.SIGKILL)
code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
sys.exit(128 - code if code < 0 else code)
"""


def container_mounts(pod: dict[str, Any], container: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(host path, container path, read-only) of CONTAINER's hostPath volumes, creating the DirectoryOrCreate and
    FileOrCreate ones as the kubelet does (pkg/volume/hostpath/host_path.go@v1.36.4 checkType), then the host's
    /proc, /dev, /sys (read-only), /etc/hosts and /etc/resolv.conf."""
    volumes = {v["name"]: v["hostPath"] for v in pod.get("spec", {}).get("volumes", []) if "hostPath" in v}
    mounts = []
    for mount in container.get("volumeMounts", []):
        host_path = volumes.get(mount["name"])
        if host_path is None:
            continue  # static pods can only have hostPath volumes worth mounting here
        path = Path(host_path["path"])
        if host_path.get("type") == "DirectoryOrCreate":
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        elif host_path.get("type") == "FileOrCreate" and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(0o644)
        mounts.append((str(path), mount["mountPath"], bool(mount.get("readOnly"))))
    return mounts + [("/proc", "/proc", False), ("/dev", "/dev", False), ("/sys", "/sys", True),
                     (hosts_file(pod), "/etc/hosts", False), ("/etc/resolv.conf", "/etc/resolv.conf", False)]


def hosts_file(pod: dict[str, Any]) -> str:
    """The /etc/hosts a host-network pod gets: the node's, plus its hostAliases (kube-vip reaches its local API server
    as `kubernetes`, its manifest's alias), written as the kubelet does (pkg/kubelet/kubelet_pods.go@v1.36.4
    nodeHostsFileContent, hostsEntriesFromHostAliases)."""
    aliases = pod.get("spec", {}).get("hostAliases") or []
    if not aliases:
        return "/etc/hosts"
    path = STATE / "etc-hosts" / f"{pod['metadata'].get('namespace', 'default')}_{pod['metadata']['name']}"
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = "".join(f"{a['ip']}\t{chr(9).join(a.get('hostnames', []))}\n" for a in aliases)
    path.write_text("# Kubernetes-managed hosts file (host network).\n" + Path("/etc/hosts").read_text()
                    + "\n# Entries added by HostAliases.\n" + entries)
    return str(path)


def container_process(pod: dict[str, Any], container: dict[str, Any], root: Path,
                      endpoint: str) -> tuple[Path, list[str], dict[str, str]] | None:
    """The program (unshare), argv and environment that run CONTAINER's process in its container (CONTAINER, in
    the image's root ROOT): command and args as the container runtime merges them with the image's (containerd
    internal/cri/opts/spec_opts.go@v2.1.5 WithProcessArgs: no command → the image's Entrypoint, and with no args
    either its Cmd), $(VAR) expanded. None when there is nothing to run ("no command specified")."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": socket.gethostname()}
    # valueFrom.fieldRef as the kubelet resolves it (kubelet_pods.go@v1.36.4 podFieldSelectorRuntimeValue; a static
    # pod's spec.nodeName is the node's, config/common.go applyDefaults): kube-vip's vip_nodename is spec.nodeName.
    fields = {"spec.nodeName": pod.get("spec", {}).get("nodeName") or socket.gethostname(),
              "metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"].get("namespace", "default")}
    env.update({e["name"]: fields.get(e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath"), "")
                if "valueFrom" in e else expand(str(e.get("value", "")), env) for e in container.get("env", [])})
    command, args = container.get("command", []), container.get("args", [])
    if not command:
        inspected = subprocess.run(["crictl", "--image-endpoint", endpoint, "inspecti", "-o", "json",
                                    container["image"]], capture_output=True, text=True)
        image = json.loads(inspected.stdout or "{}").get("info", {}).get("imageSpec", {}).get("config", {})
        command, args = image.get("Entrypoint") or [], args or image.get("Cmd") or []
    argv = [expand(str(a), env) for a in command + args]
    if not argv:
        return None
    binary = next((root / d.lstrip("/") / argv[0] for d in env["PATH"].split(":")
                   if "/" not in argv[0] and (root / d.lstrip("/") / argv[0]).is_file()),
                  root / argv[0].lstrip("/"))
    scratch = STATE / "containers" / f"{pod['metadata'].get('namespace', 'default')}_{pod['metadata']['name']}_{container['name']}"
    spec = {"scratch": str(scratch), "state": str(STATE), "image": str(root), "mounts": container_mounts(pod, container), "env": env,
            "workdir": container.get("workingDir") or "/", "argv": ["/" + str(binary.relative_to(root)), *argv[1:]]}
    return Path("/usr/bin/unshare"), ["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
                                      CONTAINER, json.dumps(spec)], env


# Runs a run-to-completion container's process and keeps its exit code in a file (argv: EXIT_FILE BINARY ARGV...),
# as the runtime keeps a container's across kubelet restarts: 128 + the signal when killed, 128 when it cannot
# start (runc's start error).
EXIT_RECORDER = """import os, subprocess, sys
try:
    code = subprocess.run(sys.argv[3:], executable=sys.argv[2]).returncode
except OSError as error:
    print(error, file=sys.stderr)
    code = 128
code = 128 - code if code < 0 else code
with open(sys.argv[1] + ".tmp", "w") as file:
    file.write(str(code))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"""


def process_start(pid: int) -> str | None:
    """The start time of a live process (to tell it from a later one with its PID), None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


class StaticPods:
    """The kubelet's file source (pkg/kubelet/config/file.go@v1.36.4: every file in staticPodPath not starting
    with ".") and the pod workers for its pods."""

    def __init__(self, directory: Path, node: str, node_ip: str, runtime_endpoint: str):
        self.directory, self.node, self.node_ip, self.runtime_endpoint = directory, node, node_ip, runtime_endpoint
        STATE.mkdir(parents=True, exist_ok=True)
        self.state_file = STATE / "static-pods.json"
        # manifest file -> {"pod", "hash", "containers": {name: {pid, start, restarts, started_at, next, backoff}}}
        self.pods: dict[str, dict[str, Any]] = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.probed: dict[tuple[str, str], bool] = {}
        # manifest file -> (its text, the pod, its config hash): parsed again only when the text changes (YAML in
        # Python takes 10 ms for kube-apiserver's manifest, and the files are read every second).
        self.parsed: dict[str, tuple[str, dict[str, Any], str]] = {}

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.pods))
        tmp.replace(self.state_file)

    def read(self) -> dict[str, tuple[dict[str, Any], str]]:
        found = {}
        for path in sorted(self.directory.iterdir()) if self.directory.is_dir() else []:
            if path.name.startswith(".") or not path.is_file():
                continue
            try:
                text = path.read_text()
                parsed = self.parsed.get(str(path))
                if parsed is None or parsed[0] != text:
                    pod = yaml.safe_load(text)
                    if not isinstance(pod, dict) or pod.get("kind") != "Pod":
                        continue
                    parsed = self.parsed[str(path)] = (text, pod, config_hash(pod, self.node, path))
            except (OSError, yaml.YAMLError) as error:
                log(f"static pod {path}: {error}")
                continue
            found[str(path)] = parsed[1:]
        return found

    def sync(self) -> None:
        with LOCK:
            found = self.read()
            for source, state in list(self.pods.items()):
                if found.get(source, (None, None))[1] != state["hash"]:
                    self.kill(state)
                    del self.pods[source]
            for source, (pod, pod_hash) in found.items():
                state = self.pods.setdefault(source, {"pod": pod, "hash": pod_hash, "containers": {},
                                                      "seen": rfc3339()})
                for container in pod.get("spec", {}).get("containers", []):
                    self.run(state, container)
            self.save()

    def run(self, state: dict[str, Any], container: dict[str, Any]) -> None:
        """Start CONTAINER unless it runs; an exited one after the back-off (restartPolicy Always, the default,
        pkg/apis/core/v1/defaults.go@v1.36.4; back-off doubling from BACKOFF up to MAX_BACKOFF)."""
        c = state["containers"].setdefault(container["name"], {"restarts": -1, "backoff": 0.0, "next": 0.0})
        if c.get("pid") and process_start(c["pid"]) == c.get("start"):
            return
        if c.get("pid"):
            log(f"{state['pod']['metadata']['name']}/{container['name']}: process {c['pid']} exited")
            c["pid"] = None
            c["backoff"] = min(MAX_BACKOFF, c["backoff"] * 2 or BACKOFF)
            c["next"] = time.time() + c["backoff"]
            c["reason"] = "CrashLoopBackOff"
        if time.time() < c["next"]:
            return
        root = image_root(container.get("image", ""), self.runtime_endpoint)
        if root is None:
            c["reason"] = "ErrImagePull"
            return
        found = container_process(state["pod"], container, root, self.runtime_endpoint)
        if found is None:
            c["reason"] = "CreateContainerError"
            return
        binary, argv, env = found
        pod = state["pod"]
        logs = Path("/var/log/pods") / f"{pod['metadata'].get('namespace', 'default')}_{pod_name(pod, self.node)}_{state['hash']}" / container["name"]
        logs.mkdir(parents=True, exist_ok=True)
        c["restarts"] += 1
        with open(logs / f"{c['restarts']}.log", "ab") as out:
            try:
                process = subprocess.Popen([str(binary), *argv[1:]], executable=str(binary), env=env,
                                           cwd=container.get("workingDir", "/"), stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=out, start_new_session=True)
            except OSError as error:
                c.update(reason="RunContainerError", pid=None, next=time.time() + BACKOFF)
                log(f"{pod['metadata']['name']}/{container['name']}: {error}")
                return
        c.update(pid=process.pid, start=process_start(process.pid), started_at=rfc3339(), reason=None)
        log(f"{pod['metadata']['name']}/{container['name']}: started {container.get('image')} as {process.pid}")

    def kill(self, state: dict[str, Any]) -> None:
        """killContainer (pkg/kubelet/kuberuntime/kuberuntime_container.go@v1.36.4): SIGTERM, SIGKILL after the
        pod's terminationGracePeriodSeconds."""
        grace = state["pod"].get("spec", {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
        running = [c for c in state["containers"].values() if c.get("pid") and process_start(c["pid"]) == c.get("start")]
        for c in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c["pid"], signal.SIGTERM)
        deadline = time.time() + grace
        while any(process_start(c["pid"]) == c["start"] for c in running) and time.time() < deadline:
            time.sleep(0.1)
        for c in running:
            if process_start(c["pid"]) == c["start"]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c["pid"], signal.SIGKILL)
        log(f"static pod {state['pod']['metadata']['name']} stopped")

    def reap(self) -> None:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass

    def ready(self, state: dict[str, Any], container: dict[str, Any]) -> bool:
        """Running, and its readiness probe (and once its startup probe) answering (HTTP probes only)."""
        c = state["containers"].get(container["name"], {})
        if not c.get("pid") or process_start(c["pid"]) != c.get("start"):
            return False
        key = (state["hash"], container["name"])
        if container.get("startupProbe") and not self.probed.get(key):
            self.probed[key] = probe(container["startupProbe"], self.node_ip, container)
            if not self.probed[key]:
                return False
        return probe(container["readinessProbe"], self.node_ip, container) if container.get("readinessProbe") else True


def probe(spec: dict[str, Any], node_ip: str, container: dict[str, Any]) -> bool:
    """An httpGet probe (pkg/probe/http@v1.36.4: 200-399 succeeds; TLS not verified; a named port is the
    container's port of that name, pkg/kubelet/prober/prober.go@v1.36.4 ResolveContainerPort); other kinds pass."""
    get = spec.get("httpGet")
    if not get:
        return True
    port = get["port"]
    if isinstance(port, str) and not port.isdigit():
        port = next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == port), 0)
    host, port = get.get("host") or node_ip, int(port)
    if get.get("scheme", "HTTP") == "HTTPS":
        connection = http.client.HTTPSConnection(host, port, timeout=spec.get("timeoutSeconds", 1) + 1,
                                                 context=ssl._create_unverified_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=spec.get("timeoutSeconds", 1) + 1)
    try:
        connection.request("GET", get.get("path", "/"))
        return 200 <= connection.getresponse().status < 400
    except OSError:
        return False
    finally:
        connection.close()


def pod_name(pod: dict[str, Any], node: str) -> str:
    """generatePodName (pkg/kubelet/config/common.go@v1.36.4): NAME-<lowercased node name>."""
    return f"{pod['metadata']['name']}-{node.lower()}"


# ---------------------------------------------------------------------------------------------
# the kubelet
# ---------------------------------------------------------------------------------------------

class Kubelet:
    def __init__(self, flags: dict[str, str], config: dict[str, Any]):
        self.flags, self.config = flags, config
        self.hostname = (flags.get("hostname-override") or socket.gethostname()).strip().lower()
        self.node = self.hostname
        self.node_ip = flags.get("node-ip") or socket.gethostbyname(socket.gethostname())
        self.kubeconfig = Path(flags.get("kubeconfig", "/etc/kubernetes/kubelet.conf"))
        self.bootstrap = Path(flags["bootstrap-kubeconfig"]) if flags.get("bootstrap-kubeconfig") else None
        cert_dir = Path(flags.get("cert-dir", "/var/lib/kubelet/pki"))
        self.client_store = CertStore(cert_dir, "kubelet-client")
        self.serving_store = CertStore(cert_dir, "kubelet-server")
        self.runtime_endpoint = flags.get("container-runtime-endpoint", "unix:///run/containerd/containerd.sock")
        self.static = StaticPods(Path(config.get("staticPodPath", "/etc/kubernetes/manifests")), self.node, self.node_ip,
                                 self.runtime_endpoint)
        self.node_uid: str | None = None
        self.pod_ips: dict[str, str] = {}
        self.first_ready = rfc3339()
        self.rotation_due = False

    # -- client certificate ------------------------------------------------------------------

    def client(self) -> Client:
        """The API client of buildKubeletClientConfig (cmd/kubelet/app/server.go@v1.36.4) with rotation on:
        a valid kubelet.conf is used (its embedded certificate put into the store first, as
        getCurrentCertificateOrBootstrap in client-go util/certificate/certificate_manager.go@v0.36.4 does,
        and rotated in the background: certificate_loop); otherwise kubelet.conf is written to point at the store
        (bootstrap.LoadClientConfig) and the certificate comes from a CSR made with bootstrap-kubelet.conf."""
        rotate = self.config.get("rotateCertificates", False)
        current = kubeconfig_cert(self.kubeconfig)
        if current is not None and cert_valid(current):
            if rotate and not self.client_store.valid():
                _, user = kubeconfig_context(self.kubeconfig.read_bytes())
                if "client-certificate-data" in user:
                    self.client_store.update(base64.b64decode(user["client-certificate-data"]),
                                             base64.b64decode(user["client-key-data"]))
                    self.rotation_due = True
            return client_for(self.kubeconfig, self.client_store.current if rotate and self.client_store.valid() else None)
        if self.bootstrap is None or not self.bootstrap.exists():
            raise RuntimeError(f"unable to load bootstrap kubeconfig: {self.bootstrap} does not exist")
        self.write_kubeconfig()
        self.rotate_client(client_for(self.bootstrap))
        return client_for(self.kubeconfig)

    def rotate_client(self, client: Client) -> None:
        """requestNodeCertificate (bootstrap.go@v1.36.4): a kubernetes.io/kube-apiserver-client-kubelet CSR with
        a digested name, usages digital signature and client auth (ECDSA key)."""
        key_path = self.client_store.directory / "kubelet-client.key.tmp"  # tmpPrivateKeyFile: reused on retry
        if not key_path.exists():
            self.client_store.directory.mkdir(parents=True, exist_ok=True)
            key_path.write_bytes(new_key())
            key_path.chmod(0o600)
        key = key_path.read_bytes()
        cert = request_certificate(client, key, "kubernetes.io/kube-apiserver-client-kubelet", self.node,
                                   ["digital signature", "client auth"], digested=True)
        self.client_store.update(cert, key)
        key_path.unlink()
        log(f"client certificate written to {self.client_store.current}")

    def write_kubeconfig(self) -> None:
        """writeKubeconfigFromBootstrapping (bootstrap.go@v1.36.4): the bootstrap server and CA, the store's
        current pair as client certificate and key."""
        cluster = dict(kubeconfig_context(self.bootstrap.read_bytes())[0])
        if "certificate-authority" in cluster:
            cluster["certificate-authority-data"] = base64.b64encode(
                Path(cluster.pop("certificate-authority")).read_bytes()).decode()
        pem = str(self.client_store.current)
        kubeconfig = {"apiVersion": "v1", "kind": "Config",
                      "clusters": [{"name": "default-cluster", "cluster": cluster}],
                      "users": [{"name": "default-auth", "user": {"client-certificate": pem, "client-key": pem}}],
                      "contexts": [{"name": "default-context",
                                    "context": {"cluster": "default-cluster", "namespace": "default",
                                                "user": "default-auth"}}],
                      "current-context": "default-context", "preferences": {}}
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig))
        self.kubeconfig.chmod(0o600)

    def serving_certificate(self, client: Client) -> None:
        """NewKubeletServerCertificateManager (pkg/kubelet/certificate/kubelet.go@v1.36.4): a
        kubernetes.io/kubelet-serving CSR for the node's addresses (hostnames as DNS names, IPs as IPs),
        usages digital signature and server auth (ECDSA key)."""
        if not self.config.get("serverTLSBootstrap") or self.serving_store.valid():
            return
        key = new_key()
        sans = [f"DNS:{self.hostname}", f"IP:{self.node_ip}"]
        cert = request_certificate(client, key, "kubernetes.io/kubelet-serving", self.node,
                                   ["digital signature", "server auth"], sans)
        self.serving_store.update(cert, key)
        log(f"serving certificate written to {self.serving_store.current}")

    # -- the Node ----------------------------------------------------------------------------

    def register(self, client: Client) -> None:
        """registerWithAPIServer / initialNode (pkg/kubelet/kubelet_node_status.go@v1.36.4): the Node with the
        kubelet's labels, --node-labels, and --register-with-taints / registerWithTaints; an existing Node
        of that name is taken as it is."""
        labels = {"kubernetes.io/hostname": self.hostname, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
        for pair in filter(None, self.flags.get("node-labels", "").split(",")):
            key, _, value = pair.partition("=")
            labels[key] = value
        taints = [parse_taint(t) for t in filter(None, self.flags.get("register-with-taints", "").split(","))]
        taints += self.config.get("registerWithTaints") or []
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": labels,
                             "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {"taints": taints} if taints else {}}
        try:
            created = client.request("POST", "/api/v1/nodes", node)
            log(f"node {self.node} registered")
        except ApiError as error:
            if error.status != 409:
                raise
            created = client.request("GET", f"/api/v1/nodes/{self.node}")
        self.node_uid = created["metadata"]["uid"]

    def node_status(self, client: Client) -> dict[str, Any]:
        """The status the kubelet's setters post (pkg/kubelet/nodestatus/setters.go@v1.36.4), always Ready."""
        memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
        stat = os.statvfs("/var/lib/kubelet")
        resources = {"cpu": str(os.cpu_count()), "memory": f"{memory}Ki", "pods": str(self.config.get("maxPods", 110)),
                     "ephemeral-storage": f"{stat.f_blocks * stat.f_frsize // 1024}Ki"}
        now = rfc3339()
        conditions = [
            {"type": kind, "status": "False", "reason": f"KubeletHas{reason}", "message": message,
             "lastHeartbeatTime": now, "lastTransitionTime": self.first_ready}
            for kind, reason, message in (("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
                                          ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
                                          ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"))]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                           "lastTransitionTime": self.first_ready})
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        machine_id = Path("/etc/machine-id").read_text().strip() if Path("/etc/machine-id").exists() else boot_id
        return {"status": {
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.node_ip}, {"type": "Hostname", "address": self.hostname}],
            "capacity": resources, "allocatable": resources,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.get("port", 10250)}},
            "nodeInfo": {"machineID": machine_id, "systemUUID": machine_id, "bootID": boot_id,
                         "kernelVersion": os.uname().release, "osImage": os_image(),
                         "containerRuntimeVersion": runtime_version(self.runtime_endpoint),
                         "kubeletVersion": f"v{VERSION}", "operatingSystem": "linux", "architecture": "amd64"},
            # What the API server reads to proxy exec's WebSocket to the kubelet as it is (ExecREST.Connect,
            # pkg/registry/core/pod/rest/subresources.go@v1.36.4): the one declared feature this kubelet implements
            # (component-helpers@v0.36.4 nodedeclaredfeatures/features/extendwebsocketstokubelet).
            "declaredFeatures": ["ExtendWebSocketsToKubelet"]}}

    def heartbeat(self, client: Client) -> None:
        """updateNodeStatus (every nodeStatusUpdateFrequency, 10 s) and the node lease controller's renewal
        (pkg/kubelet/nodelease, component-helpers/apimachinery/lease@v0.36.4: kube-node-lease/NODE, 40 s)."""
        client.request("PATCH", f"/api/v1/nodes/{self.node}/status", self.node_status(client),
                       "application/merge-patch+json")
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node}"
        lease = client.get(path)
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": self.config.get("nodeLeaseDurationSeconds", 40),
                "renewTime": micro_time()}
        if lease is None:
            client.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                           {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                            "metadata": {"name": self.node, "namespace": "kube-node-lease",
                                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.node,
                                                              "uid": self.node_uid}]},
                            "spec": spec})
        else:
            lease["spec"].update(spec)
            client.request("PUT", path, lease)

    # -- pods --------------------------------------------------------------------------------

    def mirror_pods(self, client: Client) -> None:
        """Mirror pods (pkg/kubelet/pod/mirror_client.go@v1.36.4 CreateMirrorPod; pkg/kubelet/config/common.go
        applyDefaults): NAME-NODE with config.hash/config.mirror = the config hash, config.source file,
        config.seen, owned by the Node, spec.nodeName set, tolerating every NoExecute taint. A mirror pod
        of another hash is deleted and created again; one without a manifest is deleted."""
        with LOCK:
            pods = {pod_name(s["pod"], self.node): s for s in self.static.pods.values()}
            wanted = {name: json.loads(json.dumps(s)) for name, s in pods.items()}
        existing = client.request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.node}")["items"]
        mirrors = {p["metadata"]["name"]: p for p in existing
                   if "kubernetes.io/config.mirror" in p["metadata"].get("annotations", {})}
        for name, mirror in mirrors.items():
            state = wanted.get(name)
            if state is None or mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"] != state["hash"]:
                self.delete_pod(client, mirror)
        for name, state in wanted.items():
            mirror = mirrors.get(name)
            if mirror is None or mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"] != state["hash"]:
                mirror = self.create_mirror(client, name, state)
            self.report_status(client, mirror, state)

    def create_mirror(self, client: Client, name: str, state: dict[str, Any]) -> dict[str, Any]:
        pod = json.loads(json.dumps(state["pod"]))
        meta = pod.setdefault("metadata", {})
        namespace = meta.get("namespace") or "default"
        meta.update(name=name, namespace=namespace, ownerReferences=[
            {"apiVersion": "v1", "kind": "Node", "name": self.node, "uid": self.node_uid, "controller": True}])
        meta.pop("creationTimestamp", None)
        meta.setdefault("annotations", {}).update({
            "kubernetes.io/config.hash": state["hash"], "kubernetes.io/config.mirror": state["hash"],
            "kubernetes.io/config.source": "file", "kubernetes.io/config.seen": state["seen"]})
        spec = pod.setdefault("spec", {})
        spec["nodeName"] = self.node
        tolerations = spec.setdefault("tolerations", [])
        if {"operator": "Exists", "effect": "NoExecute"} not in tolerations:
            tolerations.append({"operator": "Exists", "effect": "NoExecute"})
        pod.pop("status", None)
        log(f"mirror pod {namespace}/{name} created")
        return client.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)

    def report_status(self, client: Client, pod: dict[str, Any], state: dict[str, Any] | None) -> None:
        """The status manager's patch of pods/status (pkg/kubelet/status/status_manager.go@v1.36.4): static pods
        with their processes' state; pods of the API server as if their containers ran."""
        meta, spec = pod["metadata"], pod["spec"]
        now = rfc3339()
        statuses, all_ready = [], True
        for container in spec.get("containers", []):
            if state is not None:
                c = state["containers"].get(container["name"], {})
                with LOCK:
                    ready = self.static.ready(state, container)
                running = bool(c.get("pid")) and process_start(c["pid"]) == c.get("start")
                container_state = ({"running": {"startedAt": c.get("started_at", now)}} if running
                                   else {"waiting": {"reason": c.get("reason") or "ContainerCreating"}})
                restarts = max(c.get("restarts", 0), 0)
            else:
                ready, container_state, restarts = True, {"running": {"startedAt": meta.get("creationTimestamp", now)}}, 0
            all_ready = all_ready and ready
            statuses.append({"name": container["name"], "image": container.get("image", ""), "imageID": "",
                             "containerID": f"containerd://{hashlib.sha256((meta['uid'] + container['name']).encode()).hexdigest()}",
                             "ready": ready, "started": "running" in container_state, "restartCount": restarts,
                             "state": container_state})
        phase = "Running" if any("running" in s["state"] for s in statuses) else "Pending"
        old = pod.get("status", {})
        if old.get("phase") == phase and [c.get("ready") for c in old.get("containerStatuses", [])] == \
                [s["ready"] for s in statuses] and [c.get("restartCount") for c in old.get("containerStatuses", [])] == \
                [s["restartCount"] for s in statuses]:
            return
        ip = self.node_ip if spec.get("hostNetwork") else self.pod_ip(client, meta["uid"])
        ready_text = "True" if all_ready and phase == "Running" else "False"
        conditions = [{"type": kind, "status": status, "lastTransitionTime": now, "lastProbeTime": None}
                      for kind, status in (("PodReadyToStartContainers", "True"), ("Initialized", "True"),
                                           ("Ready", ready_text), ("ContainersReady", ready_text),
                                           ("PodScheduled", "True"))]
        status = {"phase": phase, "conditions": conditions, "hostIP": self.node_ip, "hostIPs": [{"ip": self.node_ip}],
                  "startTime": old.get("startTime", now), "containerStatuses": statuses,
                  **({"podIP": ip, "podIPs": [{"ip": ip}]} if ip else {})}
        client.request("PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                       {"metadata": {"uid": meta["uid"]}, "status": status}, "application/merge-patch+json")

    def pod_ip(self, client: Client, uid: str) -> str | None:
        """An address of the node's podCIDR (allocated by kube-controller-manager), for pods that do not run."""
        if uid not in self.pod_ips:
            cidr = ((client.get(f"/api/v1/nodes/{self.node}") or {}).get("spec") or {}).get("podCIDR")
            if not cidr:
                return None
            base = int.from_bytes(socket.inet_aton(cidr.split("/")[0]), "big")
            self.pod_ips[uid] = socket.inet_ntoa((base + 2 + len(self.pod_ips)).to_bytes(4, "big"))
        return self.pod_ips[uid]

    def delete_pod(self, client: Client, pod: dict[str, Any]) -> None:
        """Deleted with grace period 0 and a UID precondition, as DeleteMirrorPod (pkg/kubelet/pod/mirror_client.go
        @v1.36.4) and the status manager (see bound_pods) do."""
        meta = pod["metadata"]
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": meta["uid"]},
                "gracePeriodSeconds": 0}
        with contextlib.suppress(ApiError):
            client.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body)
            log(f"pod {meta['namespace']}/{meta['name']} deleted")

    def bound_pods(self, client: Client) -> None:
        """Pods the scheduler (or a DaemonSet) bound to this node: reported Running and Ready, NOT RUN. A pod
        with a deletionTimestamp is deleted with grace period 0 once its containers would have stopped
        (status_manager.go@v1.36.4 syncPod: NewDeleteOptions(0) with a UID precondition)."""
        pods = client.request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.node}")["items"]
        for pod in pods:
            if "kubernetes.io/config.mirror" in pod["metadata"].get("annotations", {}):
                continue
            if pod["metadata"].get("deletionTimestamp"):
                self.delete_pod(client, pod)
            elif pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                continue
            elif pod["spec"].get("restartPolicy", "Always") != "Always":
                self.run_to_completion(client, pod)
            else:
                self.report_status(client, pod, None)

    def run_to_completion(self, client: Client, pod: dict[str, Any]) -> None:
        """A bound pod whose containers run to completion (restartPolicy Never or OnFailure: a Job's, such as the
        pause -v of kubeadm upgrade's CreateJob health check, cmd/kubeadm/app/phases/upgrade/health.go@v1.36.4):
        unlike other bound pods its containers DO run, as host processes from their images like static pods',
        each once (again after a failure under OnFailure). The pod Succeeded when every container exited 0, Failed
        when one did not under Never, else Running or Pending (pkg/kubelet/kubelet_pods.go@v1.36.4 getPhase)."""
        meta, spec = pod["metadata"], pod["spec"]
        directory = STATE / "completions" / meta["uid"]
        directory.mkdir(parents=True, exist_ok=True)
        statuses = []
        for container in spec.get("containers", []):
            name = container["name"]
            exit_file, started = directory / f"{name}.exit", directory / f"{name}.started"
            code = int(exit_file.read_text()) if exit_file.exists() else None
            if code not in (None, 0) and spec["restartPolicy"] == "OnFailure":
                exit_file.unlink()
                started.unlink()
                code = None
            waiting = self.start_once(pod, container, exit_file) if code is None and not started.exists() else None
            if waiting is None and not started.exists():
                started.write_text(rfc3339())
            state = ({"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": started.read_text(), "finishedAt": rfc3339(exit_file.stat().st_mtime)}}
                     if code is not None else {"waiting": {"reason": waiting}} if waiting
                     else {"running": {"startedAt": started.read_text()}})
            statuses.append({"name": name, "image": container.get("image", ""), "imageID": "", "ready": "running" in state,
                             "started": "running" in state, "restartCount": 0, "state": state})
        codes = [s["state"].get("terminated", {}).get("exitCode") for s in statuses]
        phase = ("Succeeded" if all(c == 0 for c in codes) else "Failed" if None not in codes
                 else "Running" if any("running" in s["state"] for s in statuses) else "Pending")
        old = pod.get("status", {})
        if old.get("phase") == phase and [list(c.get("state", {})) for c in old.get("containerStatuses", [])] == \
                [list(s["state"]) for s in statuses]:
            return
        ready = "True" if phase == "Running" and all(s["ready"] for s in statuses) else "False"
        now = rfc3339()
        conditions = [{"type": kind, "status": status, "lastTransitionTime": now, "lastProbeTime": None}
                      for kind, status in (("PodReadyToStartContainers", "True"), ("Initialized", "True"),
                                           ("Ready", ready), ("ContainersReady", ready), ("PodScheduled", "True"))]
        ip = self.node_ip if spec.get("hostNetwork") else self.pod_ip(client, meta["uid"])
        status = {"phase": phase, "conditions": conditions, "hostIP": self.node_ip, "hostIPs": [{"ip": self.node_ip}],
                  "startTime": old.get("startTime", now), "containerStatuses": statuses,
                  **({"podIP": ip, "podIPs": [{"ip": ip}]} if ip else {})}
        client.request("PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                       {"metadata": {"uid": meta["uid"]}, "status": status}, "application/merge-patch+json")
        log(f"pod {meta['namespace']}/{meta['name']}: {phase}")

    def start_once(self, pod: dict[str, Any], container: dict[str, Any], exit_file: Path) -> str | None:
        """Starts CONTAINER of a run-to-completion POD through EXIT_RECORDER; else why it waits (tried again)."""
        root = image_root(container.get("image", ""), self.runtime_endpoint)
        if root is None:
            return "ErrImagePull"
        found = container_process(pod, container, root, self.runtime_endpoint)
        if found is None:
            return "CreateContainerError"
        binary, argv, env = found
        meta = pod["metadata"]
        logs = Path("/var/log/pods") / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / container["name"]
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "0.log", "ab") as out:
            subprocess.Popen([sys.executable, "-c", EXIT_RECORDER, str(exit_file), str(binary), *argv],
                             env=env, cwd=container.get("workingDir", "/"), stdin=subprocess.DEVNULL, stdout=out,
                             stderr=out, start_new_session=True)
        log(f"pod {meta['namespace']}/{meta['name']}/{container['name']}: started {binary} to completion")
        return None

    # -- loops -------------------------------------------------------------------------------

    def certificate_loop(self, serving: bool) -> None:
        """The client and serving certificate managers, each in the background as the kubelet's (their
        CSRs wait for approval while the kubelet goes on with the certificate it has)."""
        while True:
            try:
                if serving and self.node_uid is not None:
                    self.serving_certificate(client_for(self.kubeconfig, self.client_store.current
                                                        if self.client_store.valid() else None))
                elif not serving and self.rotation_due:
                    self.rotate_client(client_for(self.kubeconfig, self.client_store.current))
                    self.rotation_due = False
            except (OSError, ApiError, RuntimeError, subprocess.CalledProcessError, KeyError, ValueError) as error:
                log(f"certificate manager: {error!r}")
            time.sleep(2)

    def static_loop(self) -> None:
        while True:
            try:
                self.static.sync()
                self.static.reap()
            except Exception as error:  # noqa: BLE001 (the kubelet logs and goes on)
                log(f"static pods: {error!r}")
            time.sleep(1)

    def api_loop(self) -> None:
        last_heartbeat = 0.0
        while True:
            try:
                client = self.client()  # read each time: rotation and kubeadm's kubelet-finalize change it
                if self.node_uid is None:
                    self.register(client)
                if time.time() - last_heartbeat >= self.config.get("nodeStatusUpdateSeconds", 10):
                    self.heartbeat(client)
                    last_heartbeat = time.time()
                self.mirror_pods(client)
                self.bound_pods(client)
            except (OSError, ApiError, RuntimeError, subprocess.CalledProcessError, KeyError, ValueError) as error:
                log(f"API: {error!r}")
            time.sleep(1)


def os_image() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return "Linux"


def runtime_version(endpoint: str) -> str:
    """`RuntimeName://RuntimeVersion` as the CRI Version call answers (asked through crictl)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["crictl", "--runtime-endpoint", endpoint, "version"], capture_output=True, text=True,
                             timeout=5).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        if "RuntimeName" in fields:
            return f"{fields['RuntimeName'].strip()}://{fields['RuntimeVersion'].strip()}"
    return "containerd://unknown"


class KubeletServer(http.server.BaseHTTPRequestHandler):
    """The kubelet's server on port 10250 (pkg/kubelet/server/server.go@v1.36.4), /exec of static pods' containers
    only, and only as the WebSocket v5.channel.k8s.io protocol that the API server proxies as it is to a node that
    declares ExtendWebSocketsToKubelet (not SPDY; no stdin or tty): the command runs as a host process from the
    container's image, like its container (container_process). Frames as k8s.io/streaming@v0.36.4
    pkg/httpstream/wsstream/conn.go writes them (binary, the channel's byte first: 1 stdout, 2 stderr, 3 the
    metav1.Status that k8s.io/apiserver@v0.36.4 pkg/util/proxy/streamtranslator.go ends with), then a normal close.
    Clients authenticate with a certificate of authentication.x509.clientCAFile; authorization (the webhook's
    SubjectAccessReview) is not imitated."""
    protocol_version = "HTTP/1.1"
    kubelet: "Kubelet"

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        query = urllib.parse.parse_qs(parts.query)
        if len(segments) != 4 or segments[0] != "exec":
            return self.fail(404, "404 page not found")
        if self.headers.get("Upgrade", "").lower() != "websocket" or "v5.channel.k8s.io" not in \
                [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]:
            return self.fail(400, "the lab's kubelet serves exec as WebSocket v5.channel.k8s.io only")
        if query.get("input", ["0"])[0] in ("1", "true") or query.get("tty", ["0"])[0] in ("1", "true"):
            return self.fail(400, "the lab's kubelet serves exec without stdin or tty")
        _, namespace, name, container_name = segments
        with LOCK:
            pod = next((state["pod"] for state in self.kubelet.static.pods.values()
                        if pod_name(state["pod"], self.kubelet.node) == name
                        and (state["pod"]["metadata"].get("namespace") or "default") == namespace), None)
        container = next((c for c in (pod or {}).get("spec", {}).get("containers", []) if c["name"] == container_name), None)
        root = image_root(container.get("image", ""), self.kubelet.runtime_endpoint) if container else None
        found = container_process(pod, {**container, "command": query.get("command", []), "args": []}, root,
                                  self.kubelet.runtime_endpoint) if root else None
        if found is None:
            return self.fail(404, f"container {container_name} of pod {namespace}/{name} not found, or no command")
        accept = base64.b64encode(hashlib.sha1(self.headers["Sec-WebSocket-Key"].encode()
                                               + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
        self.send_response(101)
        for header, value in (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept),
                              ("Sec-WebSocket-Protocol", "v5.channel.k8s.io")):
            self.send_header(header, value)
        self.end_headers()
        binary, argv, env = found
        try:
            done = subprocess.run([str(binary), *argv[1:]], executable=str(binary), env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, cwd="/")
            code, stdout, stderr = done.returncode, done.stdout, done.stderr
        except OSError as error:
            code, stdout, stderr = 128, b"", str(error).encode()
        if query.get("output", ["0"])[0] in ("1", "true") and stdout:
            self.frame(2, bytes([1]) + stdout)
        if query.get("error", ["0"])[0] in ("1", "true") and stderr:
            self.frame(2, bytes([2]) + stderr)
        status = {"metadata": {}, "status": "Success"} if code == 0 else {
            "metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        self.frame(2, bytes([3]) + json.dumps(status).encode())
        self.frame(8, (1000).to_bytes(2, "big"))
        self.close_connection = True

    def frame(self, opcode: int, payload: bytes) -> None:
        """One unmasked, final WebSocket frame (RFC 6455 5.2) from the server."""
        size = len(payload)
        header = bytes([0x80 | opcode]) + (bytes([size]) if size < 126 else bytes([126]) + size.to_bytes(2, "big")
                                           if size < 1 << 16 else bytes([127]) + size.to_bytes(8, "big"))
        self.wfile.write(header + payload)
        self.wfile.flush()

    def fail(self, code: int, message: str) -> None:
        body = message.encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class TLSServer(http.server.ThreadingHTTPServer):
    """HTTPS with the kubelet's current serving certificate, read at each connection as the kubelet's certificate
    manager hands out the newest (pkg/kubelet/certificate/kubelet.go@v1.36.4); without one the handshake fails. With
    serverTLSBootstrap false the kubelet's self-signed pair, cert-dir/kubelet.crt and kubelet.key
    (pkg/kubelet/kubelet.go@v1.36.4 InitializeTLS)."""
    kubelet: "Kubelet"

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        kubelet = self.kubelet
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(kubelet.config.get("authentication", {}).get("x509", {}).get("clientCAFile"))
        try:
            if kubelet.config.get("serverTLSBootstrap"):
                context.load_cert_chain(kubelet.serving_store.current)
            else:
                pair = kubelet.serving_store.directory / "kubelet.crt", kubelet.serving_store.directory / "kubelet.key"
                if not pair[0].exists():
                    pair[0].parent.mkdir(parents=True, exist_ok=True)
                    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                            "-days", "365", "-subj", f"/CN={kubelet.hostname}@{int(time.time())}",
                            "-addext", f"subjectAltName=DNS:{kubelet.hostname},IP:{kubelet.node_ip}",
                            "-keyout", str(pair[1]), "-out", str(pair[0]))
                context.load_cert_chain(*pair)
            return context.wrap_socket(connection, server_side=True), address
        except (OSError, ssl.SSLError):
            connection.close()
            raise


class Healthz(http.server.BaseHTTPRequestHandler):
    """The kubelet's healthz server (pkg/kubelet/server/server.go@v1.36.4 ListenAndServeKubeletHealthzServer)."""

    def do_GET(self) -> None:
        body = b"ok" if self.path.split("?")[0] == "/healthz" else b"404 page not found\n"
        self.send_response(200 if body == b"ok" else 404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def main(argv: list[str]) -> None:
    flags = parse_flags(argv)
    if "version" in flags:
        print(f"Kubernetes v{VERSION}")
        return
    if "config" not in flags:
        fail("the lab's kubelet stand-in needs --config (10-kubeadm.conf passes it)")
    path = Path(flags["config"])
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        fail(f"failed to load kubelet config file, path: {path}, error: failed to load Kubelet config file {path}, "
             f"error failed to read kubelet config file \"{path}\", error: {error}")
    if config.get("kind") != "KubeletConfiguration":
        fail(f"failed to load kubelet config file, path: {path}: kind is {config.get('kind')!r}, not KubeletConfiguration")
    kubelet = Kubelet(flags, config)
    server = http.server.ThreadingHTTPServer((config.get("healthzBindAddress", "127.0.0.1"),
                                              int(config.get("healthzPort", 10248))), Healthz)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # containers outlive the kubelet
    threading.Thread(target=server.serve_forever, daemon=True).start()
    KubeletServer.kubelet = TLSServer.kubelet = kubelet
    exec_server = TLSServer((config.get("address", "0.0.0.0"), int(config.get("port", 10250))), KubeletServer)
    threading.Thread(target=exec_server.serve_forever, daemon=True).start()
    threading.Thread(target=kubelet.static_loop, daemon=True).start()
    for serving in (False, True):
        threading.Thread(target=kubelet.certificate_loop, args=(serving,), daemon=True).start()
    log(f"kubelet v{VERSION} (lab stand-in) started as node {kubelet.node}")
    kubelet.api_loop()


if __name__ == "__main__":
    main(sys.argv[1:])
