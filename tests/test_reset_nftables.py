"""reset.sh removes kube-proxy's nftables tables, run with a real nft in a private network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from components.scripts import render

NAMESPACE = f"kc11c-reset-{os.getpid()}"
# What kube-proxy's nftables mode creates: one table named kube-proxy per family
# (pkg/proxy/nftables/proxier.go and cleanup.go@v1.36.3, knftables IPv4Family "ip", IPv6Family "ip6").
RULESET = """
table ip kube-proxy {
  chain services {
  }
}
table ip6 kube-proxy {
  chain services {
  }
}
table inet filter {
  chain input {
    type filter hook input priority 0; policy accept;
  }
}
"""
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None,
    reason="needs root, ip and nft (Debian nftables) for a private network namespace")


@pytest.fixture
def netns():
    subprocess.run(["ip", "netns", "add", NAMESPACE], check=True)
    try:
        yield NAMESPACE
    finally:
        subprocess.run(["ip", "netns", "delete", NAMESPACE], check=False)


def in_netns(namespace: str, *argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True, **kwargs)


def run_reset(namespace: str, tmp_path) -> subprocess.CompletedProcess:
    """The rendered reset.sh in the namespace; `ip netns exec` gives it a private mount namespace, where
    the paths it removes are empty tmpfs mounts and kubeadm is a stub: nothing on this machine changes.
    ipvsadm is a stub too: this kernel may have no IPVS, which is not what is tested here."""
    script = tmp_path / "reset.sh"
    script.write_text(render("reset.sh", {"NODE_NAME": "w1", "CRI_SOCKET": "unix:///run/containerd/containerd.sock"}))
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for tool in ("kubeadm", "ipvsadm"):
        (stubs / tool).write_text("#!/bin/sh\nexit 0\n")
        (stubs / tool).chmod(0o755)
    sandbox = "for d in /root /etc/cni /etc/kubernetes; do [ -d $d ] && mount -t tmpfs none $d; done; " \
              f"PATH={stubs}:$PATH bash {script}"
    return in_netns(namespace, "sh", "-c", sandbox)


def test_reset_removes_kube_proxys_nftables_tables_and_keeps_the_machines_own(netns, tmp_path):
    in_netns(netns, "nft", "-f", "-", input=RULESET, check=True)
    result = run_reset(netns, tmp_path)
    assert result.returncode == 0, result.stderr
    tables = in_netns(netns, "nft", "list", "tables", check=True).stdout.splitlines()
    assert tables == ["table inet filter"]


def test_reset_without_kube_proxy_tables_succeeds(netns, tmp_path):
    """Idempotent: a second reset (or one in iptables mode) finds nothing to remove."""
    result = run_reset(netns, tmp_path)
    assert result.returncode == 0, result.stderr
    assert in_netns(netns, "nft", "list", "tables", check=True).stdout == ""
