"""etcd.backup: config validation, the rendered systemd units, and etcd-backup.sh run for real with bash.

The backup script finds the running etcd process and takes etcdctl/etcdutl from its image
(/proc/PID/root/usr/local/bin). Here a process named etcd runs in a private mount namespace whose
/usr/local/bin holds test doubles of the etcdctl and etcdutl CLIs, imitating their contract at etcd
v3.6.14: `etcdctl version` prints "etcdctl version: X" (etcdctl/ctlv3/command/version_command.go);
`etcdctl snapshot save FILE` writes FILE.part and renames it (client/v3/snapshot/v3_snapshot.go
SaveWithVersion) and prints "Snapshot saved at FILE" (etcdctl/ctlv3/command/snapshot_command.go);
`etcdutl snapshot status FILE -w json` prints {"hash","revision","totalKey","totalSize","version"}
(etcdutl/snapshot/v3_snapshot.go Status, etcdutl/etcdutl/printer_json.go) or fails on a bad file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from components.backup import backup_script, service_unit, timer_unit
from components.config import ConfigError, is_calendar_event, parse_spec
from harness import base_config, inner_script, run_program

FAKE_ETCDCTL = """#!/usr/bin/env bash
# Test double of etcdctl v3.6 (see the module docstring).
if [[ $1 == version ]]; then printf 'etcdctl version: 3.6.8\\nAPI version: 3.6\\n'; exit 0; fi
file=${@: -1}
[[ ${*} == *" snapshot save "* ]] || { echo "unexpected: $*" >&2; exit 2; }
[[ -z ${FAKE_SAVE_FAILS:-} ]] || { echo "Error: context deadline exceeded" >&2; exit 5; }
printf 'snapshot of revision 42' >"$file.part" && mv "$file.part" "$file"
echo "Snapshot saved at $file"
"""
FAKE_ETCDUTL = """#!/usr/bin/env bash
# Test double of etcdutl v3.6 snapshot status -w json.
[[ "$1 $2" == "snapshot status" && "$4 $5" == "-w json" ]] || { echo "unexpected: $*" >&2; exit 2; }
grep -q '^snapshot of revision' "$3" || { echo "Error: invalid database" >&2; exit 1; }
printf '{"hash":3735928559,"revision":42,"totalKey":7,"totalSize":%s,"version":"3.6.0"}\\n' "$(stat -c %s "$3")"
"""

needs_root_namespaces = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                           reason="needs root and unshare for a private mount namespace")


def problems(backup: dict, secret_keys: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_spec(base_config(etcd={"backup": backup}), secret_keys=secret_keys)
    return error.value.problems


def test_backups_are_on_by_default_every_six_hours_keeping_five():
    backup = parse_spec(base_config()).etcd_backup
    assert (backup.enabled, backup.schedule, backup.retention, backup.directory) == (
        True, "*-*-* 00/6:00:00", 5, "/var/lib/etcd-backups")


@pytest.mark.parametrize("backup,key,allowed", [
    ({"schedule": "every 6 hours"}, "etcd.backup.schedule", "OnCalendar"),
    ({"schedule": "0 */6 * * *"}, "etcd.backup.schedule", "OnCalendar"),  # cron syntax
    ({"schedule": "*-*-* 25:00:00"}, "etcd.backup.schedule", "OnCalendar"),
    ({"retention": 0}, "etcd.backup.retention", "1 to"),
    ({"retention": "many"}, "etcd.backup.retention", "1 to"),
    ({"directory": "/var/lib/etcd/backups"}, "etcd.backup.directory", "outside etcd's data directory"),
    ({"directory": "backups"}, "etcd.backup.directory", "absolute path"),
    ({"copyCommand": "a\nb"}, "etcd.backup.copyCommand", "one line"),
    ({"etcdutlSha256": {"etcd-v3.6.8-linux-amd64.tar.gz": "abc"}}, "etcd.backup.etcdutlSha256.etcd-v3.6.8", "64"),
    ({"etcdutlSha256": {"etcdutl": "a" * 64}}, "etcd.backup.etcdutlSha256.etcdutl", "tarball name"),
    ({"enabled": "sometimes"}, "etcd.backup.enabled", "true or false"),
])
def test_bad_backup_settings_are_rejected_naming_the_key(backup, key, allowed):
    (problem,) = problems(backup)
    assert problem.startswith(key)
    assert allowed in problem


def test_a_copy_command_in_secret_config_is_refused():
    (problem,) = problems({"copyCommand": 'aws s3 cp "$1" s3://bucket/'}, secret_keys=("etcd",))
    assert problem.startswith("etcd.backup.copyCommand: must not be set as a secret")


CALENDAR_SAMPLES = ["*-*-* 00/6:00:00", "daily", "hourly", "Mon..Fri 02:30", "Sat,Sun *-*-* 03:00:00", "*:0/15",
                    "2026-12-01 00:00:00", "*-*-1..7 4:00", "*-*-* 1,13:00", "every 6 hours", "*-*-* 25:00:00",
                    "*-13-* 00:00", "0 */6 * * *", "*-*-* 00/0:00:00", "Funday 00:00", "*-*-* 5..3:00", "6h"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.parametrize("expression", CALENDAR_SAMPLES)
def test_the_schedule_check_agrees_with_systemd(expression):
    accepted = subprocess.run(["systemd-analyze", "calendar", expression], capture_output=True).returncode == 0
    assert is_calendar_event(expression) == accepted


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_rendered_units_pass_systemd_analyze_verify(tmp_path):
    (tmp_path / "kubeadm-cluster-etcd-backup.service").write_text(service_unit())
    (tmp_path / "kubeadm-cluster-etcd-backup.timer").write_text(timer_unit("Mon..Fri 02:30"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "kubeadm-cluster-etcd-backup.timer"),
                             str(tmp_path / "kubeadm-cluster-etcd-backup.service")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "OnCalendar=Mon..Fri 02:30" in timer_unit("Mon..Fri 02:30")


def test_every_stacked_control_plane_gets_a_backup_step_and_the_output_says_where_its_status_is():
    run = run_program(base_config())
    for name, address in (("cp1", "10.0.0.11"), ("cp2", "10.0.0.12"), ("cp3", "10.0.0.13")):
        step = run.named(f"{name}-etcd-backup")
        assert step.host == address
        assert step.plain("create") == step.plain("update")
        assert "systemctl disable --now" in inner_script(step.plain("delete"))
    assert [m["name"] for m in run.outputs["etcdBackup"]] == ["cp1", "cp2", "cp3"]
    assert run.outputs["etcdBackup"][0]["statusFile"] == "/var/lib/etcd-backups/status.json"


def test_external_etcd_members_back_up_against_their_own_address():
    nodes = base_config()["nodes"] + [{"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]}
                                      for i in (1, 2, 3)]
    run = run_program(base_config(nodes=nodes, etcd={"topology": "external"}))
    assert {r.name for r in run.commands if r.name.endswith("-etcd-backup")} == {
        "etcd1-etcd-backup", "etcd2-etcd-backup", "etcd3-etcd-backup"}
    assert "https://10.0.0.31:2379" in run.named("etcd1-etcd-backup").plain("create")


def test_disabled_backups_register_no_step():
    run = run_program(base_config(etcd={"backup": {"enabled": False}}))
    assert not any(name.endswith("-etcd-backup") for name in run.names())
    assert run.outputs["etcdBackup"] is None


# --- etcd-backup.sh, run for real ---------------------------------------------------------------

def run_backup(tmp_path: Path, *, retention: int = 5, copy_command: str = "", with_etcdutl: bool = True,
               env: dict[str, str] | None = None, etcdutl_sha256: dict[str, str] | None = None,
               etcdutl_url: str | None = None) -> subprocess.CompletedProcess:
    image_bin = tmp_path / "image-bin"
    image_bin.mkdir(exist_ok=True)
    (image_bin / "etcdctl").write_text(FAKE_ETCDCTL)
    (image_bin / "etcdctl").chmod(0o755)
    if with_etcdutl:
        (image_bin / "etcdutl").write_text(FAKE_ETCDUTL)
        (image_bin / "etcdutl").chmod(0o755)
    spec = parse_spec(base_config(etcd={"backup": {"retention": retention, "copyCommand": copy_command,
                                                   "directory": str(tmp_path / "backups"),
                                                   "etcdutlSha256": etcdutl_sha256 or {}}}))
    script = backup_script(spec, spec.control_planes[0]).replace(
        "TOOLS_DIR=/usr/local/lib/kubeadm-cluster/etcd", f"TOOLS_DIR={tmp_path / 'tools'}")
    if etcdutl_url:  # config takes http(s) only; curl reads the test's tarball from a file:// URL
        script = script.replace(f"ETCDUTL_URL={shlex.quote(spec.etcd_backup.etcdutl_url)}",
                                f"ETCDUTL_URL={shlex.quote(etcdutl_url)}")
    (tmp_path / "backup.sh").write_text(script)
    shutil.copy("/bin/sleep", tmp_path / "etcd")  # a process whose name is etcd
    wrapper = f"""set -e
