"""The lab's systemctl stand-in (tests/lab/standins/standin.py) runs long-running services from their unit
files as systemd 252 does (the kubelet of the real lab mode: kubelet.service + 10-kubeadm.conf, restarted
after RestartSec while it has no config; containerd: Type=notify).

Each test runs in a private mount and PID namespace whose unit directories and stand-in state are empty
tmpfs: nothing of this machine changes and every process started ends with the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

STANDIN = Path(__file__).parent / "lab" / "standins" / "standin.py"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare for a private mount namespace")

PRIVATE = """set -euo pipefail
for d in /etc/systemd/system /usr/lib/systemd/system /var/lib/kclab-node /var/lib/kclab; do
  mkdir -p "$d" && mount -t tmpfs tmpfs "$d"
done
install -D -m 0755 {standin} "$T/bin/systemctl"
systemctl() {{ "$T/bin/systemctl" "$@"; }}
unit() {{ mkdir -p "$(dirname "/usr/lib/systemd/system/$1")"; cat > "/usr/lib/systemd/system/$1"; }}
"""


def run(tmp_path: Path, script: str, timeout: int = 60) -> subprocess.CompletedProcess:
    driver = PRIVATE.format(standin=STANDIN) + textwrap.dedent(script)
    return subprocess.run(["unshare", "-m", "--propagation", "private", "-p", "--fork", "--kill-child", "--mount-proc",
                           "bash", "-c", driver], env={**os.environ, "T": str(tmp_path)},
                          capture_output=True, text=True, timeout=timeout)


def ok(tmp_path: Path, script: str, timeout: int = 60) -> str:
    result = run(tmp_path, script, timeout)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def args_script(tmp_path: Path) -> Path:
    """A program that writes its arguments, one [arg] a line, and its environment's X to $T/out."""
    script = tmp_path / "args.sh"
    script.write_text(f'#!/bin/bash\n{{ for a; do echo "[$a]"; done; echo "X=${{X-}}"; }} > {tmp_path}/out\n'
                      "exec sleep 1000\n")
    script.chmod(0o755)
    return script


def test_a_started_service_runs_on_after_systemctl_returns(tmp_path):
    out = ok(tmp_path, """
        unit demo.service <<'EOF'
        [Service]
        ExecStart=/bin/sleep 1000
        EOF
        systemctl start demo
        systemctl is-active demo
        pgrep -x sleep >/dev/null && echo running
        """)
    assert out.split() == ["active", "running"]


def test_a_drop_in_resets_exec_start_and_expands_variables_as_systemd_does(tmp_path):
    # systemd.service(5) COMMAND LINES: "$SPLIT" alone is split at whitespace, "${WHOLE}" stays one word.
    args = args_script(tmp_path)
    ok(tmp_path, f"""
        unit demo.service <<'EOF'
        [Service]
        ExecStart=/bin/false
        EOF
        unit demo.service.d/10-args.conf <<'EOF'
        [Service]
        Environment="SPLIT=a  b" "WHOLE=c d"
        ExecStart=
        ExecStart={args} $SPLIT ${{WHOLE}} pre${{WHOLE}}post $UNSET
        EOF
        systemctl start demo
        for _ in $(seq 50); do [[ -s $T/out ]] && break; sleep 0.1; done
        """)
    assert (tmp_path / "out").read_text().splitlines()[:4] == ["[a]", "[b]", "[c d]", "[prec dpost]"]


def test_an_environment_file_overrides_environment_and_a_missing_optional_one_is_skipped(tmp_path):
    args = args_script(tmp_path)
    ok(tmp_path, f"""
        printf '# comment\\nX="from file"\\n' > $T/env
        unit demo.service <<EOF
        [Service]
        Environment=X=inline
        EnvironmentFile=-/nonexistent/env
        EnvironmentFile=$T/env
        ExecStart={args}
        EOF
        systemctl start demo
        for _ in $(seq 50); do [[ -s $T/out ]] && break; sleep 0.1; done
        """)
    assert "X=from file" in (tmp_path / "out").read_text().splitlines()


def test_a_missing_environment_file_without_dash_fails_the_start(tmp_path):
    result = run(tmp_path, """
        unit demo.service <<'EOF'
        [Service]
        EnvironmentFile=/nonexistent/env
        ExecStart=/bin/sleep 1000
        EOF
        systemctl start demo
        """)
    assert result.returncode != 0 and "Job for demo.service failed" in result.stderr


