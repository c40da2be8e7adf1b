"""Issue 11 item 4: `vip_interface` (common.sh) in a real network namespace of its own.

The namespace has the node's subnet on eth0 and, where the node holds the VIP, the VIP as a /32
(kube-vip and keepalived add it that way) — where `ip route get VIP` answers `local VIP dev lo`.
"""

from __future__ import annotations

import os
import subprocess
from typing import Iterator

import pytest

from components.scripts import COMPONENTS_DIR

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

VIP = "198.18.0.100"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    """A private namespace with eth0 (198.18.0.11/24) and a default route through eth1; veths stand in
    for NICs (this kernel has no dummy driver)."""
    name = f"kc11-vipif-{os.getpid()}"
    ip("netns", "add", name)
    try:
        for link in ("eth0", "eth1", "vipholder"):
            ip("-n", name, "link", "add", link, "type", "veth", "peer", "name", f"{link}p")
            ip("-n", name, "link", "set", f"{link}p", "up")
            ip("-n", name, "link", "set", link, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "addr", "add", "198.18.0.11/24", "dev", "eth0")
        ip("-n", name, "addr", "add", "192.0.2.11/24", "dev", "eth1")
        ip("-n", name, "route", "add", "default", "via", "192.0.2.1", "dev", "eth1")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def vip_interface(netns: str, vip: str = VIP, configured: str = "") -> subprocess.CompletedProcess:
    code = f"set -euo pipefail\nsource {COMPONENTS_DIR / 'common.sh'}\nvip_interface {vip} '{configured}'"
    return subprocess.run(["ip", "netns", "exec", netns, "bash", "-c", code], capture_output=True, text=True)


def test_the_node_holding_the_vip_gets_the_subnets_interface_not_lo(netns):
    ip("-n", netns, "addr", "add", f"{VIP}/32", "dev", "vipholder")
    held = subprocess.run(["ip", "netns", "exec", netns, "ip", "-o", "route", "get", VIP],
                          capture_output=True, text=True, check=True).stdout
    assert held.startswith("local") and " dev lo " in held  # what the old lookup read
    assert vip_interface(netns).stdout.strip() == "eth0"


def test_the_vip_held_on_the_subnets_own_interface_keeps_it(netns):
    ip("-n", netns, "addr", "add", f"{VIP}/32", "dev", "eth0")
    assert vip_interface(netns).stdout.strip() == "eth0"


def test_a_node_without_the_vip_takes_the_connected_subnet_over_the_default_route(netns):
    assert vip_interface(netns).stdout.strip() == "eth0"


def test_a_vip_outside_every_subnet_follows_the_default_route(netns):
    assert vip_interface(netns, "203.0.113.7").stdout.strip() == "eth1"


def test_an_ipv6_vip_held_by_the_node_gets_the_subnets_interface(netns):
    ip("-n", netns, "addr", "add", "2001:db8::11/64", "dev", "eth0", "nodad")
    ip("-n", netns, "addr", "add", "2001:db8::100/128", "dev", "vipholder", "nodad")
    assert vip_interface(netns, "2001:db8::100").stdout.strip() == "eth0"


def test_an_on_link_host_route_to_the_vip_counts(netns):
    # As the lab's hosts are wired: /32 addresses and a /32 on-link route to every other address.
    ip("-n", netns, "route", "add", f"{VIP}/32", "dev", "vipholder")
    assert vip_interface(netns).stdout.strip() == "vipholder"


def test_the_configured_interface_wins(netns):
    assert vip_interface(netns, configured="vipholder").stdout.strip() == "vipholder"


def test_no_route_to_the_vip_names_the_key_to_set(netns):
    ip("-n", netns, "route", "del", "default")
    result = vip_interface(netns, "203.0.113.7")
    assert result.returncode != 0
    assert "set controlPlane.loadBalancer.interface" in result.stderr
