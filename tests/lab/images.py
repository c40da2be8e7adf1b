"""The lab's container images and the registry that serves them (issue 12).

Images: for a stack config, the images the real kubeadm lists for the program's own init configuration
(`kubeadm config images list --config FILE`), plus kube-vip's when the config uses kube-vip, or haproxy's and
keepalived's with haproxy-keepalived (the images of the program's manifests, controlPlane.loadBalancer.images).
Each is a real OCI image built
with crane (append a layer to the empty base, then mutate its config), holding the real binary where the
upstream image has it, with the upstream entrypoint and cmd:

- kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy: `/usr/local/bin/NAME` and
  kube-log-runner as `/go-runner`, `ENTRYPOINT ["/go-runner"]` (k8s.io/kubernetes@v1.36.4
  build/server-image/Dockerfile and kube-apiserver/Dockerfile; kube-log-runner is
  staging/src/k8s.io/component-base/logs/kube-log-runner, hack/lib/golang.sh). Upstream's base images
  (go-runner's distroless, distroless-iptables for kube-proxy) and kube-apiserver's file capability
  (setcap cap_net_bind_service) are left out: the kubelet stand-in runs the binaries as root.
- etcd: `/usr/local/bin/{etcd,etcdctl,etcdutl}`, working directory /var/lib/etcd/ (and /var/etcd/),
  `CMD ["/usr/local/bin/etcd"]`, ports 2379 and 2380 (etcd-io/etcd Dockerfile@v3.6.8; registry.k8s.io/etcd
  3.6 images are etcd's own build, no shell: kubernetes/kubernetes#134251), built at the version the tag
  names (3.6.8-0 → v3.6.8).
- kube-vip: `/kube-vip` and `/etc/ssl/certs/ca-certificates.crt`, `ENTRYPOINT ["/kube-vip"]` (kube-vip
  Dockerfile@v1.2.2). The binary is v1.2.2 under the manifest's v1.2.3 tag: the proxy does not serve v1.2.3,
  and v1.2.2 never takes its lease as a control-plane static pod (tests/kube_vip_tools.py says why). The certificate bundle is
  this machine's Debian one, not upstream's Alpine one.
- haproxy and keepalived: **Debian's** haproxy 2.6 and keepalived 2.2.7 (this machine's, with the shared
  libraries ldd finds; keepalived's image also sh and curl for the program's check script) at the paths and with
  the entrypoints of the images the program names (haproxy:2.8, osixia/keepalived:2.0.20; image_spec cites
  them): real programs, not the images' builds.
- pause: the real pause, k8s.io/kubernetes@v1.36.4 build/pause/linux/pause.c compiled with this machine's gcc
  as build/pause/Makefile does (`-Os -Wall -Werror -static -DVERSION=v$(TAG)-$(REV)`; REV, a `git describe`,
  is not in the module, so VERSION is v$(TAG)), at `/pause` with `USER 65535:65535` and `ENTRYPOINT ["/pause"]`
  (build/pause/Dockerfile@v1.36.4). The kubelet stand-in runs no sandboxes, but it runs run-to-completion
  pods' containers, such as the pause `-v` of kubeadm upgrade's CreateJob health check.
- **CoreDNS is a placeholder**: a large module we do not build for a Deployment the kubelet stand-in never
  runs. It holds a text file at the upstream entrypoint path (`/coredns`: coredns/coredns Dockerfile@v1.14.2,
  `USER nonroot:nonroot`, ports 53 and 53/udp) and the marker `/kclab-placeholder`.

Images are built once per content (the hash of the binaries and the image settings) into OCI layouts
under tests/lab/.cache/images/, through a throwaway crane registry on this machine's loopback (crane
mutate works on a registry).

The registry: `crane registry serve` (cmd/crane/cmd/serve.go@v0.22.1: `--address`, `--disk` for blobs;
manifests stay in memory, so every lab run pushes its images again; blobs persist in the cache and are
not uploaded twice) on the client namespace's loopback, behind Debian's haproxy, which terminates TLS on
REGISTRY (port 443): crane serves plain HTTP only (serve.go calls http.Server.Serve, no TLS flags). The
certificate comes from a lab CA that each lab host trusts through its system store
(/usr/local/share/ca-certificates + update-ca-certificates), as an air-gapped site's hosts trust their
corporate CA; containerd reads that store (Go's crypto/x509 system roots) when it pulls.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from tests.upstream_tools import go_tool

LAB_DIR = Path(__file__).resolve().parent
IMAGE_CACHE = LAB_DIR / ".cache" / "images"
# Kept across labs, so that a blob is pushed once. The registries of two lab streams share it: crane writes a blob to a
# temporary file beside it and renames it into place (pkg/registry/blobs_disk.go@v0.22.1 Put).
BLOB_CACHE = LAB_DIR / ".cache" / "registry-blobs"
CRANE_MODULE = "github.com/google/go-containerregistry"
CRANE_VERSION = "v0.22.1"
# Where the registry listens inside the client namespace (hosts.CLIENT_NS): crane on loopback, haproxy's
# TLS frontend on the client address (hosts.CLIENT_ADDRESS) at 443, so image names carry no port.
CRANE_ADDRESS = "127.0.0.1:5000"
REPOSITORY_PATH = "k8s"
CA_FILE = "kclab-registry-ca.crt"
# Bumped when what an image holds changes without its inputs changing (part of every image's cache key).
LAYOUT_REVISION = "1"


def build_crane() -> Path:
    """crane CRANE_VERSION, stamped as its release build does (.goreleaser.yml@v0.22.1: `-X …/cmd/crane/cmd.Version`
    and `-X …/pkg/v1/remote/transport.Version`, the User-Agent's, both the tag without its `v`)."""
    version = CRANE_VERSION.removeprefix("v")
    stamp = f"{CRANE_MODULE}/cmd/crane/cmd.Version"
    return go_tool("crane", CRANE_MODULE, CRANE_VERSION, f"{CRANE_MODULE}/cmd/crane", stamp,
                   stamps={stamp: version, f"{CRANE_MODULE}/pkg/v1/remote/transport.Version": version})


def _pause(tag: str) -> Path:
    """The pause binary of image tag TAG, built once into the tools cache from build/pause/linux/pause.c of
    k8s.io/kubernetes v1.36.4, whose build/pause/Makefile builds TAG 3.10.2 (the PauseVersion of kubeadm v1.36.x)."""
    from tests.kubernetes_tools import VERSION, _module_info
    from tests.upstream_tools import tools_dir

    binary = tools_dir() / f"pause-{tag}" / "pause"
    if binary.exists():
        return binary
    source = Path(_module_info(VERSION)["Dir"]) / "build" / "pause"
    made = re.search(r"^TAG \?= (\S+)$", (source / "Makefile").read_text(), re.MULTILINE).group(1)
    if made != tag:
        raise RuntimeError(f"pause:{tag}: k8s.io/kubernetes {VERSION} build/pause makes pause {made}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=binary.parent) as work:
        subprocess.run(["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}", "-o", f"{work}/pause",
                        str(source / "linux" / "pause.c")], check=True, capture_output=True)
        os.replace(f"{work}/pause", binary)
    return binary


def _kube_log_runner() -> Path:
    """kube-log-runner of k8s.io/component-base v0.36.4 (Kubernetes v1.36.4's staging copy); it has no version
    variable, so go_tool's stamp is inert."""
    return go_tool("kube-log-runner", "k8s.io/component-base", "v0.36.4",
                   "k8s.io/component-base/logs/kube-log-runner", "k8s.io/component-base/version.gitVersion")


# ---------------------------------------------------------------------------------------------
# which images
# ---------------------------------------------------------------------------------------------

def registry_repository(address: str) -> str:
    """The imageRepository a lab stack uses: the registry at ADDRESS (port 443), path REPOSITORY_PATH."""
    return f"{address}/{REPOSITORY_PATH}"


def images_for(config: dict) -> list[str]:
    """The images a node of the stack CONFIG (keys without the project prefix, as hosts.Lab holds them) pulls:
    what the real kubeadm lists for the program's init configuration (and an external etcd member's), and the load
    balancer's."""
    from components.config import parse_spec
    from components.etcd import member_configuration
    from components.kubeadm_config import init_configuration
    from tests.kubernetes_tools import kubernetes_tool

    spec = parse_spec(config)
    # An external etcd member's configuration (etcd-member.sh) names the etcd image the init configuration leaves out.
    configurations = [init_configuration(spec)] + [member_configuration(spec, node) for node in spec.etcd_nodes[:1]]
    images: list[str] = []
    for configuration in configurations:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            file.write(configuration)
            file.flush()
            listed = subprocess.run([str(kubernetes_tool("kubeadm", f"v{spec.kubernetes_version}")), "config",
                                     "images", "list", "--config", file.name], capture_output=True, text=True)
        if listed.returncode != 0:
            raise RuntimeError(f"kubeadm config images list failed:\n{listed.stderr}")
        images += [image for image in listed.stdout.split() if image not in images]
    load_balancer = spec.control_plane.load_balancer
    if load_balancer.type == "kube-vip":
        images.append(load_balancer.kube_vip_image)
    elif load_balancer.type == "haproxy-keepalived":
        images += [load_balancer.haproxy_image, load_balancer.keepalived_image]
    return images


# ---------------------------------------------------------------------------------------------
# building them
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageSpec:
    """What an image holds: files (path in the image → a real file or placeholder text) and its config."""
    files: tuple[tuple[str, Path | str], ...]
    directories: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    user: str = ""
    ports: tuple[str, ...] = ()


def _placeholder(image: str, path: str, user: str, ports: tuple[str, ...] = ()) -> ImageSpec:
    text = (f"kubeadm-cluster lab placeholder for {image}: not the upstream program (see tests/lab/images.py). "
            "The kubelet stand-in never runs it.\n")
    return ImageSpec(files=((path, text), ("/kclab-placeholder", text)), entrypoint=(path,), user=user, ports=ports)


def image_spec(image: str) -> ImageSpec:
    """How the lab builds IMAGE (a full reference); the binaries are built on first use."""
    from tests.etcd_tools import etcd_tool
    from tests.kubernetes_tools import kubernetes_tool

    name, tag = image.rsplit("/", 1)[-1].split(":")
    if name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
        return ImageSpec(files=((f"/usr/local/bin/{name}", kubernetes_tool(name, tag)), ("/go-runner", _kube_log_runner())),
                         entrypoint=("/go-runner",))
    if name == "etcd":
        version = f"v{tag.split('-')[0]}"  # registry.k8s.io/etcd:3.7.0-0 is etcd v3.7.0
        return ImageSpec(files=tuple((f"/usr/local/bin/{tool}", etcd_tool(tool, version))
                                     for tool in ("etcd", "etcdctl", "etcdutl")),
                         directories=("/var/etcd", "/var/lib/etcd"), cmd=("/usr/local/bin/etcd",),
                         workdir="/var/lib/etcd/", ports=("2379/tcp", "2380/tcp"))
    if name == "kube-vip":
        from tests.kube_vip_tools import build_kube_vip
        return ImageSpec(files=(("/kube-vip", build_kube_vip()),
                                ("/etc/ssl/certs/ca-certificates.crt", Path("/etc/ssl/certs/ca-certificates.crt"))),
                         entrypoint=("/kube-vip",))
    if name == "pause":
        return ImageSpec(files=(("/pause", _pause(tag)),), entrypoint=("/pause",), user="65535:65535")
    if name == "haproxy":
        # docker-library/haproxy 2.8/Dockerfile: /usr/local/sbin/haproxy, CMD `haproxy -f /usr/local/etc/haproxy/
        # haproxy.cfg`, which its docker-entrypoint.sh runs as `haproxy -W -db -f ...` (master-worker, foreground);
        # WORKDIR /var/lib/haproxy. Debian's haproxy 2.6 stands in for 2.8; USER haproxy is left out (the kubelet
        # stand-in runs every container as root).
        return ImageSpec(files=_debian_programs((("/usr/local/sbin/haproxy", "/usr/sbin/haproxy"),)),
                         directories=("/usr/local/etc/haproxy", "/var/lib/haproxy", "/run", "/tmp"),  # as Debian's
                         entrypoint=("/usr/local/sbin/haproxy", "-W", "-db"),
                         cmd=("-f", "/usr/local/etc/haproxy/haproxy.cfg"), workdir="/var/lib/haproxy")
    if name == "keepalived":
        # osixia/docker-keepalived v2.0.20 image/service/keepalived/process.sh: `/usr/local/sbin/keepalived -f
        # /usr/local/etc/keepalived/keepalived.conf --dont-fork --log-console $KEEPALIVED_COMMAND_LINE_ARGUMENTS`
        # (`--log-detail --dump-conf`, image/environment/default.yaml) once startup.sh finds that config (the program
        # mounts it there, so startup.sh templates nothing); the image also has sh and curl, which the program's
        # check script runs. Debian's keepalived 2.2.7 stands in for the image's 2.0.20 build; osixia's run tool and
        # startup.sh (it also deletes its default VIPs, 192.168.1.231-232, from the interfaces) are left out.
        return ImageSpec(files=_debian_programs((("/usr/local/sbin/keepalived", "/usr/sbin/keepalived"),
                                                 ("/bin/sh", "/bin/dash"), ("/usr/bin/curl", "/usr/bin/curl"))),
                         directories=("/usr/local/etc/keepalived", "/etc/keepalived", "/run", "/tmp"),  # as Alpine's
                         entrypoint=("/usr/local/sbin/keepalived", "-f", "/usr/local/etc/keepalived/keepalived.conf",
                                     "--dont-fork", "--log-console", "--log-detail", "--dump-conf"))
    if name == "coredns":
        return _placeholder(image, "/coredns", "nonroot:nonroot", ("53/tcp", "53/udp"))
    raise RuntimeError(f"the lab has no image for {image}")


def _debian_programs(programs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, Path], ...]:
    """This machine's Debian PROGRAMS (path in the image, path here), each with the shared libraries and the loader
    `ldd` resolves for it, at the paths ldd names."""
    files: dict[str, Path] = {}
    for target, source in programs:
        files[target] = Path(source).resolve()
        listed = subprocess.run(["ldd", source], capture_output=True, text=True, check=True).stdout
        for line in listed.splitlines():
            library = line.split("=>")[-1].split("(")[0].strip()
            if library.startswith("/"):
                files.setdefault(library, Path(library).resolve())
    return tuple(sorted(files.items()))


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _cache_key(image: str, spec: ImageSpec) -> str:
    inputs = {"revision": LAYOUT_REVISION, "image": image, "crane": CRANE_VERSION,
              "files": [(path, _digest(c) if isinstance(c, Path) else c) for path, c in spec.files],
              "spec": [spec.directories, spec.entrypoint, spec.cmd, spec.workdir, spec.user, spec.ports]}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20]


