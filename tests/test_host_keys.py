"""SSH trust on first use (components/host_keys.py): what the program wires, and what its two scripts do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.config import ConfigError, parse_spec
from components.scripts import render
from harness import (LOCAL_COMMAND, SSH_PRIVATE_KEY, base_config, host_key_of, inner_script, plan, run_program,
                     script_param)

PINNED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILNSVu4NHxeS6VVr8f5+nRZwsxVRM43codk687UWGarl"
BASTION = {"host": "203.0.113.10", "user": "jump", "port": 2022}
RSA = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDLLvddCHemZ+tI+T6t3E07aUmqloEpV8EdxiR8ZpQ2PwIF+GvvOSyTVjOnSKh8PPjhO2+bYfZy"
       "55by/zqtwfJuEtGuP6B9mvaCuCzcAH/alWtzoiF8jOPtJGu042L7e734zlDqZQa0Yg2qUpUdvO2Ro3bo5oA4A3xxhRq5byR//Q==")


def with_bastion(**bastion) -> dict:
    return base_config(ssh={"user": "ubuntu", "bastion": {**BASTION, **bastion}})


def test_every_command_to_a_node_pins_the_key_recorded_for_it_and_waits_for_the_record():
    config = base_config()
    by_address = {n["address"]: n["name"] for n in config["nodes"]}
    run = run_program(config)
    for command in run.commands:
        node = by_address[command.host]  # e.g. w2-register runs on cp1
        assert command.plain("connection")["hostKey"] == host_key_of(node), command.name
        assert run.depends_on(command.name, f"{node}-host-key"), command.name


def test_without_a_bastion_every_key_is_scanned_from_where_pulumi_runs_without_credentials():
    run = run_program(base_config())
    scans = [r for r in run.resources if r.name.endswith("-host-key-scan")]
    assert {r.name for r in scans} == {f"{n}-host-key-scan" for n in ("cp1", "cp2", "cp3", "w1", "w2")}
    for scan in scans:
        assert scan.typ == LOCAL_COMMAND and "connection" not in scan.inputs
        assert "ssh-keyscan" in scan.plain("create")
        assert SSH_PRIVATE_KEY.splitlines()[1] not in str(scan.inputs)
    assert script_param(run.named("w1-host-key-scan").plain("create"), "HOST") == "10.0.0.21"


def test_a_pinned_host_key_wins_and_nothing_is_recorded_for_that_node():
    config = base_config()
    config["nodes"][3]["hostKey"] = PINNED
    run = run_program(config)
    assert not {"w1-host-key", "w1-host-key-scan"} & run.names()
    assert run.named("w1-join").plain("connection")["hostKey"] == PINNED


def test_the_bastion_key_is_recorded_locally_and_nodes_behind_it_are_scanned_on_the_bastion():
    run = run_program(with_bastion())
    assert run.named("ssh.bastion-host-key-scan").typ == LOCAL_COMMAND
    scan = run.named("w1-host-key-scan")
    conn = scan.plain("connection")
    # on the bastion itself, checked against the bastion's recorded key, as the bastion's user
    assert (conn["host"], conn["port"], conn["user"], conn["hostKey"]) == \
        ("203.0.113.10", 2022, "jump", host_key_of("ssh.bastion"))
    assert "proxy" not in conn and "sudo" not in scan.plain("create")
    assert "ssh-keyscan" in inner_script(scan.plain("create"))
    join = run.named("w1-join").plain("connection")
    assert join["hostKey"] == host_key_of("w1") and join["proxy"]["hostKey"] == host_key_of("ssh.bastion")


def test_a_pinned_bastion_key_wins():
    run = run_program(with_bastion(hostKey=PINNED))
    assert "ssh.bastion-host-key" not in run.names()
    assert run.named("w1-host-key-scan").plain("connection")["hostKey"] == PINNED
    assert run.named("w1-join").plain("connection")["proxy"]["hostKey"] == PINNED


def test_insecure_ignore_host_keys_records_nothing_checks_only_pins_and_warns():
    config = base_config(ssh={"user": "ubuntu", "insecureIgnoreHostKeys": True})
    config["nodes"][3]["hostKey"] = PINNED
    run = run_program(config)
    assert not any(r.custom and "host-key" in r.name for r in run.resources)
    assert "hostKey" not in run.named("w2-join").plain("connection")
    assert run.named("w1-join").plain("connection")["hostKey"] == PINNED
    spec = parse_spec({k: v for k, v in config.items() if k != "sshPrivateKey"}, "dev")
    assert any("ssh.insecureIgnoreHostKeys" in w and "NOT" in w for w in spec.warnings)


def test_a_second_run_records_nothing_again():
    before, after = run_program(base_config()), run_program(base_config())
    assert plan(before, after).touched == set()


def test_rotating_the_ssh_key_rescans_behind_the_bastion_but_replaces_no_record():
    before = run_program(with_bastion())
    rotated = with_bastion()
    rotated["sshPrivateKey"] = SSH_PRIVATE_KEY.replace("b3Bl", "cm90")
    result = plan(before, run_program(rotated))
    assert result.replaced == result.created == result.deleted == set()
    # the scans on the bastion run again (their connection changed); the records compare, never re-record
    assert {"w1-host-key-scan", "cp1-host-key-scan"} <= result.updated
    assert not any(name.endswith("-host-key") for name in result.updated)


def test_raising_a_nodes_host_key_revision_records_that_node_only():
    before = run_program(base_config())
    config = base_config()
    config["nodes"][3]["hostKeyRevision"] = 2
    result = plan(before, run_program(config))
    assert result.replaced == {"w1-host-key-scan", "w1-host-key"}
    assert result.updated == result.created == result.deleted == set()


def test_a_new_address_is_a_first_contact():
    before = run_program(base_config())
    config = base_config()
    config["nodes"][4]["address"] = "10.0.0.42"
    assert {"w2-host-key-scan", "w2-host-key"} <= plan(before, run_program(config)).replaced


def test_a_new_bastion_keeps_the_recorded_node_keys():
    """Adding a bastion changes how nodes are scanned (on the bastion), not what was recorded."""
    result = plan(run_program(base_config()), run_program(with_bastion()))
    assert "w1-host-key-scan" in result.replaced | result.created | result.updated
    assert "w1-host-key" not in result.replaced


@pytest.mark.parametrize("path, value", [
    # the shape of a key, but no key pulumi-command can parse (ssh.ParseAuthorizedKey): "failed to parse host key"
    ("nodes[3].hostKey", "ssh-ed25519 AAAA"),
    ("nodes[3].hostKey", "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIJQxGgCbJJl7NQY6FCdcRN5g9Nn4VViqdwlgTiqxunTH"),
    ("nodes[3].hostKeyRevision", "two words"),
    ("ssh.bastion.hostKeyRevision", "x" * 65),
    ("ssh.insecureIgnoreHostKeys", "yes please"),
])
def test_invalid_host_key_settings_are_refused_naming_the_key(path, value):
    config = with_bastion()
    del config["sshPrivateKey"]
    if path.startswith("nodes"):
        config["nodes"][3][path.rsplit(".", 1)[1]] = value
    elif path.startswith("ssh.bastion"):
        config["ssh"]["bastion"]["hostKeyRevision"] = value
    else:
        config["ssh"]["insecureIgnoreHostKeys"] = value
    with pytest.raises(ConfigError) as error:
        parse_spec(config, "dev")
    assert path in str(error.value)


# ---- the scripts, run with bash ---------------------------------------------------------------------------------

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGjA3rJdC0e1vH0m1w6tOq6X1k0wqJZ3nWm9y7p0q3kD"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO7l2cB1pQ9yq0rEo1o7v0oUeHc1bVt4e1Y7dQ6hZbNn"
RECORD = {"WHAT": "node w1", "ENDPOINT": "10.0.0.21:22", "ACCEPT": "raise hostKeyRevision of node w1"}


def run_script(script: str, env: dict[str, str], path: Path | None = None) -> subprocess.CompletedProcess:
    full = {"PATH": f"{path}:{os.environ['PATH']}" if path else os.environ["PATH"], **env}
    return subprocess.run(["bash", "-c", script], env=full, capture_output=True, text=True, timeout=60)


def test_the_record_is_the_first_scan_and_stays_when_the_same_key_is_scanned_again():
    script = render("host-key-record.sh", RECORD)
    first = run_script(script, {"SCANNED_HOST_KEY": ED25519})
    assert (first.returncode, first.stdout) == (0, ED25519 + "\n")
    again = run_script(script, {"SCANNED_HOST_KEY": ED25519, "PULUMI_COMMAND_STDOUT": ED25519})
    assert (again.returncode, again.stdout) == (0, ED25519 + "\n")


def test_a_changed_key_is_refused_naming_the_host_both_keys_and_how_to_accept():
    result = run_script(render("host-key-record.sh", RECORD),
                        {"SCANNED_HOST_KEY": OTHER, "PULUMI_COMMAND_STDOUT": ED25519})
    assert result.returncode == 1 and result.stdout == ""
    assert "The SSH host key of node w1 (10.0.0.21:22) has changed" in result.stderr
    assert ED25519 in result.stderr and OTHER in result.stderr and "SHA256:" in result.stderr
    assert "raise hostKeyRevision of node w1" in result.stderr


def fake_keyscan(tmp_path: Path, lines: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh-keyscan").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat <<'EOF'\n{lines}EOF\n")
    (bin_dir / "ssh-keyscan").chmod(0o755)
    return bin_dir


def test_the_scan_prefers_ed25519_over_ecdsa_and_rsa(tmp_path):
    offered = ("[10.0.0.21]:2222 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQRSA\n"
               "[10.0.0.21]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIECDSA\n"
               f"[10.0.0.21]:2222 {ED25519}\n")
    script = render("host-key-scan.sh", {"WHAT": "node w1", "HOST": "10.0.0.21", "PORT": 2222})
    result = run_script(script, {}, fake_keyscan(tmp_path, offered))
    assert (result.returncode, result.stdout) == (0, ED25519 + "\n")
    assert (tmp_path / "args").read_text().split() == ["-T", "15", "-p", "2222", "-t", "ed25519,ecdsa,rsa",
                                                       "10.0.0.21"]


def test_the_scan_takes_ecdsa_when_the_host_has_no_ed25519_key(tmp_path):
    offered = ("10.0.0.21 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQRSA\n"
               "10.0.0.21 ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIECDSA\n")
    script = render("host-key-scan.sh", {"WHAT": "node w1", "HOST": "10.0.0.21", "PORT": 22})
    result = run_script(script, {}, fake_keyscan(tmp_path, offered))
    assert result.stdout == "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIECDSA\n"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_both_scripts_are_shellcheck_clean(tmp_path):
    """They run locally (the record, most scans), so tests/test_scripts.py, which checks remote commands, misses them."""
    files = []
    for template, params in (("host-key-scan.sh", {"WHAT": "node w1", "HOST": "10.0.0.21", "PORT": 22}),
                             ("host-key-record.sh", RECORD)):
        files.append(tmp_path / template)
        files[-1].write_text(render(template, params))
    result = subprocess.run(["shellcheck", "--shell", "bash", "--format", "gcc", *map(str, files)],
                            capture_output=True, text=True)
    assert result.stdout + result.stderr == ""


def test_a_pinned_rsa_key_warns_that_openssh_refuses_what_pulumi_command_offers_for_it():
    config = with_bastion(hostKey=RSA)
    config["nodes"][3]["hostKey"] = RSA
    spec = parse_spec({k: v for k, v in config.items() if k != "sshPrivateKey"}, "dev")
    warned = [w for w in spec.warnings if "RSA key" in w]
    assert [w.split(" is an RSA key")[0] for w in warned] == ["nodes[3].hostKey (w1)", "ssh.bastion.hostKey"]
    assert all("OpenSSH 8.8" in w for w in warned)
