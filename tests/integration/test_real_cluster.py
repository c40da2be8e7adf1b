"""A real cluster on your machines, through the Automation API (skipped unless you give it hosts).

    KUBEADM_CLUSTER_HOSTS="cp1=10.0.0.11,cp2=10.0.0.12,cp3=10.0.0.13,w1=10.0.0.21"   # cp* control planes, others workers
    KUBEADM_CLUSTER_ENDPOINT=10.0.0.100:6443          # with KUBEADM_CLUSTER_VIP=10.0.0.100 for kube-vip, else your LB
    KUBEADM_CLUSTER_SSH_KEY=~/.ssh/id_ed25519  KUBEADM_CLUSTER_SSH_USER=ubuntu
    KUBEADM_CLUSTER_SPARE_HOST=w2=10.0.0.22           # optional: added, then removed again
    .venv/bin/python -m pytest tests/integration -m integration

Needs the pulumi CLI and kubectl on PATH. It creates a stack in a temporary local backend and
destroys it at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
HOSTS = os.environ.get("KUBEADM_CLUSTER_HOSTS", "")
KEY = os.path.expanduser(os.environ.get("KUBEADM_CLUSTER_SSH_KEY", ""))

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HOSTS or not KEY, reason="no machines: set KUBEADM_CLUSTER_HOSTS and KUBEADM_CLUSTER_SSH_KEY"),
    pytest.mark.skipif(shutil.which("pulumi") is None, reason="the pulumi CLI is not installed"),
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]


def inventory(spec: str) -> list[dict]:
    nodes = []
    for item in filter(None, spec.split(",")):
        name, address = item.split("=")
        nodes.append({"name": name, "address": address,
                      "roles": ["control-plane"] if name.startswith("cp") else ["worker"]})
    return nodes


def stack_config(nodes: list[dict]) -> dict:
    endpoint = os.environ.get("KUBEADM_CLUSTER_ENDPOINT", f"{nodes[0]['address']}:6443")
    control_plane: dict = {"endpoint": endpoint}
    if os.environ.get("KUBEADM_CLUSTER_VIP"):
        control_plane["loadBalancer"] = {"type": "kube-vip", "vip": os.environ["KUBEADM_CLUSTER_VIP"]}
    return {
        "kubernetesVersion": os.environ.get("KUBEADM_CLUSTER_VERSION", "1.36.4"),
        "ssh": {"user": os.environ.get("KUBEADM_CLUSTER_SSH_USER", "root")},
        "nodes": nodes,
        "controlPlane": control_plane,
        "ingress": {"controller": "traefik"},
    }


@pytest.fixture(scope="module")
def stack():
    from pulumi import automation as auto

    backend = tempfile.mkdtemp(prefix="kubeadm-cluster-it-")
    env = {"PULUMI_BACKEND_URL": f"file://{backend}", "PULUMI_CONFIG_PASSPHRASE": "integration"}
    stack = auto.create_or_select_stack(stack_name="it", work_dir=str(ROOT),
                                        opts=auto.LocalWorkspaceOptions(env_vars=env))
    stack.set_config("kubeadm-cluster:sshPrivateKey", auto.ConfigValue(Path(KEY).read_text(), secret=True))
    try:
        yield stack
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack("it")
        shutil.rmtree(backend, ignore_errors=True)


def apply(stack, config: dict):
    from pulumi import automation as auto

    for key, value in config.items():
        stack.set_config(f"kubeadm-cluster:{key}", auto.ConfigValue(json.dumps(value) if not isinstance(value, str)
                                                                    else value))
    return stack.up(on_output=print)


def kubectl(kubeconfig: str, *args: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        handle.write(kubeconfig)
        handle.flush()
        return subprocess.run(["kubectl", "--kubeconfig", handle.name, *args], check=True, capture_output=True,
                              text=True).stdout


def wait_for(check, seconds: int = 600):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except (subprocess.CalledProcessError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(10)


def test_cluster_lifecycle(stack):
    nodes = inventory(HOSTS)
    result = apply(stack, stack_config(nodes))
    kubeconfig = result.outputs["kubeconfig"].value
    assert result.outputs["kubeconfig"].secret

    def all_ready():
        status = json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json"))
        ready = {n["metadata"]["name"] for n in status["items"]
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}
        assert ready == {n["name"] for n in nodes}, ready

    wait_for(all_ready)

    kubectl(kubeconfig, "create", "deployment", "echo", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53",
            "--port=8080", "--", "/agnhost", "netexec", "--http-port=8080")
    kubectl(kubeconfig, "expose", "deployment", "echo", "--port=80", "--target-port=8080")
    kubectl(kubeconfig, "create", "ingress", "echo", "--rule=echo.test/*=echo:80")
    worker = next(n for n in nodes if n["roles"] == ["worker"])

    def reachable():
        out = subprocess.run(["curl", "-sf", "-H", "Host: echo.test", f"http://{worker['address']}/hostname"],
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout, out.stderr

    wait_for(reachable)

    spare = os.environ.get("KUBEADM_CLUSTER_SPARE_HOST")
    if spare:
        grown = nodes + inventory(spare)
        apply(stack, stack_config(grown))
        wait_for(lambda: kubectl(kubeconfig, "get", "node", grown[-1]["name"]))
        apply(stack, stack_config(nodes))
        with pytest.raises(subprocess.CalledProcessError):
            kubectl(kubeconfig, "get", "node", grown[-1]["name"])
