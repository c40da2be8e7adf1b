"""Scheduled etcd backups on the real etcd v3.6.8 (issue 13): a snapshot appears, retention prunes,
status.json records each result, and a failed off-host copy is reported with the snapshot kept.

One control plane with stacked etcd (configs/etcd-backup.yaml: retention 2, each snapshot copied to
/srv/offsite). After `pulumi up` installed the timer, the real etcd runs there as kubeadm's static pod
would (real_etcd.py: its image holds etcd and etcdctl, not etcdutl), and etcd.backup.etcdutlUrl points at
a release tarball of the real etcd tools on the lab's package server, with its sha256 configured: the
backup script takes etcdctl from the running etcd's image and downloads, checks and installs etcdutl.
The timer elapsing is what starts the service (systemd.timer(5) Unit=); the lab has no systemd, so each
scheduled run is `systemctl start` of that service, whose stand-in runs the unit's ExecStart= as systemd
runs a Type=oneshot service (standins/standin.py run_oneshot).
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from real_etcd import etcdctl, release_tarball, start_stacked_etcd
from scenario import lab_cluster
from tests.etcd_tools import etcd_tool

pytestmark = pytest.mark.lab

UNIT = "kubeadm-cluster-etcd-backup"
DIRECTORY = "/var/lib/etcd-backups"
SNAPSHOT = re.compile(r"^etcd-cp1-(\d{8}T\d{6}Z)\.db$")


def backup_config(cluster, **backup):
    config = cluster.config()
    config["etcd"] = {**config.get("etcd", {}), "backup": {**config["etcd"]["backup"], **backup}}
    return config


@pytest.fixture(scope="module")
def backups():
    started = time.monotonic()
    with lab_cluster("etcd-backup.yaml") as cluster:
        template, tarball, sha256 = release_tarball(cluster.lab.work / "repo")
        config = backup_config(cluster, etcdutlUrl=cluster.lab.repo_url + template, etcdutlSha256={tarball: sha256})
        result = cluster.up(config)
        assert result.error is None, result.error
        start_stacked_etcd(cluster.lab, "cp1", "198.18.0.11")
        etcdctl(cluster.lab, "cp1", "put", "/registry/lab/backed-up", "before the snapshot")
        cluster.lab.ssh("cp1", "sudo mkdir -p /srv/offsite")
        cluster.backup_config = config
        yield cluster
        print(f"\netcd-backup lab: {time.monotonic() - started:.0f} s")


def scheduled_run(cluster) -> subprocess.CompletedProcess:
    """What the timer elapsing does: start the service. Snapshot names have one-second resolution."""
    time.sleep(1.1)
    return cluster.lab.ssh("cp1", f"sudo systemctl start {UNIT}.service", check=False)


def snapshots(cluster, directory: str = DIRECTORY) -> list[str]:
    listed = cluster.lab.ssh("cp1", f"sudo ls -1 {directory}", check=False).stdout.split()
    return sorted(name for name in listed if SNAPSHOT.match(name))


def status(cluster) -> dict:
    return json.loads(cluster.lab.ssh("cp1", f"sudo cat {DIRECTORY}/status.json").stdout)


def snapshot_status(cluster, path: str) -> dict:
    """The real etcdutl v3.6.8's `snapshot status` of a file on cp1, run here on a copy."""
    local = cluster.lab.work / "snapshot-copy.db"
    local.write_bytes((cluster.lab.hosts["cp1"].root / path.lstrip("/")).read_bytes())
    done = subprocess.run([str(etcd_tool("etcdutl")), "snapshot", "status", str(local), "-w", "json"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_timer_is_installed_and_enabled(backups):
    cluster = backups
    timer = cluster.lab.ssh("cp1", f"sudo cat /etc/systemd/system/{UNIT}.timer").stdout
    assert "OnCalendar=*-*-* 00/6:00:00" in timer
    assert cluster.lab.ssh("cp1", f"sudo test -e /var/lib/kclab-node/units/{UNIT}.timer.enabled",
                           check=False).returncode == 0
    assert snapshots(cluster) == []


def test_a_scheduled_run_takes_a_verified_snapshot_of_the_running_etcd(backups):
    cluster = backups
    run = scheduled_run(cluster)
    assert run.returncode == 0, run.stderr
    (name,) = snapshots(cluster)
    recorded = status(cluster)
    assert recorded["result"] == "ok" and recorded["path"] == f"{DIRECTORY}/{name}", recorded
    verified = snapshot_status(cluster, recorded["path"])
    assert verified["revision"] == recorded["revision"] >= 2  # the key put before the snapshot is in it
    assert verified["totalKey"] >= 1
    assert recorded["size"] == (cluster.lab.hosts["cp1"].root / recorded["path"].lstrip("/")).stat().st_size
    # etcdctl came from the running etcd's image; etcdutl from the release tarball, checked against its sha256.
    tools = cluster.lab.ssh("cp1", "sudo ls /usr/local/lib/kubeadm-cluster/etcd").stdout.split()
    assert sorted(tools) == ["etcdctl", "etcdutl-3.6.8"]
    assert snapshots(cluster, "/srv/offsite") == [name]


def test_retention_keeps_the_newest_two(backups):
    cluster = backups
    taken = snapshots(cluster)
    for _ in range(2):
        run = scheduled_run(cluster)
        assert run.returncode == 0, run.stderr
        taken = sorted(set(taken) | set(snapshots(cluster)))
    assert len(taken) == 3
    assert snapshots(cluster) == taken[1:]
    assert snapshots(cluster, "/srv/offsite") == taken  # the off-host copies are the copy target's to prune
    assert status(cluster)["path"] == f"{DIRECTORY}/{taken[-1]}"


def test_a_failed_offsite_copy_is_reported_and_the_snapshot_kept(backups):
    cluster = backups
    kept = snapshots(cluster)
    changed = backup_config(cluster, copyCommand='cp "$1" /srv/unreachable/',
                            etcdutlUrl=cluster.backup_config["etcd"]["backup"]["etcdutlUrl"],
                            etcdutlSha256=cluster.backup_config["etcd"]["backup"]["etcdutlSha256"])
    result = cluster.up(changed)
    assert result.error is None, result.error
    assert result.ran() == ["cp1-etcd-backup"]
    # The stack output says where the status is and the newest snapshot as of this setup run.
    (output,) = cluster.stack.outputs()["etcdBackup"]
    newest = SNAPSHOT.match(kept[-1]).group(1)
    assert output["statusFile"] == f"{DIRECTORY}/status.json"
    assert output["lastSnapshot"].replace("-", "").replace(":", "") == newest
    run = scheduled_run(cluster)
    assert run.returncode != 0
    assert f"Job for {UNIT}.service failed" in run.stderr
    recorded = status(cluster)
    assert recorded["result"] == "copy-failed", recorded
    name = recorded["path"].rsplit("/", 1)[1]
    assert name not in kept and snapshots(cluster) == [kept[-1], name]  # kept locally, the oldest pruned
    journal = cluster.lab.ssh("cp1", f"sudo cat /var/lib/kclab-node/units/{UNIT}.journal").stdout
    assert f"etcd snapshot {recorded['path']} is kept on cp1, but its off-host copy (etcd.backup.copyCommand) " \
           "failed" in journal


def test_bad_schedule_retention_and_percentage_are_refused_by_the_cli_naming_each_key(backups):
    cluster = backups
    bad = backup_config(cluster, schedule="every 6 hours", retention=0)
    bad["upgrade"] = {"maxUnavailableWorkers": "150%"}
    result = cluster.preview(bad)
    assert result.returncode != 0
    for key in ("etcd.backup.schedule", "etcd.backup.retention", "upgrade.maxUnavailableWorkers"):
        assert key in result.output, result.output
