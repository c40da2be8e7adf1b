"""A private host (tests/netns.py private_host) set up as a lab host of the real mode is: the real kubeadm,
kubectl, containerd, ctr and crictl, the lab's kubelet stand-in with its units, the systemctl stand-in, and the
lab's images in containerd (tests/test_kubelet_standin.py; reusable by tests that want real static pods)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from components.config import DEFAULT_KUBERNETES_VERSION
from tests.containerd_tools import CONTAINERD_VERSIONS, build_containerd, build_crictl
from tests.kubernetes_tools import kubernetes_tool
from tests.lab.images import build_image

STANDINS = Path(__file__).parent / "lab" / "standins"
VERSION = DEFAULT_KUBERNETES_VERSION
CONTAINERD = CONTAINERD_VERSIONS[0]  # what the lab's hosts run (tests/lab/hosts.py)
# The reaper a machine's init is: orphans (the kubelet's supervisor, its containers) are reaped.
INIT = "python3 -c 'import os, time\nwhile True:\n    try: os.wait()\n    except ChildProcessError: time.sleep(1)'"


def install_packages(host, root: Path) -> None:
    """/usr/bin and /usr/lib/systemd/system as the lab's real-mode debs leave them (tests/lab/hosts.py packages
    the same files: the real kubeadm, kubectl, containerd, ctr and crictl, the kubelet stand-in and the units),
    with the systemctl stand-in; /var/lib/containerd on this machine's disk as in the lab (tests/lab/README.md
    "Images": overlayfs snapshots need a real file system under them)."""
    staged = root / "packages"
    staged.mkdir()
    (staged / "kubelet").write_text((STANDINS / "kubelet.py").read_text().replace("@VERSION@", VERSION))
    shutil.copy(STANDINS / "standin.py", staged / "systemctl")
    links = {"kubeadm": kubernetes_tool("kubeadm"), "kubectl": kubernetes_tool("kubectl"),
             "containerd": build_containerd(CONTAINERD), "ctr": build_containerd(CONTAINERD, "ctr"),
             "crictl": build_crictl()}
    (root / "containerd").mkdir()
    host.sh(f"install -m 0755 {staged}/kubelet {staged}/systemctl /usr/bin/"
            + "".join(f" && ln -sf {path} /usr/bin/{name}" for name, path in links.items())
            + "".join(f" && install -D -m 0644 {STANDINS}/units/{unit} /usr/lib/systemd/system/{unit}"
                      for unit in ("kubelet.service", "kubelet.service.d/10-kubeadm.conf", "containerd.service"))
            + f" && mkdir -p /var/lib/containerd /run/containerd && mount --bind {root}/containerd /var/lib/containerd"
            " && mount -t tmpfs tmpfs /run/containerd")


def import_images(host, root: Path, images: list[str]) -> None:
    """The lab's images (tests/lab/images.py: the real binaries at the upstream images' paths) in containerd,
    imported rather than pulled: there is no registry on the private host."""
    for image in images:
        archive = root / f"{image.rsplit('/', 1)[-1]}.tar"
        with tarfile.open(archive, "w") as tar:
            for path in build_image(image).iterdir():
                tar.add(path, arcname=path.name)
        host.sh(f"ctr -n k8s.io images import --index-name {image} {archive}", timeout=120)


@contextlib.contextmanager
def bridged(*prefixes: str):
    """The private hosts of PREFIXES (tests/netns.py names their namespaces PREFIX-PID) on one bridge, in a
    namespace of its own: their eth0 peers become its ports."""
    switch = f"kcswitch-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", switch], check=True)
    try:
        subprocess.run(["ip", "-n", switch, "link", "add", "br0", "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", switch, "link", "set", "br0", "up"], check=True)
        for i, prefix in enumerate(prefixes):
            namespace = f"{prefix}-{os.getpid()}"
            subprocess.run(["ip", "-n", namespace, "link", "set", "eth0p", "name", f"port{i}", "netns", switch], check=True)
            subprocess.run(["ip", "-n", switch, "link", "set", f"port{i}", "master", "br0", "up"], check=True)
        yield
    finally:
        subprocess.run(["ip", "netns", "del", switch], check=False)
