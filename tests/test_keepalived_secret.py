"""Issue 14: keepalived.conf holds the VRRP password, so it is never readable by others, and the
password keepalived reads is exactly the configured one; a keepalivedAuthPass keepalived would cut,
split or reinterpret is refused by the config.

The rendered haproxy-keepalived.sh runs for real as root in a private network namespace whose /etc is
an overlay (nothing on this machine changes), under strace, and Debian's real keepalived (bookworm's
2.2.7; the pod runs 2.0.20, whose auth_pass handler and word splitting are the same:
keepalived/vrrp/vrrp_parser.c vrrp_auth_pass_handler, lib/parser.c alloc_strvec_r) reads the result.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from components.config import ConfigError, parse_spec
from components.loadbalancer import haproxy_keepalived_params
from components.scripts import render
from harness import base_config, run_program
from netns import run_on_private_host

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network and mount namespaces need root")

LOAD_BALANCER = {"endpoint": "198.18.0.100:8443",
                 "loadBalancer": {"type": "haproxy-keepalived", "vip": "198.18.0.100", "interface": "eth0"}}


def config(**overrides):
    return base_config(controlPlane=LOAD_BALANCER, **overrides)


def script() -> str:
    spec = parse_spec(config())
    return render("haproxy-keepalived.sh", haproxy_keepalived_params(spec, spec.control_planes[0]))


# Runs inside the namespaces with $T the test's directory and the password on stdin: the rendered
# script under strace (every file syscall, fds shown as paths), then keepalived's config test and a
# dump of what it parsed (-d: "Password = ..."), each bounded in time.
DRIVER = r"""
set -euo pipefail
mkdir -p "$T/upper" "$T/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/upper,workdir=$T/work" /etc
strace -f -y -qq -o "$T/trace" -e trace=%file,%desc bash "$T/script.sh" 2>"$T/log"
stat -c %a /etc/keepalived/keepalived.conf >"$T/mode"
keepalived --config-test -f /etc/keepalived/keepalived.conf >"$T/test" 2>&1 && echo 0 >"$T/test-rc" || echo $? >"$T/test-rc"
timeout 3 keepalived -n -l -d -P -f /etc/keepalived/keepalived.conf -p "$T/k.pid" -r "$T/v.pid" >"$T/dump" 2>&1 || true
"""


def run(tmp_path: Path, password: str) -> Path:
    for tool in ("keepalived", "strace"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (.ci/run installs Debian's)")
    (tmp_path / "script.sh").write_text(script())
    result = run_on_private_host("kc14-keepalived", DRIVER, tmp_path, timeout=120, stdin=password)
    assert result.returncode == 0, result.stderr + (tmp_path / "log").read_text()
    return tmp_path


def read_password(out: Path) -> str:
    return re.search(r"^.*: +Password = (.*)$", (out / "dump").read_text(), re.M).group(1)


def modes_given(trace: str, name: str) -> list[tuple[str, int]]:
    """(path, mode) for each file whose path holds NAME as the traced processes create it (the first
    O_CREAT open of a path: later ones keep the mode) and each chmod of it, in order."""
    created, modes = set(), []
    for line in trace.splitlines():
        if name not in line:
            continue
        opened = re.search(r'open(?:at)?\(.*?"([^"]+)", [^,]*O_CREAT[^,]*, (0[0-7]{3})', line)
        changed = (re.search(r'chmod(?:at)?\((?:[^,]*, )?"([^"]+)", (0[0-7]{3})', line)
                   or re.search(r"fchmod\(\d+<([^>]+)>, (0[0-7]{3})", line))
        if opened and opened.group(1) not in created:
            created.add(opened.group(1))
            modes.append((opened.group(1), int(opened.group(2), 8)))
        elif changed:
            modes.append((changed.group(1), int(changed.group(2), 8)))
    return modes


@needs_root
def test_keepalived_conf_is_never_readable_by_others(tmp_path):
    out = run(tmp_path, "vrrp5ecr")
    # Every mode the config (or a temporary file renamed onto it) had while it held the password.
    modes = modes_given((out / "trace").read_text(), "keepalived.conf")
    assert modes
    assert all(mode & 0o077 == 0 for _, mode in modes), [(path, oct(mode)) for path, mode in modes]
    assert (out / "mode").read_text().strip() == "600"


@needs_root
@pytest.mark.parametrize("password", ["0123abcd", "%*+,/:@~", "(;<=>?[^"])
def test_real_keepalived_reads_exactly_the_configured_password(tmp_path, password):
    parse_spec(config(), keepalived_auth_pass=password)  # a password the config accepts ...
    out = run(tmp_path, password)
    # ... passes keepalived's config test (6: OK but script_security off, see test_keepalived_haproxy.py)
    assert (out / "test-rc").read_text().strip() in ("0", "6"), (out / "test").read_text()
    assert "Truncating" not in (out / "test").read_text()
    assert read_password(out) == password


@needs_root
def test_the_password_is_substituted_literally(tmp_path):
    # bash 5.2's patsub_replacement would put '@AUTH_PASS@' for an unquoted '&' in ${conf//pat/rep*};
    # the config refuses '&', the script does not depend on that.
    out = run(tmp_path, "a&b")
    assert read_password(out) == "a&b"


@pytest.mark.parametrize("password", ["123456789", "", "pass word", "pa\nss", "pa\tss", "päss", "a&b",
                                      "a!b", "a#b", 'a"b', "a'b", "a$b", "a\\b", "a{b", "a}b"])
def test_a_password_keepalived_would_cut_or_split_is_refused(password):
    with pytest.raises(ConfigError) as error:
        parse_spec(config(), keepalived_auth_pass=password)
    assert "keepalivedAuthPass:" in str(error.value)


def test_the_refusal_does_not_echo_the_password():
    with pytest.raises(ConfigError) as error:
        parse_spec(config(), keepalived_auth_pass="s3cr3t!!x")
    assert "s3cr3t" not in str(error.value) and "9 characters" in str(error.value)


def test_an_eight_character_password_is_accepted():
    parse_spec(config(), keepalived_auth_pass="Ab-_.:+=")


def test_the_program_checks_the_stack_s_keepalived_auth_pass():
    with pytest.raises(ConfigError, match="keepalivedAuthPass: \\(secret, 9 characters\\)"):
        run_program(config(keepalivedAuthPass="123456789"))


def test_the_program_sends_a_set_password_as_a_secret_on_stdin():
    command = run_program(config(keepalivedAuthPass="Ab-_.:+=")).named("cp1-haproxy-keepalived-before-kubeadm")
    assert command.is_secret("stdin") and command.plain("stdin") == "Ab-_.:+="
