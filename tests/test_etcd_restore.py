"""etcd.restore: config validation, and the restore chain's steps, order and lifecycle under mocks.
The steps themselves run against the real etcd in tests/test_etcd_restore_real.py."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_spec
from harness import base_config, inner_script, plan, run_program, script_param

SNAPSHOT = "/var/lib/etcd-backups/etcd-cp1-20261125T060000Z.db"
MEMBERS = ("cp1", "cp2", "cp3")


def problems(restore: object, secret_keys: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_spec(base_config(etcd={"restore": restore}), secret_keys=secret_keys)
    return error.value.problems


def restore_config(**restore: str) -> dict:
    return base_config(etcd={"restore": {"id": "r1", "snapshot": SNAPSHOT, **restore}})


def restore_commands(run) -> dict:
    return {c.name: c for c in run.commands if "etcd-restore" in c.name}


# --- config ---------------------------------------------------------------------------------------

def test_no_restore_by_default():
    restore = parse_spec(base_config()).etcd_restore
    assert (restore.id, restore.snapshot, restore.fetch_command) == ("", "", "")


def test_an_id_with_spaces_is_rejected_naming_the_key():
    (problem,) = problems({"id": "my restore", "snapshot": SNAPSHOT})
    assert problem.startswith("etcd.restore.id: 'my restore' is not valid; expected 1-63 letters")


def test_a_restore_id_without_a_snapshot_is_rejected():
    (problem,) = problems({"id": "r1"})
    assert problem.startswith("etcd.restore.snapshot: is required")


def test_a_snapshot_without_an_id_is_rejected():
    (problem,) = problems({"snapshot": SNAPSHOT})
    assert problem == "etcd.restore.id: is required with etcd.restore.snapshot; a new id runs the restore"


def test_a_snapshot_inside_the_data_directory_is_rejected():
    (problem,) = problems({"id": "r1", "snapshot": "/var/lib/etcd/member/snap/db"})
    assert problem.startswith("etcd.restore.snapshot: '/var/lib/etcd/member/snap/db' is not valid")


def test_a_relative_snapshot_path_is_rejected():
    (problem,) = problems({"id": "r1", "snapshot": "backups/snap.db"})
    assert problem.startswith("etcd.restore.snapshot: 'backups/snap.db' is not valid; expected the absolute path")


def test_a_fetch_command_of_several_lines_is_rejected():
    (problem,) = problems({"id": "r1", "snapshot": SNAPSHOT, "fetchCommand": "a\nb"})
    assert problem.startswith("etcd.restore.fetchCommand: 'a\\nb' is not valid; expected one line")


def test_a_fetch_command_set_as_a_secret_is_refused():
    assert any(p.startswith("etcd.restore.fetchCommand: must not be set as a secret")
               for p in problems({"id": "r1", "snapshot": SNAPSHOT, "fetchCommand": "cp /b \"$1\""},
                                 secret_keys=("etcd",)))


def test_an_unknown_restore_key_is_rejected_with_a_suggestion():
    assert any(p.startswith("etcd.restore.snapshots: unknown key (did you mean snapshot?)")
               for p in problems({"id": "r1", "snapshot": SNAPSHOT, "snapshots": "x"}))


# --- the chain ------------------------------------------------------------------------------------

def test_the_steps_are_day_2_steps_that_never_run_at_creation():
    commands = restore_commands(run_program(restore_config()))
    assert len(commands) == 3 + 1 + 3 + 1 + 2 * 3 + 1 + 3
    assert all(c.plain("create") is None and c.plain("update") for c in commands.values())


def test_the_steps_are_etcd_restore_components_children():
    run = run_program(restore_config())
    component = next(r for r in run.resources if r.typ == "kubeadm-cluster:index:EtcdRestore")
    assert all(c.parent == component.urn for c in restore_commands(run).values())


def test_nothing_stops_before_every_node_is_checked_and_the_snapshot_verified():
    run = run_program(restore_config())
    gates = [f"{n}-etcd-restore-check" for n in MEMBERS] + ["etcd-restore-snapshot"]
    for node in MEMBERS:
        for gate in gates:
            assert run.depends_on(f"{node}-etcd-restore-stop", gate), (node, gate)


def test_the_first_member_starts_after_etcd_stopped_everywhere():
    run = run_program(restore_config())
    assert all(run.depends_on("etcd-restore-first", f"{n}-etcd-restore-stop") for n in MEMBERS)


def test_the_other_members_come_back_one_at_a_time():
    run = run_program(restore_config())
    chain = ["etcd-restore-first", "cp2-etcd-restore-add", "cp2-etcd-restore-rejoin", "cp2-etcd-restore-promote",
             "cp3-etcd-restore-add", "cp3-etcd-restore-rejoin", "cp3-etcd-restore-promote", "etcd-restore-verify"]
    for earlier, later in zip(chain, chain[1:]):
        assert run.depends_on(later, earlier), (later, earlier)


def test_a_stacked_control_plane_stops_its_control_plane_pods_and_etcd():
    commands = restore_commands(run_program(restore_config()))
    assert script_param(inner_script(commands["cp2-etcd-restore-stop"].plain("update")), "COMPONENTS") == (
        "kube-apiserver kube-controller-manager kube-scheduler etcd")


def test_the_api_servers_restart_only_after_the_member_list_is_verified():
    run = run_program(restore_config())
    assert all(run.depends_on(f"{n}-etcd-restore-apiserver", "etcd-restore-verify") for n in MEMBERS)


def test_the_first_member_adds_and_promotes_each_other_member_which_rejoins_on_its_own_host():
    commands = restore_commands(run_program(restore_config()))
    hosts = {name: c.host for name, c in commands.items()}
    assert hosts["cp2-etcd-restore-add"] == hosts["cp3-etcd-restore-promote"] == "10.0.0.11"
    assert (hosts["cp2-etcd-restore-rejoin"], hosts["cp3-etcd-restore-rejoin"]) == ("10.0.0.12", "10.0.0.13")


def test_each_rejoining_member_names_the_members_before_it_and_itself():
    commands = restore_commands(run_program(restore_config()))
    cp3 = inner_script(commands["cp3-etcd-restore-rejoin"].plain("update"))
    assert script_param(cp3, "INITIAL_CLUSTER") == "cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380"


def test_the_snapshot_is_restored_as_a_new_cluster_with_a_token_of_this_restore():
    script = inner_script(restore_commands(run_program(restore_config()))["etcd-restore-snapshot"].plain("update"))
    assert script_param(script, "SNAPSHOT") == SNAPSHOT
    assert script_param(script, "TOKEN") == "dev-restore-r1"
    assert script_param(script, "INITIAL_CLUSTER") == "cp1=https://10.0.0.11:2380"
    assert "snapshot restore" in script and "--initial-cluster-token" in script


def test_preview_shows_every_step_s_script():
    run = run_program(restore_config(fetchCommand='rclone copyto remote:etcd/snap.db "$1"'), preview=True)
    snapshot = restore_commands(run)["etcd-restore-snapshot"].plain("update")
    assert SNAPSHOT in snapshot and 'rclone copyto remote:etcd/snap.db "$1"' in snapshot


def test_without_a_restore_the_steps_exist_and_do_nothing():
    commands = restore_commands(run_program(base_config()))
    for command in commands.values():
        assert script_param(inner_script(command.plain("update")), "RESTORE_ID") == ""


def test_an_unchanged_restore_is_a_no_op_up():
    assert not plan(run_program(restore_config()), run_program(restore_config())).touched


def test_a_new_restore_id_updates_the_restore_steps_and_reissues_the_exported_credentials_only():
    changes = plan(run_program(base_config()), run_program(restore_config()))
    assert changes.updated == set(restore_commands(run_program(restore_config())))
    assert changes.replaced == {"kubeconfig"} and not (changes.created | changes.deleted)


def test_the_exported_credentials_are_reissued_after_every_api_server_is_back():
    """The snapshot holds the ServiceAccounts of its time: a credential issued after it is gone, one revoked
    after it is back. The kubeconfig
    step runs again once the restore's API servers answer: it recreates the current ones and deletes the others (tests/lab/test_scenarios_real_stacked.py:
    on the real API servers, the one issued after the snapshot refused, the one the snapshot brought back revoked)."""
    run = run_program(restore_config())
    assert all(run.depends_on("kubeconfig", f"{n}-etcd-restore-apiserver")
               for n in MEMBERS)
    again = plan(run, run_program(restore_config(id="r2")))
    assert "kubeconfig" in again.replaced


def test_with_external_etcd_the_members_are_the_etcd_nodes_and_control_planes_stop_only_the_api_server():
    nodes = [{"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane"]},
             {"name": "w1", "address": "10.0.0.21", "roles": ["worker"]}] + [
        {"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)]
    config = base_config(nodes=nodes, controlPlane={}, etcd={"topology": "external", "restore": {
        "id": "r1", "snapshot": SNAPSHOT}})
    commands = restore_commands(run_program(config))
    assert commands["etcd-restore-first"].host == "10.0.0.31"
    assert {n for n in commands if n.endswith("-stop")} == {f"{n}-etcd-restore-stop" for n in ("cp1", "etcd1", "etcd2", "etcd3")}
    assert script_param(inner_script(commands["cp1-etcd-restore-stop"].plain("update")), "COMPONENTS") == (
        "kube-apiserver kube-controller-manager kube-scheduler")
    assert script_param(inner_script(commands["etcd2-etcd-restore-stop"].plain("update")), "COMPONENTS") == "etcd"
    assert "w1-etcd-restore-check" not in commands


def test_a_control_plane_pod_is_found_by_the_name_the_kernel_keeps(tmp_path):
    """/proc/PID/comm holds 15 characters (TASK_COMM_LEN): kube-controller-manager runs as "kube-controller"."""
    import shutil
    import subprocess

    from components.scripts import COMPONENTS_DIR

    binary = tmp_path / "kube-controller-manager"
    shutil.copy("/bin/sleep", binary)
    process = subprocess.Popen([str(binary), "30"])
    try:
        lib = "".join((COMPONENTS_DIR / f).read_text() for f in ("common.sh", "etcd-restore-lib.sh"))
        result = subprocess.run(["bash", "-c", f"RESTORE_ID=r1 TOOLS_DIR=/x\n{lib}\nruns kube-controller-manager"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    finally:
        process.kill()
        process.wait()


def test_a_member_already_listed_is_not_added_again_however_etcdctl_writes_the_list(tmp_path):
    """etcdctl prints `member list` a line at a time (etcdctl/ctlv3/command/printer_simple.go@v3.6.8 MemberList,
    fmt.Println per row). Here the member is on the first line and the rest follows a moment later: a search that
    stops at the first match must not make the list fail (SIGPIPE under pipefail) and the member be added twice."""
    import re
    import subprocess

    from components.scripts import COMPONENTS_DIR

    peer = "https://10.0.0.14:2380"
    (tmp_path / "etcdctl").write_text(f"""#!/usr/bin/env bash
