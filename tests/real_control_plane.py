"""A real Kubernetes control plane, set up the way the program sets up its first control plane, on a
private host (tests/netns.py: 198.18.0.11 in network, mount and PID namespaces of its own).

`real_control_plane(config, root)` takes a program config (keys without the project prefix, e.g. from
`stack_config()`), renders the program for it (tests/harness.py run_program) and on the host:
1. runs the program's rendered `<first>-control-plane-files` script (control-plane-files.sh: the Pod
   Security admission configuration, the audit policy and the encryption configuration);
2. writes the kubeadm config the rendered `<first>-init` step holds (init.sh's KUBEADM_CONFIG, at the
   path init.sh writes it) and runs the phases of `kubeadm init` that write files, with the real kubeadm:
   `certs all`, `kubeconfig all`, `etcd local`, `control-plane all` (cmd/kubeadm/app/cmd/init.go@v1.36.4
   lists the phases; preflight and kubelet-start need a container runtime and a kubelet: not run);
3. runs the static pods as processes (tests/static_pod_kubelet.py, PID 1 of the host), the real etcd
   v3.6.8 and kube-apiserver, kube-controller-manager, kube-scheduler v1.36.4 on PATH (/usr/local/bin),
   and waits for /readyz;
4. runs the phases that need the API server and no kubelet: `upload-config all` (the kubeadm-config and
   kubelet-config ConfigMaps) and `bootstrap-token` (cluster-info, the bootstrap RBAC rules). The first
   phase that asks for a client binds admin.conf's group kubeadm:cluster-admins to cluster-admin with
   super-admin.conf (init.go initData.Client → kubeconfig.EnsureAdminClusterRoleBinding@v1.36.4), so
   admin.conf works afterwards, as after a real `kubeadm init`.
It yields a ControlPlane: the host (`run`, `sh`), the spec, the rendered steps by name, and `kubectl`.

No kubelet runs (it cannot on these machines: README "What cannot run"), so no Node is registered and
no pod of a Deployment or DaemonSet runs. One control plane at a time: each holds 198.18.0.11 and
weighs about 1 GiB and most of a core while it starts.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from components.config import SECRET_KEYS, ClusterSpec, parse_spec
from harness import base_config, inner_script, run_program, script_param
from netns import HOST_ADDRESS, PrivateHost, private_host
from tests.etcd_tools import etcd_tool
from tests.kubernetes_tools import kubernetes_tool

NODE = "c1"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
INIT_CONFIG = "/etc/kubernetes/kubeadm-cluster/init.yaml"  # where init.sh writes KUBEADM_CONFIG
KUBERNETES_BINARIES = ("kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
ETCD_BINARIES = ("etcd", "etcdctl")
# Every `security` measure opted out: the cluster kubeadm makes with its own defaults.
SECURITY_OPTED_OUT = {"profiling": True, "podSecurity": "privileged", "auditLog": False, "encryptionAtRest": False,
                      "protectKernelDefaults": False, "kubeletServingCertificates": False}
READY_TIMEOUT = 240  # seconds for etcd and the API server to come up on 2 busy cores


def stack_config(**overrides: Any) -> dict[str, Any]:
    """A one-control-plane stack at HOST_ADDRESS (the endpoint defaults to its address:6443)."""
    config = base_config(nodes=[{"name": NODE, "address": HOST_ADDRESS, "roles": ["control-plane"]}])
    del config["controlPlane"]
    config.update(overrides)
    return config


@dataclass
class ControlPlane:
    host: PrivateHost
    spec: ClusterSpec
    steps: dict[str, str]  # the rendered scripts of `config` by step name (bash, without the sudo wrapper)

    def run(self, script: str, **kwargs: Any):
        return self.host.run(script, **kwargs)

    def sh(self, script: str, **kwargs: Any) -> str:
        return self.host.sh(script, **kwargs)

    def kubectl(self, *args: str, kubeconfig: str = ADMIN_CONF, stdin: str | None = None):
        """The real kubectl on the host (CompletedProcess)."""
        return self.host.run(shlex.join(["kubectl", "--kubeconfig", kubeconfig, *args]), stdin=stdin, timeout=60)

    def render(self, config: dict[str, Any]) -> dict[str, str]:
        """The rendered scripts of another config (e.g. a new kubeconfig.revision) by step name."""
        return rendered_steps(config)


def spec_of(config: dict[str, Any]) -> ClusterSpec:
    """The validated spec of a program config."""
    return parse_spec({k: v for k, v in config.items() if k not in SECRET_KEYS})


def rendered_steps(config: dict[str, Any]) -> dict[str, str]:
    """Every remote step's create script for CONFIG, as bash runs it on the node."""
    return {command.name: inner_script(command.plain("create")) for command in run_program(config).commands
            if command.plain("create")}


def image_directory(root: Path, extra: dict[str, Path]) -> Path:
    """What /usr/local/bin holds on the host: the real binaries (links into the build cache)."""
    image = root / "image"
    image.mkdir()
    binaries = {name: kubernetes_tool(name) for name in KUBERNETES_BINARIES}
    binaries |= {name: etcd_tool(name) for name in ETCD_BINARIES}
    for name, path in {**binaries, **extra}.items():
        (image / name).symlink_to(path)
    return image


def wait_ready(host: PrivateHost, seconds: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + seconds
    while True:
        result = host.run(f"kubectl --kubeconfig {ADMIN_CONF} get --raw=/readyz", timeout=30)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            logs = host.run("tail -n 20 /var/log/kubeadm-cluster-pods/*.log").stdout
            raise AssertionError(f"the API server was not ready within {seconds} s:\n{result.stderr}\n{logs}")
        time.sleep(2)


@contextlib.contextmanager
def real_control_plane(config: dict[str, Any], root: Path, *, prefix: str = "kcrcp",
                       binaries: dict[str, Path] | None = None) -> Iterator[ControlPlane]:
    """The first control plane of CONFIG running on a private host (see the module docstring); BINARIES
    are put on its PATH besides Kubernetes' and etcd's (e.g. kube-bench)."""
    spec = spec_of(config)
    assert spec.first_control_plane.internal_address == HOST_ADDRESS, "the private host is at " + HOST_ADDRESS
    steps = rendered_steps(config)
    first = spec.first_control_plane.name
    image = image_directory(root, binaries or {})
    pod_logs = "/var/log/kubeadm-cluster-pods"  # the kubelet double's container logs, inside the host
    double = Path(__file__).parent / "static_pod_kubelet.py"
    kubelet = f"bash -c {shlex.quote(f'mkdir -p {pod_logs} && exec {sys.executable} {double} {pod_logs}')}"
    with private_host(prefix, root / "host", kubelet, binds={"/usr/local/bin": image}) as host:
        host.sh(steps[f"{first}-control-plane-files"])
        init_config = script_param(steps[f"{first}-init"], "KUBEADM_CONFIG")
        host.sh(f"install -d -m 0700 {os.path.dirname(INIT_CONFIG)} && cat > {INIT_CONFIG}", stdin=init_config)
        for phase in ("certs all", "kubeconfig all", "etcd local", "control-plane all"):
            host.sh(f"kubeadm init phase {phase} --config {INIT_CONFIG}", timeout=120)
        wait_ready(host)
        for phase in ("upload-config all", "bootstrap-token"):
            host.sh(f"kubeadm init phase {phase} --config {INIT_CONFIG}", timeout=120)
        yield ControlPlane(host, spec, steps)