def _layer(spec: ImageSpec, out: Path) -> None:
    """One reproducible layer: root-owned, mtime 0, parents as directories (as a Dockerfile COPY makes them)."""
    def add_dirs(tar: tarfile.TarFile, path: str, seen: set[str]) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            directory = "/".join(parts[:i])
            if directory not in seen:
                seen.add(directory)
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)

    seen: set[str] = set()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for directory in spec.directories:
            add_dirs(tar, directory, seen)
        for path, content in spec.files:
            if Path(path).parent != Path("/"):
                add_dirs(tar, str(Path(path).parent), seen)
            data = content.read_bytes() if isinstance(content, Path) else content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o644 if path.endswith((".crt", "placeholder")) else 0o755
            tar.addfile(info, io.BytesIO(data))


class _BuildRegistry:
    """A throwaway `crane registry serve` on this machine's loopback (plain HTTP: crane's references to
    127.0.0.1 use http, name/registry.go@v0.22.1 Scheme)."""

    def __init__(self, crane: Path, work: Path):
        (work / "blobs").mkdir()
        self.process = subprocess.Popen([str(crane), "registry", "serve", "--address", "127.0.0.1:0",
                                         "--disk", str(work / "blobs")],
                                        stderr=subprocess.PIPE, text=True, start_new_session=True)
        line = ""
        while "serving on port" not in line:
            line = self.process.stderr.readline()
            if not line:
                raise RuntimeError("crane registry serve did not start")
        self.address = f"127.0.0.1:{line.split()[-1]}"

    def close(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _crane(crane: Path, *args: str) -> str:
    result = subprocess.run([str(crane), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"crane {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def build_image(image: str) -> Path:
    """IMAGE as an OCI image layout directory, built once per content and cached."""
    spec = image_spec(image)
    name, tag = image.rsplit("/", 1)[-1].split(":")
    layout = IMAGE_CACHE / f"{name}-{tag}-{_cache_key(image, spec)}"
    if layout.exists():
        return layout
    crane = build_crane()
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=IMAGE_CACHE) as work:
        _layer(spec, Path(work) / "layer.tar")
        registry = _BuildRegistry(crane, Path(work))
        try:
            ref = f"{registry.address}/build/{name}:{tag}"
            _crane(crane, "append", "--oci-empty-base", "-f", str(Path(work) / "layer.tar"), "-t", ref)
            mutate = ["--set-platform", "linux/amd64", "-t", ref]
            mutate += [f"--entrypoint={','.join(spec.entrypoint)}"] if spec.entrypoint else []
            mutate += [f"--cmd={','.join(spec.cmd)}"] if spec.cmd else []
            mutate += ["--workdir", spec.workdir] if spec.workdir else []
            mutate += ["--user", spec.user] if spec.user else []
            mutate += [f"--exposed-ports={','.join(spec.ports)}"] if spec.ports else []
            _crane(crane, "mutate", ref, *mutate)
            _crane(crane, "pull", "--format", "oci", ref, str(Path(work) / "layout"))
        finally:
            registry.close()
        try:
            (Path(work) / "layout").rename(layout)
        except OSError:  # another lab stream built it meanwhile: the same content, by the cache key
            if not layout.exists():
                raise
    return layout


def image_config(layout: Path) -> dict:
    """The image config of an OCI layout made by build_image."""
    def blob(digest: str) -> dict:
        return json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    index = json.loads((layout / "index.json").read_text())
    return blob(blob(index["manifests"][0]["digest"])["config"]["digest"])


# ---------------------------------------------------------------------------------------------
# the registry in the lab
# ---------------------------------------------------------------------------------------------

def make_ca(directory: Path, address: str) -> Path:
    """A lab CA and the registry's certificate for ADDRESS (an IP SAN); returns the CA certificate's path.
    haproxy reads the certificate and its key from one PEM file, registry.pem."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
            "-subj", "/CN=kubeadm-cluster lab CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", "ca.key", "-out", CA_FILE)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={address}", "-keyout", "registry.key", "-out", "registry.csr")
    (directory / "registry.ext").write_text(f"subjectAltName=IP:{address}\nextendedKeyUsage=serverAuth\n"
                                            "keyUsage=critical,digitalSignature\n")
    openssl("x509", "-req", "-in", "registry.csr", "-CA", CA_FILE, "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "30", "-extfile", "registry.ext", "-out", "registry.crt")
    (directory / "registry.pem").write_text((directory / "registry.crt").read_text()
                                            + (directory / "registry.key").read_text())
    return directory / CA_FILE


HAPROXY_CONFIG = """global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend registry
    bind {address}:443 ssl crt {pem}
    default_backend crane
backend crane
    server crane {crane}
"""


@dataclass
class Registry:
    """The lab's registry, running in NAMESPACE: crane on its loopback, haproxy's TLS on ADDRESS:443."""
    namespace: str
    address: str
    work: Path
    processes: tuple[subprocess.Popen, ...] = ()

    @property
    def repository(self) -> str:
        return registry_repository(self.address)

    @property
    def ca(self) -> Path:
        return self.work / CA_FILE

    def start(self) -> "Registry":
        crane = build_crane()
        make_ca(self.work, self.address)
        BLOB_CACHE.mkdir(parents=True, exist_ok=True)
        config = self.work / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(address=self.address, pem=self.work / "registry.pem", crane=CRANE_ADDRESS))
        self.processes = serve(self.namespace, (
            [str(crane), "registry", "serve", "--address", CRANE_ADDRESS, "--disk", str(BLOB_CACHE)],
            ["haproxy", "-db", "-f", str(config)]), self.work / "registry.log",
            lambda: self._curl("/v2/").returncode == 0, "the lab registry")
        return self

    def _curl(self, path: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.namespace, "curl", "-fsS", "--cacert", str(self.ca),
                               f"https://{self.address}{path}"], capture_output=True, text=True)

    def push(self, images: list[str]) -> None:
        """Build IMAGES (names under any repository) and push each under this registry's repository."""
        crane = build_crane()
        for image in images:
            target = f"{CRANE_ADDRESS}/{self.path_of(image)}"
            result = subprocess.run(["ip", "netns", "exec", self.namespace, str(crane), "push",
                                     str(build_image(image)), target], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"pushing {image} to the lab registry failed:\n{result.stderr}")

    def path_of(self, image: str) -> str:
        """Where IMAGE lives in this registry: names already under it keep their path; others keep theirs without
        the registry host (ghcr.io/kube-vip/kube-vip → kube-vip/kube-vip), Docker Hub's short names as they are
        (osixia/keepalived, haproxy: a first part without "." or ":" that is not "localhost" is no registry host,
        distribution/reference normalize.go splitDockerDomain)."""
        prefix = f"{self.address}/"
        if image.startswith(prefix):
            return image[len(prefix):]
        first, _, rest = image.partition("/")
        return rest if rest and ("." in first or ":" in first or first == "localhost") else image

    def stop(self) -> None:
        stop_processes(self.processes)
        self.processes = ()


def serve(namespace: str, argvs: Iterable[list[str]], log_path: Path, ready: Callable[[], bool],
          what: str) -> tuple[subprocess.Popen, ...]:
    """Start each of ARGVS in NAMESPACE (output to LOG_PATH) and wait until READY() answers, 30 s at most."""
    log = log_path.open("w")
    processes = tuple(subprocess.Popen(["ip", "netns", "exec", namespace, *argv], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True) for argv in argvs)
    deadline = time.monotonic() + 30
    while not ready():
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            stop_processes(processes)
            raise RuntimeError(f"{what} did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return processes


def stop_processes(processes: Iterable[subprocess.Popen]) -> None:
    """SIGTERM each process still running; SIGKILL one that has not ended 10 s later."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def trust_ca(root: Path, ca: Path) -> None:
    """The lab host at ROOT trusts the lab CA as a site's hosts trust their own CA: in the system store."""
    shutil.copyfile(ca, root / "usr/local/share/ca-certificates" / CA_FILE)
    subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, capture_output=True)


def containerd_disk(root: Path, disk: Path) -> None:
    """/var/lib/containerd of the host at ROOT on DISK, a directory on this machine's disk: the host's root is an
    overlayfs, which the overlayfs snapshotter cannot use as its upper layer (see tests/lab/README.md)."""
    disk.mkdir(parents=True, exist_ok=True)
    (root / "var/lib/containerd").mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(disk), str(root / "var/lib/containerd")], check=True, capture_output=True)