def test_restart_always_starts_an_exited_service_again_after_restart_sec(tmp_path):
    out = ok(tmp_path, """
        unit demo.service <<EOF
        [Service]
        ExecStart=/bin/sh -c 'echo run >> $T/runs; exit 1'
        Restart=always
        RestartSec=1
        EOF
        systemctl start demo
        sleep 0.5; wc -l < $T/runs; systemctl is-active demo || true
        sleep 1.5; wc -l < $T/runs
        """)
    first, state, later = out.split()
    assert (first, state) == ("1", "activating") and int(later) >= 2


def test_without_restart_an_exited_service_stays_down(tmp_path):
    out = ok(tmp_path, """
        unit demo.service <<EOF
        [Service]
        ExecStart=/bin/sh -c 'echo run >> $T/runs; exit 1'
        RestartSec=0.2
        EOF
        systemctl start demo || true
        sleep 1; wc -l < $T/runs; systemctl is-active demo || true
        """)
    assert out.split() == ["1", "inactive"]


def test_stop_ends_the_service_and_is_active_says_inactive(tmp_path):
    result = run(tmp_path, """
        unit demo.service <<'EOF'
        [Service]
        ExecStart=/bin/sleep 1000
        Restart=always
        EOF
        systemctl start demo
        pgrep -x sleep >/dev/null && echo running
        systemctl stop demo
        sleep 0.5
        pgrep -x sleep && echo still-running
        systemctl is-active demo
        """)
    assert result.stdout.split() == ["running", "inactive"] and result.returncode == 3


def test_restart_runs_a_new_main_process(tmp_path):
    out = ok(tmp_path, """
        unit demo.service <<'EOF'
        [Service]
        ExecStart=/bin/sleep 1000
        EOF
        systemctl start demo; before=$(pgrep -x sleep)
        systemctl restart demo; after=$(pgrep -x sleep)
        [[ $before != "$after" ]] && echo new
        """)
    assert out.split() == ["new"]


def test_a_failing_exec_start_pre_with_dash_does_not_stop_the_start(tmp_path):
    out = ok(tmp_path, """
        unit demo.service <<EOF
        [Service]
        ExecStartPre=-/bin/sh -c 'echo pre > $T/pre; exit 1'
        ExecStartPre=-/nonexistent/modprobe overlay
        ExecStart=/bin/sleep 1000
        EOF
        systemctl start demo
        cat $T/pre
        pgrep -x sleep >/dev/null && echo running
        """)
    assert out.split() == ["pre", "running"]


def test_a_notify_service_is_started_once_it_sends_ready(tmp_path):
    notify = tmp_path / "notify.py"
    notify.write_text("import os, socket, time\ntime.sleep(1.5)\n"
                      "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n"
                      "time.sleep(1000)\n")
    out = ok(tmp_path, f"""
        unit demo.service <<'EOF'
        [Service]
        Type=notify
        ExecStart=/usr/bin/python3 {notify}
        EOF
        start=$(date +%s%N); systemctl start demo; echo $(( ($(date +%s%N) - start) / 1000000 ))
        systemctl is-active demo
        """)
    elapsed, state = out.split()
    assert int(elapsed) >= 1400 and state == "active"


def test_status_tells_kubeadm_whether_the_unit_exists(tmp_path):
    # kubeadm's ServiceExists (cmd/kubeadm/app/util/initsystem/initsystem_unix.go@v1.36.4) reads `systemctl status`.
    result = run(tmp_path, """
        unit demo.service <<'EOF'
        [Service]
        ExecStart=/bin/sleep 1000
        EOF
        systemctl status demo || true
        systemctl status absent
        """)
    assert "Loaded: loaded" in result.stdout and "could not be found" in result.stderr


def test_is_enabled_follows_enable(tmp_path):
    out = ok(tmp_path, """
        unit demo.service <<'EOF'
        [Service]
        ExecStart=/bin/sleep 1000
        EOF
        systemctl is-enabled demo || true
        systemctl enable demo
        systemctl is-enabled demo
        """)
    assert out.split() == ["disabled", "enabled"]


def test_a_unit_without_unit_file_keeps_the_stand_in_lab_behaviour(tmp_path):
    out = ok(tmp_path, """
        systemctl start nounit
        systemctl is-active nounit
        """)
    assert out.split() == ["active"]