mount --bind {image_bin} /usr/local/bin
{tmp_path / 'etcd'} 30 &
status=0
bash {tmp_path / 'backup.sh'} || status=$?
kill $!
wait $! || true
exit $status
"""
    # A PID namespace with its own /proc: the script looks for etcd among all processes, and another etcd on this
    # machine (a private host's static pod, whose /proc/PID/root is its image) must not be the one it finds.
    return subprocess.run(["unshare", "-m", "--propagation", "private", "-p", "--fork", "--mount-proc", "bash", "-c",
                           wrapper], capture_output=True, text=True, env={**os.environ, **(env or {})})


def status(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "backups" / "status.json").read_text())


def snapshots(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "backups").glob("*.db"))


@needs_root_namespaces
def test_a_backup_saves_verifies_and_reports(tmp_path):
    result = run_backup(tmp_path)
    assert result.returncode == 0, result.stderr
    (name,) = snapshots(tmp_path)
    assert name.startswith("etcd-cp1-") and name.endswith("Z.db")
    report = status(tmp_path)
    assert (report["result"], report["revision"], report["node"]) == ("ok", 42, "cp1")
    assert report["path"] == str(tmp_path / "backups" / name)
    assert report["size"] == (tmp_path / "backups" / name).stat().st_size
    assert ": ok (revision 42" in result.stderr  # the journal gets stderr
    assert (tmp_path / "tools" / "etcdctl").read_text() == FAKE_ETCDCTL  # the running etcd's own tools


@needs_root_namespaces
def test_retention_keeps_the_newest_of_this_member_only(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    old = [f"etcd-cp1-2026010{i}T000000Z.db" for i in range(1, 7)]
    for name in [*old, "etcd-cp2-20260101T000000Z.db", "notes.txt"]:
        (backups / name).write_text("snapshot of revision 1")
    result = run_backup(tmp_path, retention=3)
    assert result.returncode == 0, result.stderr
    kept = [n for n in snapshots(tmp_path) if n.startswith("etcd-cp1-")]
    assert len(kept) == 3
    assert kept[:2] == old[-2:]  # the two newest old ones and the new one
    assert (backups / "etcd-cp2-20260101T000000Z.db").exists() and (backups / "notes.txt").exists()


@needs_root_namespaces
def test_the_copy_command_gets_the_snapshot_path(tmp_path):
    (tmp_path / "offsite").mkdir()
    result = run_backup(tmp_path, copy_command=f'cp "$1" {tmp_path / "offsite"}/')
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "offsite").iterdir()] == snapshots(tmp_path)


@needs_root_namespaces
def test_a_failed_copy_keeps_the_snapshot_and_is_reported(tmp_path):
    result = run_backup(tmp_path, copy_command="echo 'bucket unreachable' >&2; exit 3")
    assert result.returncode == 1
    assert len(snapshots(tmp_path)) == 1
    report = status(tmp_path)
    assert report["result"] == "copy-failed" and report["revision"] == 42
    assert "off-host copy (etcd.backup.copyCommand) failed" in result.stderr
    assert "bucket unreachable" in result.stderr


@needs_root_namespaces
def test_a_failed_snapshot_is_reported(tmp_path):
    result = run_backup(tmp_path, env={"FAKE_SAVE_FAILS": "1"})
    assert result.returncode == 1
    assert status(tmp_path)["result"] == "failed"
    assert "etcdctl snapshot save failed" in status(tmp_path)["message"]
    assert snapshots(tmp_path) == []


@needs_root_namespaces
def test_without_etcdutl_or_a_checksum_the_snapshot_is_kept_unverified_naming_the_setting(tmp_path):
    result = run_backup(tmp_path, with_etcdutl=False)
    assert result.returncode == 0, result.stderr
    assert status(tmp_path)["result"] == "unverified"
    assert "set etcd.backup.etcdutlSha256 for etcd-v3.6.8" in status(tmp_path)["message"]
    assert len(snapshots(tmp_path)) == 1


def release_tarball(tmp_path: Path) -> tuple[str, str]:
    """A tarball laid out like etcd's release (etcd-vX-linux-ARCH/etcdutl), and its sha256."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    name = f"etcd-v3.6.8-linux-{arch}"
    (tmp_path / "release" / name).mkdir(parents=True)
    (tmp_path / "release" / name / "etcdutl").write_text(FAKE_ETCDUTL)
    (tmp_path / "release" / name / "etcdutl").chmod(0o755)
    subprocess.run(["tar", "-czf", f"{name}.tar.gz", name], cwd=tmp_path / "release", check=True)
    digest = hashlib.sha256((tmp_path / "release" / f"{name}.tar.gz").read_bytes()).hexdigest()
    return f"{name}.tar.gz", digest


@needs_root_namespaces
def test_etcdutl_comes_from_the_release_tarball_with_the_configured_checksum(tmp_path):
    name, digest = release_tarball(tmp_path)
    url = f"file://{tmp_path}/release/etcd-v{{version}}-linux-{{arch}}.tar.gz"
    result = run_backup(tmp_path, with_etcdutl=False, etcdutl_sha256={name: digest}, etcdutl_url=url)
    assert result.returncode == 0, result.stderr
    assert status(tmp_path)["result"] == "ok"
    assert (tmp_path / "tools" / "etcdutl-3.6.8").read_text() == FAKE_ETCDUTL


@needs_root_namespaces
def test_a_tarball_that_does_not_match_its_checksum_is_not_installed(tmp_path):
    name, _ = release_tarball(tmp_path)
    url = f"file://{tmp_path}/release/etcd-v{{version}}-linux-{{arch}}.tar.gz"
    result = run_backup(tmp_path, with_etcdutl=False, etcdutl_sha256={name: "0" * 64}, etcdutl_url=url)
    assert result.returncode == 1
    assert "does not match the sha256 configured" in status(tmp_path)["message"]
    assert not (tmp_path / "tools" / "etcdutl-3.6.8").exists()
