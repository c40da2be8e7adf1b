"""Issue 12: the lab's images, served by its registry, pulled by the real kubeadm through the real containerd.

One real-mode lab host (tests/lab/hosts.py `real`: the lab's registry with the images of tests/lab/images.py,
the lab CA in the host's store, /var/lib/containerd on the disk). The host installs containerd, ctr, crictl
and kubeadm from the lab's own packages, writes node preparation's containerd config (prepare.sh
containerd_config) and starts containerd.service through the systemctl stand-in. Then the real
`kubeadm config images pull --config` of the program's init configuration pulls every image through CRI
(cmd/kubeadm/app/cmd/config.go@v1.36.4 newCmdConfigImagesPull → PullImage of the CRI image service), from
the registry named by the config's `imageRepository`.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from components.config import parse_spec
from components.kubeadm_config import init_configuration
from components.scripts import COMPONENTS_DIR
from hosts import Lab
import images

pytestmark = pytest.mark.lab

VERSION = "1.36.4"
NODE = "c1"
CONFIG = {"kubernetesVersion": VERSION, "nodes": [{"name": NODE, "address": "198.18.0.11", "roles": ["control-plane"]}]}
SOCKET = "unix:///run/containerd/containerd.sock"


def sudo(lab: Lab, script: str, check: bool = True, stdin: str = ""):
    return lab.ssh(NODE, f"sudo bash -euo pipefail -c {shlex.quote(script)}", check=check, stdin=stdin)


def start_containerd(lab: Lab) -> None:
    """Through containerd.service (Type=notify: started once containerd says READY=1)."""
    sudo(lab, "systemctl start containerd && crictl info >/dev/null")


def stop_containerd(lab: Lab) -> None:
    sudo(lab, "systemctl stop containerd")


def init_config(repository: str) -> str:
    return init_configuration(parse_spec({**CONFIG, "imageRepository": repository}))


def pull(lab: Lab, repository: str):
    return sudo(lab, "f=$(mktemp); cat >$f; kubeadm config images pull --config $f", check=False,
                stdin=init_config(repository))


@pytest.fixture(scope="module")
def lab():
    lab = Lab(CONFIG, versions=(VERSION,), real=True)
    try:
        lab.up()
        function = re.search(r"^containerd_config\(\) \{\n.*?^\}\n", (COMPONENTS_DIR / "prepare.sh").read_text(),
                             re.M | re.S).group(0)
        debs = ["containerd/deb/containerd_2.1.5-1_all.deb", "core/stable/v1.36/deb/cri-tools_1.36.0-1.1_all.deb",
                f"core/stable/v1.36/deb/kubeadm_{VERSION}-1.1_all.deb"]
        sudo(lab, "cd /var/tmp\n" + "".join(f"curl -fsSO {lab.repo_url}/{deb}\n" for deb in debs)
             + "dpkg -i " + " ".join(deb.rsplit("/", 1)[1] for deb in debs) + " >/dev/null\n"
             + f"printf 'runtime-endpoint: {SOCKET}\\nimage-endpoint: {SOCKET}\\n' >/etc/crictl.yaml\n"
             + f"mkdir -p /etc/containerd\n{function}"
             + f"containerd_config {lab.registry.repository}/pause:3.10.2 >/etc/containerd/config.toml\n")
        start_containerd(lab)
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def pulled(lab):
    result = pull(lab, lab.registry.repository)
    assert result.returncode == 0, result.stderr
    return result


def listed(repository: str) -> list[str]:
    return images.images_for({**CONFIG, "imageRepository": repository})


def test_kubeadm_pulls_every_image_through_the_config_image_repository(lab, pulled):
    expected = listed(lab.registry.repository)
    assert len(expected) == 7  # kube-apiserver, -controller-manager, -scheduler, kube-proxy, CoreDNS, pause, etcd
    assert [line.split()[-1] for line in pulled.stdout.splitlines() if line.startswith("[config/images] Pulled ")] \
        == expected


def test_crictl_lists_the_pulled_images(lab, pulled):
    result = sudo(lab, "crictl images -o json")
    tags = {tag for image in json.loads(result.stdout)["images"] for tag in image["repoTags"]}
    assert tags == set(listed(lab.registry.repository))


def test_a_mistyped_image_repository_fails_naming_the_image(lab, pulled):
    wrong = lab.registry.repository + "x"
    result = pull(lab, wrong)
    assert result.returncode != 0
    image = f"{wrong}/kube-apiserver:v{VERSION}"
    # PullControlPlaneImages' error (cmd/kubeadm/app/cmd/config.go@v1.36.4) around containerd's.
    error = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert error.startswith(f'error: failed to pull image "{image}": ')
    assert error.endswith(f"failed to resolve image: {image}: not found")


def test_the_registry_is_trusted_through_the_hosts_ca_store(lab, pulled):
    """Without the lab CA in the system store containerd refuses the registry's certificate."""
    image = f"{lab.registry.repository}/pause:3.10.2"
    store = f"/usr/local/share/ca-certificates/{images.CA_FILE}"
    stop_containerd(lab)
    sudo(lab, f"mv {store} /root/ && update-ca-certificates --fresh >/dev/null")
    start_containerd(lab)  # Go reads the system roots once per process
    try:
        sudo(lab, f"crictl rmi {image} >/dev/null")
        refused = sudo(lab, f"crictl pull {image}", check=False)
        assert refused.returncode != 0
        assert "x509: certificate signed by unknown authority" in refused.stderr
    finally:
        stop_containerd(lab)
        sudo(lab, f"mv /root/{images.CA_FILE} {store} && update-ca-certificates --fresh >/dev/null")
        start_containerd(lab)
    assert sudo(lab, f"crictl pull {image}", check=False).returncode == 0


