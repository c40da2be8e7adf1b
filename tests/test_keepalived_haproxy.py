"""Issue 11 item 7: keepalived priorities per node, and the rendered keepalived and haproxy configs
checked by Debian's real keepalived (`-t`) and haproxy (`-c`).

Debian bookworm ships keepalived 2.2.7 and haproxy 2.6; the pods run keepalived 2.0.20 and haproxy 2.8
(the versions kubeadm's ha-considerations guide names): the config syntax used is common to both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from components.config import parse_spec
from components.loadbalancer import haproxy_config, keepalived_config
from components.scripts import COMPONENTS_DIR
from harness import base_config

SPEC = parse_spec(base_config(
    nodes=[*base_config()["nodes"], {"name": "cp4", "address": "10.0.0.14", "roles": ["control-plane"]},
           {"name": "cp5", "address": "10.0.0.15", "roles": ["control-plane"]}],
    controlPlane={"endpoint": "10.0.0.100:8443", "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}}))


def rendered(node_name: str) -> str:
    node = next(n for n in SPEC.control_planes if n.name == node_name)
    return keepalived_config(SPEC, node)


def priority(conf: str) -> int:
    return int(re.search(r"^\s*priority (\d+)$", conf, re.M).group(1))


def check_weight(conf: str) -> int:
    script = re.search(r"vrrp_script check_apiserver \{(.*?)\}", conf, re.S).group(1)
    return int(re.search(r"^\s*weight (-?\d+)$", script, re.M).group(1))


def test_the_first_control_plane_is_master_at_101():
    conf = rendered("cp1")
    assert "state MASTER" in conf and priority(conf) == 101


@pytest.mark.parametrize("name", ["cp2", "cp3", "cp4", "cp5"])
def test_every_other_control_plane_is_backup_at_100(name):
    conf = rendered(name)
    assert "state BACKUP" in conf and priority(conf) == 100


def test_a_master_whose_check_fails_drops_below_every_healthy_backup():
    # keepalived.conf(5) "VRRP script(s)": a negative weight is subtracted from the priority after
    # <fall> failures; an equal priority is decided by the higher address (keepalived vrrp.c,
    # RFC 5798 §6.4.3), so the failing MASTER must end strictly below every backup.
    master = rendered("cp1")
    failed = priority(master) + check_weight(master)
    assert check_weight(master) < 0
    assert all(failed < priority(rendered(n.name)) for n in SPEC.control_planes[1:])


def test_a_failing_backup_drops_below_a_healthy_backup():
    backup = rendered("cp2")
    assert priority(backup) + check_weight(backup) < priority(rendered("cp3"))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="keepalived -t checks the interface: a namespace needs root")


@pytest.fixture
def keepalived_host(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A private network namespace with eth0, and a directory to mount over /etc/keepalived."""
    if shutil.which("keepalived") is None:
        pytest.fail("keepalived is not installed (.ci/run installs Debian's keepalived)")
    name = f"kc11-keepalived-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "eth0", "up"], check=True)
        etc = tmp_path / "keepalived"
        etc.mkdir()
        check = COMPONENTS_DIR / "keepalived-check-apiserver.sh"
        (etc / "check_apiserver.sh").write_text(check.read_text().replace("@PORT@", "8443"))
        (etc / "check_apiserver.sh").chmod(0o755)
        yield name, etc
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@needs_root
@pytest.mark.parametrize("name", ["cp1", "cp2"])
def test_real_keepalived_accepts_the_rendered_config(keepalived_host, name):
    netns, etc = keepalived_host
    # As haproxy-keepalived.sh fills it in on the node.
    (etc / "keepalived.conf").write_text(
        rendered(name).replace("@INTERFACE@", "eth0").replace("@AUTH_PASS@", "vrrp5ecr") + "\n")
    result = subprocess.run(
        ["ip", "netns", "exec", netns, "unshare", "-m", "sh", "-c",
         f"mount --bind {etc} /etc/keepalived && keepalived --config-test -f /etc/keepalived/keepalived.conf"],
        capture_output=True, text=True)
    # Exit 6 is keepalived's "config OK but script_security not enabled" (core/main.c config_test_exit,
    # CONFIG_SECURITY_ERROR): kubeadm's template runs the check as root without script_security, and
    # that is the only complaint allowed.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode in (0, 6), complaints
    assert all(line.startswith("SECURITY VIOLATION - scripts are being executed") for line in complaints), complaints


def test_real_haproxy_accepts_the_rendered_config(tmp_path):
    if shutil.which("haproxy") is None:
        # .ci/run installs it as root; without root it cannot.
        (pytest.fail if os.geteuid() == 0 else pytest.skip)("haproxy is not installed (.ci/run installs Debian's)")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_config(SPEC))
    result = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout + result.stderr
