"""The lab's machines as the program's SSH sessions see them (tests/lab/hosts.py): a stopped machine's sessions end at
once, and a session to a machine gone silent ends when the TCP keepalive the real pulumi-command sets gives up (idle
15 s, 9 probes 15 s apart: Lab._network). Without either, a scenario that stops a machine under a running step
would wait for that step's session until CI's time runs out.

Keepalive applies to an idle connection only: while the client has data the machine has not acknowledged, the kernel
retransmits instead (Linux net/ipv4/tcp_timer.c tcp_keepalive_timer: packets out → re-armed, no probe), for about
15 minutes (tcp_retries2). So the silent-machine test cuts the link once the session's connection is idle on the
client's side, which `ss` shows as its keepalive timer; cut a moment earlier (the session's last start-up packet
in flight) it would wait out the retransmissions instead, as CI's run of stop 21 did.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hosts import CLIENT_NS, Lab, in_ns
from scenario import wait_until

pytestmark = pytest.mark.lab

NODE = "m1"
CONFIG = {"kubernetesVersion": "1.36.4", "nodes": [{"name": NODE, "address": "198.18.0.11", "roles": ["worker"]}]}
KEEPALIVE_GIVES_UP = 15 + 9 * 15
COMMAND = "sleep 900"
IDLE_WITHIN = 30


def client_connections(address: str) -> list[str]:
    """The client's established TCP connections to ADDRESS, with their timers (ss -o)."""
    return in_ns(CLIENT_NS, "ss", "-Htno", "state", "established", "dst", address).stdout.splitlines()


def idle(address: str) -> bool:
    """Whether the one connection to ADDRESS has nothing unacknowledged: its keepalive timer is the one armed."""
    connections = client_connections(address)
    return len(connections) == 1 and "timer:(keepalive," in connections[0]


@pytest.fixture(scope="module")
def lab():
    lab = Lab(CONFIG)
    try:
        yield lab.up()
    finally:
        lab.down()


def session_ended_after(lab: Lab, cut) -> float:
    """Seconds from CUT (run once the session's command runs on the machine and its connection is idle) to the
    session's end."""
    address = lab.hosts[NODE].addresses[0]
    with ThreadPoolExecutor(1) as pool:
        session = pool.submit(lab.ssh, NODE, f"exec {COMMAND}", check=False)
        try:
            while lab.ssh(NODE, f"pgrep -fx '{COMMAND}'", check=False).returncode != 0:
                assert not session.done(), f"the session ended before its command ran: {session.result().stderr}"
                time.sleep(0.2)
            wait_until(f"the session's connection to {address} idle (its keepalive timer armed)",
                       lambda: idle(address), IDLE_WITHIN)
            cut()
            started = time.monotonic()
            try:
                assert session.result(timeout=KEEPALIVE_GIVES_UP + 60).returncode != 0
            except TimeoutError:
                pytest.fail(f"the session outlived the keepalive; its connection: {client_connections(address)}")
            return time.monotonic() - started
        finally:  # a session that never ends is ended here, so that the failure is reported, not a hang
            subprocess.run(["pkill", "-f", f"exec {COMMAND}"], check=False)


def test_a_stopped_machines_sessions_end_at_once(lab):
    try:
        assert session_ended_after(lab, lambda: lab.stop_host(NODE)) < 5
    finally:
        lab.start_host(NODE)


def test_a_session_to_a_machine_gone_silent_ends_with_the_tcp_keepalive(lab):
    seconds = session_ended_after(lab, lambda: in_ns(lab.hosts[NODE].namespace, "ip", "link", "set", lab.nic, "down"))
    assert KEEPALIVE_GIVES_UP - 20 < seconds < KEEPALIVE_GIVES_UP + 20