def test_an_image_root_filesystem_mounts_with_its_binary(lab, pulled):
    """What the kubelet stand-in does to run a static pod's image (tests/lab/README.md, "Images")."""
    image = f"{lab.registry.repository}/kube-apiserver:v{VERSION}"
    result = sudo(lab, f"mkdir -p /run/kclab-image && ctr -n k8s.io images mount {image} /run/kclab-image >/dev/null\n"
                       "/run/kclab-image/usr/local/bin/kube-apiserver --version\n"
                       "ctr -n k8s.io images unmount --rm /run/kclab-image >/dev/null\n"
                       "ctr -n k8s.io snapshots ls | grep -c /run/kclab-image || true")
    assert result.stdout.splitlines() == [f"Kubernetes v{VERSION}", "0"]


def test_containerd_state_is_on_the_hosts_disk(lab, pulled):
    """The host's root is an overlayfs, which cannot be an overlay mount's upper layer (EINVAL): a container's
    writable root filesystem needs /var/lib/containerd on the disk (images.containerd_disk)."""
    image = f"{lab.registry.repository}/etcd:3.6.8-0"
    result = sudo(lab, f"mkdir -p /run/kclab-rw && ctr -n k8s.io images mount --rw {image} /run/kclab-rw >/dev/null\n"
                       "touch /run/kclab-rw/var/lib/etcd/written && /run/kclab-rw/usr/local/bin/etcd --version\n"
                       "ctr -n k8s.io images unmount --rm /run/kclab-rw >/dev/null", check=False)
    assert result.returncode == 0, result.stderr
    # All of it read: `| head -n1` ended etcd with SIGPIPE now and then (exit 141 under pipefail).
    assert result.stdout.splitlines()[0] == "etcd Version: 3.6.8"


def test_images_carry_the_upstream_entrypoints(lab):
    configs = {image.rsplit("/", 1)[1]: images.image_config(images.build_image(image))["config"]
               for image in listed(lab.registry.repository)}
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"):
        assert configs[f"{name}:v{VERSION}"] == {"Entrypoint": ["/go-runner"]}
    assert configs["etcd:3.6.8-0"]["Cmd"] == ["/usr/local/bin/etcd"]
    assert "Entrypoint" not in configs["etcd:3.6.8-0"]
    assert configs["pause:3.10.2"] == {"Entrypoint": ["/pause"], "User": "65535:65535"}


def test_a_kube_vip_config_gets_the_image_of_the_programs_kube_vip_manifest(tmp_path):
    from components.config import KUBE_VIP_IMAGE
    vip = "198.18.0.100"
    config = {**CONFIG, "imageRepository": "198.19.255.2/k8s",
              "controlPlane": {"endpoint": f"{vip}:6443", "loadBalancer": {"type": "kube-vip", "vip": vip}}}
    assert images.images_for(config)[-1] == KUBE_VIP_IMAGE
    assert images.Registry("unused", "198.19.255.2", tmp_path).path_of(KUBE_VIP_IMAGE) == "kube-vip/kube-vip:v1.2.3"
    assert images.image_config(images.build_image(KUBE_VIP_IMAGE))["config"] == {"Entrypoint": ["/kube-vip"]}
    assert KUBE_VIP_IMAGE not in images.images_for(CONFIG)
