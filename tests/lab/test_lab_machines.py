"""The lab's machines as the program's SSH sessions see them (tests/lab/hosts.py): a stopped machine's sessions end at
once, and a session to a machine gone silent ends when the TCP keepalive the real pulumi-command sets gives up (idle
15 s, 9 probes 15 s apart: Lab._network). Without either, a scenario that stops a machine under a running step
would wait for that step's session until CI's time runs out.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hosts import Lab, in_ns

pytestmark = pytest.mark.lab

NODE = "m1"
CONFIG = {"kubernetesVersion": "1.36.4", "nodes": [{"name": NODE, "address": "198.18.0.11", "roles": ["worker"]}]}
KEEPALIVE_GIVES_UP = 15 + 9 * 15
COMMAND = "sleep 900"


@pytest.fixture(scope="module")
def lab():
    lab = Lab(CONFIG)
    try:
        yield lab.up()
    finally:
        lab.down()


def session_ended_after(lab: Lab, cut) -> float:
    """Seconds from CUT (run once the session's command runs on the machine) to the session's end."""
    with ThreadPoolExecutor(1) as pool:
        session = pool.submit(lab.ssh, NODE, f"exec {COMMAND}", check=False)
        try:
            while lab.ssh(NODE, f"pgrep -fx '{COMMAND}'", check=False).returncode != 0:
                assert not session.done(), f"the session ended before its command ran: {session.result().stderr}"
                time.sleep(0.2)
            cut()
            started = time.monotonic()
            assert session.result(timeout=KEEPALIVE_GIVES_UP + 60).returncode != 0
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
