"""How every remote command reaches its machine: per-node SSH settings, host-key pinning, the bastion."""

from __future__ import annotations

from harness import SSH_PRIVATE_KEY, base_config, host_key_of, run_program

BASTION_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJQxGgCbJJl7NQY6FCdcRN5g9Nn4VViqdwlgTiqxunTH"
NODE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINodeKeyNodeKeyNodeKeyNodeKeyNodeKeyNodeKeyN"


def connection(run, name: str) -> dict:
    return run.named(name).plain("connection")


def test_per_node_user_port_and_host_key_override_the_defaults():
    config = base_config(ssh={"user": "ubuntu", "port": 2222})
    config["nodes"][3].update(user="admin", port=2200, hostKey=NODE_KEY)
    run = run_program(config)
    w1 = connection(run, "w1-join")
    assert (w1["user"], w1["port"], w1["hostKey"]) == ("admin", 2200, NODE_KEY)
    w2 = connection(run, "w2-join")
    assert (w2["user"], w2["port"], w2["hostKey"]) == ("ubuntu", 2222, host_key_of("w2"))  # recorded


def test_every_command_goes_through_the_bastion_with_its_pinned_host_key():
    run = run_program(base_config(ssh={"user": "ubuntu", "bastion": {
        "host": "203.0.113.10", "user": "jump", "port": 2022, "hostKey": BASTION_KEY}}))
    for command in run.commands:
        if command.name.endswith("-host-key-scan"):
            continue  # runs on the bastion itself (tests/test_host_keys.py)
        proxy = command.plain("connection")["proxy"]
        assert (proxy["host"], proxy["user"], proxy["port"], proxy["hostKey"]) == \
            ("203.0.113.10", "jump", 2022, BASTION_KEY), command.name


def test_the_private_key_reaches_node_and_bastion_only_inside_a_secret_connection():
    run = run_program(base_config(ssh={"bastion": {"host": "203.0.113.10"}}))
    for command in run.commands:
        conn = command.plain("connection")
        assert command.is_secret("connection"), command.name
        # the host key scans run on the bastion: their connection is the bastion's own
        assert conn["privateKey"] == conn.get("proxy", conn)["privateKey"] == SSH_PRIVATE_KEY


def test_non_root_users_run_scripts_through_sudo_and_root_does_not():
    ubuntu = run_program(base_config(ssh={"user": "ubuntu"})).named("w1-join").plain("create")
    root = run_program(base_config(ssh={"user": "root"})).named("w1-join").plain("create")
    assert "sudo -n bash" in ubuntu and "sudo" not in root.split("\n", 1)[0]