echo "$*" >>{tmp_path}/calls
case " $* " in
  *" member list "*) echo "8e9e05c52164694d, started, cp4, {peer}, https://10.0.0.14:2379, true"; sleep 0.3
                     echo "91bc3c398fb3c146, started, cp1, https://10.0.0.11:2380, https://10.0.0.11:2379, false" ;;
  *" member add "*) echo "Error: etcdserver: Peer URLs already exists" >&2; exit 1 ;;
esac
""")
    (tmp_path / "etcdctl").chmod(0o755)
    lib = "".join((COMPONENTS_DIR / f).read_text() for f in ("common.sh", "etcd-restore-lib.sh"))
    added = re.search(r"^added\(\) \{\n.*?^\}\n", (COMPONENTS_DIR / "etcd-restore-add.sh").read_text(),
                      re.M | re.S).group(0)
    result = subprocess.run(["bash", "-c", f"RESTORE_ID=r1 TOOLS_DIR={tmp_path} CLIENT_URL=https://10.0.0.11:2379 "
                                           f"MEMBER=cp4 MEMBER_PEER_URL={peer}\n{lib}\n{added}\nadded"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"cp4 ({peer}) is a member" in result.stderr
    assert [call.split(" ", 4)[4] for call in (tmp_path / "calls").read_text().splitlines()] == ["member list"]


def test_without_a_restore_adding_a_member_changes_no_restore_step():
    config = base_config()
    config["nodes"] = [*config["nodes"][:3], {"name": "cp4", "address": "10.0.0.14", "roles": ["control-plane"]},
                       *config["nodes"][3:]]
    changes = plan(run_program(base_config()), run_program(config))
    assert not {n for n in changes.updated | changes.replaced | changes.deleted if "etcd-restore" in n}


def test_the_stack_config_of_docs_recovery_is_accepted_as_written():
    """docs/recovery.md "Running it": its block, as it goes under `config:` in Pulumi.<stack>.yaml."""
    import re
    from pathlib import Path

    import yaml

    docs = (Path(__file__).parent.parent / "docs" / "recovery.md").read_text()
    (block,) = re.findall(r"```yaml\n(.*?)```", docs, re.S)
    config = {key.removeprefix("kubeadm-cluster:"): value for key, value in yaml.safe_load(block).items()}
    restore = parse_spec(base_config(**config)).etcd_restore
    assert (restore.id, restore.snapshot) == ("2026-11-25-1", "/var/lib/etcd-backups/etcd-cp1-20261125T060000Z.db")
