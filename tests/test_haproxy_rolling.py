"""Issue 11 item 15: haproxy-keepalived.sh waits until the restarted haproxy answers before it returns
(the next control plane's update waits for it, see test_loadbalancer.py).

The rendered script runs for real as root in a private network namespace whose /etc is an overlay (so
nothing on this machine changes). `openssl s_server -www` stands in for haproxy (it answers
`GET /healthz` over TLS with 200, as curl -k asks) and a small loop for the kubelet, which restarts
the static pod some seconds after its manifest changed (its file source polls every 20 s by default).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from components.config import parse_spec
from components.loadbalancer import haproxy_keepalived_params
from components.scripts import render
from harness import KEEPALIVED_AUTH_PASS, base_config
from netns import run_on_private_host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network and mount namespaces need root")

PORT = 8443


def spec(control_planes: int):
    nodes = [{"name": f"cp{i}", "address": f"198.18.0.1{i}", "roles": ["control-plane"]}
             for i in range(1, control_planes + 1)]
    return parse_spec(base_config(nodes=nodes, controlPlane={
        "endpoint": f"198.18.0.100:{PORT}",
        "loadBalancer": {"type": "haproxy-keepalived", "vip": "198.18.0.100", "interface": "eth0"}}))


def script(control_planes: int) -> str:
    s = spec(control_planes)
    return render("haproxy-keepalived.sh", haproxy_keepalived_params(s, s.control_planes[0]))


# Runs inside the namespaces. $T: the test's directory. Functions the scenarios call:
#   run_step N   the rendered script for N control planes (cp1's view); appends "done" to events
#   haproxy_up   starts the stand-in haproxy;  kubelet   restarts it 3 s after each manifest change
DRIVER = r"""
set -euo pipefail
mkdir -p "$T/upper" "$T/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/upper,workdir=$T/work" /etc
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -subj /CN=haproxy -days 1 2>/dev/null
event() { echo "$1 $(date +%s.%N)" >>"$T/events"; }
haproxy_up() {
  openssl s_server -quiet -www -accept PORT -cert "$T/cert.pem" -key "$T/key.pem" >/dev/null 2>&1 &
  echo $! >"$T/haproxy.pid"
  for _ in $(seq 50); do ss -Hltn "sport = :PORT" | grep -q . && return; sleep 0.1; done
}
manifest_time() { stat -c %Y /etc/kubernetes/manifests/haproxy.yaml 2>/dev/null || echo 0; }
kubelet() {
  local seen=$1
  while sleep 0.2; do
    [[ $(manifest_time) != "$seen" ]] || continue
    seen=$(manifest_time)
    sleep 3
    kill "$(cat "$T/haproxy.pid")"; wait "$(cat "$T/haproxy.pid")" 2>/dev/null || true
    # Before the new one starts: the script may see it answer before haproxy_up has seen it listen.
    event restarted
    haproxy_up
  done
}
PASS=AUTHPASS
run_step() { echo "$PASS" | bash "$T/script-$1.sh" 2>>"$T/log"; event done; }
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
""".replace("PORT", str(PORT)).replace("AUTHPASS", KEEPALIVED_AUTH_PASS)


def run(tmp_path: Path, scenario: str) -> tuple[list[tuple[str, float]], str]:
    for n in (3, 4):
        (tmp_path / f"script-{n}.sh").write_text(script(n))
    # a PID namespace: every stand-in process ends with the driver
    result = run_on_private_host("kc11-haproxy", DRIVER + scenario, tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr + (tmp_path / "log").read_text()
    events = [(line.split()[0], float(line.split()[1])) for line in (tmp_path / "events").read_text().splitlines()]
    return events, (tmp_path / "log").read_text()


def test_a_changed_backend_list_returns_only_once_the_restarted_haproxy_answers(tmp_path):
    events, log = run(tmp_path, """
run_step 3; haproxy_up; sleep 1.2          # the cluster as it was, its haproxy running
kubelet "$(manifest_time)" &
run_step 4                                 # cp4 added: new backends
""")
    assert [e for e, _ in events] == ["done", "restarted", "done"], log
    assert "waiting for the kubelet to restart it" in log


def test_a_retry_after_the_manifest_was_written_still_waits_for_the_restart(tmp_path):
    events, log = run(tmp_path, """
run_step 3; haproxy_up; sleep 1.2
seen=$(manifest_time)
echo "$PASS" | timeout 2 bash "$T/script-4.sh" 2>>"$T/log" || true   # interrupted after writing the manifest ...
kubelet "$seen" &                          # ... and the kubelet only now gets to it
run_step 4                                 # the retry
""")
    assert [e for e, _ in events][-2:] == ["restarted", "done"], log


def test_nothing_waits_before_haproxy_runs(tmp_path):
    events, log = run(tmp_path, "run_step 3; run_step 4")
    assert [e for e, _ in events] == ["done", "done"]
    assert "waiting" not in log
