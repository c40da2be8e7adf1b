"""The real etcd v3.6.8 in a lab host, run as the kubelet runs kubeadm's etcd static pod, and the etcd
release tarball served by the lab's package server.

kubeadm's stacked etcd member is a static pod of registry.k8s.io/etcd (kubernetes cluster/images/etcd:
/usr/local/bin holds etcd and etcdctl, no etcdutl) with two hostPath volumes, the data directory and
/etc/kubernetes/pki/etcd, and the command `getEtcdCommand` builds (cmd/kubeadm/app/phases/etcd/local.go
@v1.36.4). Here the "container" is a private mount namespace chrooted into an image directory holding
the real etcd and etcdctl, with those two directories bind-mounted, so /proc/PID/root of the process
named etcd is that image, as it is for a container. Left out: `--listen-metrics-urls` (the lab's
kubeadm stand-in already answers kubeadm's probes on 127.0.0.1:2381).
"""

from __future__ import annotations

import hashlib
import io
import shlex
import tarfile
import time
from pathlib import Path

from tests.etcd_tools import ETCD_VERSION, etcd_tool

IMAGE = "/var/lib/kclab-node/etcd-image"  # the "container image" root, inside the lab host
PKI = "/etc/kubernetes/pki/etcd"
DATA_DIR = "/var/lib/etcd"


def release_tarball(repo: Path) -> tuple[str, str, str]:
    """etcd-vX-linux-amd64.tar.gz as etcd's release has it (scripts/build-binary.sh@v3.6.8 `package`: one
    directory etcd-vX-linux-amd64 with etcd, etcdctl, etcdutl), written under REPO/etcd/vX/. Returns the
    URL template (etcd.backup.etcdutlUrl, relative to the server root), the file name and its sha256."""
    name = f"etcd-{ETCD_VERSION}-linux-amd64"
    target = repo / "etcd" / ETCD_VERSION / f"{name}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for tool in ("etcd", "etcdctl", "etcdutl"):
            tar.add(etcd_tool(tool), arcname=f"{name}/{tool}")
    target.write_bytes(buffer.getvalue())
    return "/etcd/v{version}/etcd-v{version}-linux-{arch}.tar.gz", target.name, hashlib.sha256(
        buffer.getvalue()).hexdigest()


def etcd_command(node: str, address: str) -> list[str]:
    """getEtcdCommand@v1.36.4 for a first member (no initial cluster yet), metrics listener left out."""
    return ["/usr/local/bin/etcd", f"--name={node}",
            f"--listen-client-urls=https://127.0.0.1:2379,https://{address}:2379",
            f"--advertise-client-urls=https://{address}:2379",
            f"--listen-peer-urls=https://{address}:2380", f"--initial-advertise-peer-urls=https://{address}:2380",
            f"--data-dir={DATA_DIR}", f"--cert-file={PKI}/server.crt", f"--key-file={PKI}/server.key",
            f"--trusted-ca-file={PKI}/ca.crt", "--client-cert-auth=true",
            f"--peer-cert-file={PKI}/peer.crt", f"--peer-key-file={PKI}/peer.key",
            f"--peer-trusted-ca-file={PKI}/ca.crt", "--peer-client-cert-auth=true", "--snapshot-count=10000",
            "--feature-gates=InitialCorruptCheck=true", "--watch-progress-notify-interval=5s",
            f"--initial-cluster={node}=https://{address}:2380"]


def start_stacked_etcd(lab, node: str, address: str) -> None:
    """Start the member on `node` (after kubeadm init wrote its certificates) and wait until it serves."""
    host = lab.hosts[node]
    bin_dir = host.root / IMAGE.lstrip("/") / "usr/local/bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("etcd", "etcdctl"):  # the image's tools; etcdutl is not in kubernetes' etcd image
        (bin_dir / tool).write_bytes(etcd_tool(tool).read_bytes())
        (bin_dir / tool).chmod(0o755)
    mounts = " && ".join(f"mkdir -p {IMAGE}{d} && mount --bind {d} {IMAGE}{d}" for d in (DATA_DIR, PKI))
    container = f"{mounts} && exec chroot {IMAGE} {shlex.join(etcd_command(node, address))}"
    lab.ssh(node, f"sudo mkdir -p {DATA_DIR} && sudo setsid -f unshare --mount --propagation private "
                  f"sh -c {shlex.quote(container)} </dev/null >/dev/null 2>&1")
    deadline = time.monotonic() + 60
    while etcdctl(lab, node, "endpoint", "health", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the real etcd on {node} did not become healthy")
        time.sleep(0.5)


def etcdctl(lab, node: str, *args: str, check: bool = True):
    """The image's etcdctl against the member, with the healthcheck client pair (as in the etcd pod's probes)."""
    command = [f"{IMAGE}/usr/local/bin/etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={PKI}/ca.crt",
               f"--cert={PKI}/healthcheck-client.crt", f"--key={PKI}/healthcheck-client.key", *args]
    return lab.ssh(node, "sudo " + shlex.join(command), check=check)
