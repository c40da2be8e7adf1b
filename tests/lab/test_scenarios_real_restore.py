"""docs/recovery.md tried step by step on the lab's real control plane (issue 13), as a person would, through the
real Pulumi CLI: `real-control-plane.yaml` (c1 with stacked etcd, w1), the real kubeadm, etcd v3.6.8 and
kube-apiserver v1.36.4; the kubelet is the one stand-in (standins/kubelet.py).

In order, on one bring-up: ConfigMap `before` written through the real API; a scheduled backup (the timer
elapsing starts the program's service: `systemctl start kubeadm-cluster-etcd-backup.service`); ConfigMap `after`;
the disaster (every member's data directory destroyed, etcd killed: the kubelet starts it again on an empty
directory). Then the page: "Picking a snapshot" (its commands on the first control plane), "Running it" (its
`pulumi config set` commands, its `pulumi preview --diff --show-full-output`, `pulumi up`), the API server's
answers, a second `pulumi up`. Then "Going back", which applies to a restore after a bad change: ConfigMap
`precious` written and backed up, the bad change (`precious` deleted, `later` written, the credentials rotated by a
new kubeconfig.revision), a second restore from that snapshot, and the page's "Going back" blocks run on c1 as
written, ending with its new kubeconfig.revision.

Then, on the same cluster, the scheduled backups' own settings (issue 13): retention 2 and an off-host copy
(etcd.backup.copyCommand into /srv/offsite), a failing copy reported with the snapshot kept, and bad settings refused
by the CLI naming each key.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass, field

import pytest

from scenario import lab_cluster, wait_until
from tests.etcd_tools import etcd_tool
from tests.recovery_page import DOCS_ID, DOCS_SNAPSHOT, bash_blocks, docs_section

pytestmark = pytest.mark.lab

BACKUP = "kubeadm-cluster-etcd-backup.service"
BACKUPS = "/var/lib/etcd-backups"
SNAPSHOT = re.compile(r"^etcd-c1-(\d{8}T\d{6}Z)\.db$")
FIRST_ID, SECOND_ID = "2026-11-26-1", "2026-11-26-2"
MISTYPED = "/var/lib/etcd-backups/etcd-c1-20261126T0600.db"
RESTORE_STEPS = ("c1-etcd-restore-check", "etcd-restore-snapshot", "c1-etcd-restore-stop", "etcd-restore-first",
                 "etcd-restore-verify", "c1-etcd-restore-apiserver")


def admin(cluster, args: str, check: bool = True):
    return cluster.lab.ssh("c1", f"sudo kubectl --kubeconfig /etc/kubernetes/admin.conf {args}", check=check)


def api_ready(cluster) -> bool:
    return admin(cluster, "get --raw=/readyz", check=False).returncode == 0


def configmaps(cluster) -> set[str]:
    out = admin(cluster, "get configmaps -n default -o name").stdout
    return {line.removeprefix("configmap/") for line in out.split()}


def scheduled_run(cluster) -> subprocess.CompletedProcess:
    """What the backup timer elapsing does (systemd.timer(5) Unit=): the service starts."""
    time.sleep(1.1)  # snapshot names have one-second resolution
    return cluster.lab.ssh("c1", f"sudo systemctl start {BACKUP}", check=False)


def backup_status(cluster) -> dict:
    return json.loads(cluster.lab.ssh("c1", f"sudo cat {BACKUPS}/status.json").stdout)


def backup(cluster) -> dict:
    """A scheduled run that succeeds; the status file after it."""
    run = scheduled_run(cluster)
    assert run.returncode == 0, run.stderr
    return backup_status(cluster)


def snapshots(cluster, directory: str = BACKUPS) -> list[str]:
    listed = cluster.lab.ssh("c1", f"sudo ls -1 {directory}", check=False).stdout.split()
    return sorted(name for name in listed if SNAPSHOT.match(name))


def as_root(cluster, script: str):
    """A block of the page, run as root on c1 (the page says `As root`)."""
    return cluster.lab.ssh("c1", "sudo bash -euo pipefail", stdin=script, check=False)


def pulumi_commands(section: str) -> list[list[str]]:
    """The `pulumi …` lines of a section's bash blocks, as argv (their `# comments` dropped)."""
    lines = [line.split("#", 1)[0].strip() for block in bash_blocks(section) for line in block.splitlines()]
    return [line.split()[1:] for line in lines if line.startswith("pulumi ")]


def person_runs(cluster, argv: list[str], substitutions: dict[str, str]):
    """One `pulumi` command of the page as a person types it for this stack (the lab's stack and config file)."""
    argv = [substitutions.get(arg, arg) for arg in argv]
    stack = cluster.stack
    if argv[:1] == ["up"]:
        return stack.up(None, *argv[1:])
    if argv[:1] == ["preview"]:
        return stack.preview(None, *argv[1:])
    return stack.cli(*argv, *stack._stack_args())


@dataclass
class Restore:
    """One restore run as "Running it" says, with what the engine planned and did."""

    preview: str                # pulumi preview --diff --show-full-output
    ran: list[str]              # what `pulumi up` ran, in the order the engine started them
    error: str | None


def run_the_page(cluster, restore_id: str, snapshot: str) -> Restore:
    """"Running it": the page's pulumi commands in its order, with this restore's id and snapshot."""
    substitutions = {DOCS_ID: restore_id, DOCS_SNAPSHOT: snapshot}
    preview = up = None
    for argv in pulumi_commands(docs_section("Running it")):
        done = person_runs(cluster, argv, substitutions)
        if argv[0] == "preview":
            assert done.returncode == 0, done.output
            preview = done.output
        elif argv[0] == "up":
            up = done
        else:
            assert done.returncode == 0, done.stderr
    assert preview is not None and up is not None, "the page names no pulumi preview or pulumi up"
    wait_until("the API server's readiness after the restore", lambda: api_ready(cluster))
    return Restore(preview, up.ran(), up.error)


def exported_kubeconfig_works(cluster) -> bool:
    """The `kubeconfig` stack output, used by the real kubectl on c1."""
    return cluster.kubeconfig_works(cluster.exported_kubeconfig(), "c1")


def set_and_up(cluster, *settings: str) -> dict:
    """`pulumi config set --path KEY VALUE` for each KEY VALUE pair, then `pulumi up`: what ran, the error if any."""
    for key, value in zip(settings[::2], settings[1::2]):
        cluster.stack.cli("config", "set", "--path", key, value, *cluster.stack._stack_args())
    up = cluster.stack.up(None)
    return {"ran": up.ran(), "error": up.error}


@dataclass
class Story:
    cluster: object
    status: dict                  # the backups' status.json when the snapshot was picked
    picked: str = ""              # "Picking a snapshot": what its block printed
    refused: dict = field(default_factory=dict)  # the up with a mistyped snapshot path, and the node after it
    restore: Restore | None = None
    after_restore: set[str] = field(default_factory=set)  # ConfigMaps the real API server lists afterwards
    kubeconfig_after_restore: bool = False                 # the exported kubeconfig works then
    verified: dict = field(default_factory=dict)           # what the verify step printed (step 5)
    second_up: list[str] = field(default_factory=list)
    undone: Restore | None = None                          # the restore after a bad change
    after_second_restore: set[str] = field(default_factory=set)
    went_back: dict[str, object] = field(default_factory=dict)


@pytest.fixture(scope="module")
def story():
    started = time.monotonic()
    with lab_cluster("real-control-plane.yaml") as cluster:
        result = cluster.up(cluster.config())
        assert result.error is None, result.error
        admin(cluster, "create configmap before --from-literal=state=in-the-snapshot")
        status = backup(cluster)
        assert status["result"] == "ok", status
        admin(cluster, "create configmap after --from-literal=state=after-the-snapshot")

        # The disaster: every member's data directory destroyed; its etcd dies (killed by its PID in c1's own PID
        # namespace) and the kubelet starts it again on an empty directory.
        cluster.lab.ssh("c1", "sudo sh -c 'rm -rf /var/lib/etcd/member; kill -9 $(pgrep -x etcd)'")

        story = Story(cluster, status)
        # "Picking a snapshot": its block as a person pastes it, with the snapshot status.json names.
        (block,) = bash_blocks(docs_section("Picking a snapshot"))
        done = as_root(cluster, block.replace(DOCS_SNAPSHOT, status["path"]))
        story.picked = done.stdout if done.returncode == 0 else f"FAILED: {done.stderr}"

        # A mistyped snapshot path first: the page says the restore refuses, nothing changes, and the same id goes
        # on once the path is right.
        story.refused = set_and_up(cluster, "etcd.restore.id", FIRST_ID, "etcd.restore.snapshot", MISTYPED)
        story.refused["manifests"] = cluster.lab.ssh("c1", "sudo ls /etc/kubernetes/manifests").stdout.split()
        story.refused["data directory in place"] = cluster.lab.ssh(
            "c1", f"sudo test -d /var/lib/etcd -a ! -e /var/lib/etcd-before-restore-{FIRST_ID}", check=False).returncode == 0
        story.restore = run_the_page(cluster, FIRST_ID, status["path"])
        story.after_restore = configmaps(cluster)
        story.kubeconfig_after_restore = exported_kubeconfig_works(cluster)
        story.verified = json.loads(cluster.step_output("etcd-restore-verify").strip().splitlines()[-1])
        story.second_up = cluster.stack.up(None).ran()

        # "Going back" is for a restore after a bad change: `precious` backed up, then deleted and `later`
        # written, a restore from that snapshot, then the page's blocks to undo that restore.
        admin(cluster, "create configmap precious")
        snapshot = backup(cluster)["path"]
        admin(cluster, "delete configmap precious")
        admin(cluster, "create configmap later")
        rotated = set_and_up(cluster, "kubeconfig.revision", "rotated")  # credentials the snapshot lacks
        assert rotated == {"ran": ["kubeconfig"], "error": None}, rotated
        story.undone = run_the_page(cluster, SECOND_ID, snapshot)
        story.after_second_restore = configmaps(cluster)
        stop, swap, start = bash_blocks(docs_section("Going back"))
        for name, block in (("stop", stop), ("swap", swap), ("start", start)):
            done = as_root(cluster, block.replace(DOCS_ID, SECOND_ID))
            assert done.returncode == 0, f"Going back, {name}:\n{done.stdout}{done.stderr}"
        wait_until("the API server's readiness after going back", lambda: api_ready(cluster))
        story.went_back["configmaps"] = configmaps(cluster)
        story.went_back["restore's kubeconfig works"] = exported_kubeconfig_works(cluster)
        # The page's last instruction: change kubeconfig.revision and run `pulumi up`.
        section = " ".join(docs_section("Going back").split())
        assert "change `kubeconfig.revision` and run `pulumi up`" in section
        story.went_back["revision up"] = set_and_up(cluster, "kubeconfig.revision", "after-going-back")
        story.went_back["new kubeconfig works"] = exported_kubeconfig_works(cluster)
        print(f"\nrestore lab: {time.monotonic() - started:.0f} s")
        yield story


def test_the_backup_timer_service_took_a_verified_snapshot(story):
    assert story.status["result"] == "ok" and story.status["path"].startswith("/var/lib/etcd-backups/etcd-c1-")


def test_the_pages_snapshot_check_runs_as_written(story):
    """Its block pasted as is: etcdutl's table (HASH | REVISION | …) with the revision the backup recorded."""
    assert re.search(rf"^\|[^|]+\|\s+{story.status['revision']}\s+\|", story.picked, re.M), story.picked


def test_a_missing_snapshot_is_refused_naming_it_before_anything_stops(story):
    error, ran = story.refused["error"], story.refused["ran"]
    assert f"etcd restore {FIRST_ID} refused on c1, nothing was changed: the snapshot {MISTYPED} " \
           "(etcd.restore.snapshot) does not exist" in (error or ""), error
    assert set(ran) <= {"c1-etcd-restore-check", "etcd-restore-snapshot"}, ran
    assert sorted(story.refused["manifests"]) == ["etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml",
                                                  "kube-scheduler.yaml"]
    assert story.refused["data directory in place"]  # the stop step did not move it aside


def test_the_preview_shows_the_restore_chain_and_its_scripts(story):
    """--diff --show-full-output: each restore step as an update (its script changed), the kubeconfig step
    replaced (step 7), with the snapshot and the new id in the scripts. The check step ran for this id in
    the refused up: it is done, and the chain goes on from the snapshot step."""
    preview = story.restore.preview
    assert "c1-etcd-restore-check]" not in preview
    for name in (*RESTORE_STEPS[1:], "kubeconfig"):
        assert re.search(rf"\((update|replace)\)\n(\s*\[id=[^\]]*\]\n)?\s*\[urn=\S+::{name}\]", preview), name
    assert story.status["path"] in preview and FIRST_ID in preview


def test_up_runs_the_restore_chain_in_order_then_the_kubeconfig_step(story):
    assert story.restore.error is None, story.restore.error
    # The check step ran in the refused up; snapshot, stop, first, verify, apiserver one after the other.
    assert story.restore.ran == [*RESTORE_STEPS[1:], "kubeconfig"]


def test_the_real_api_server_has_the_snapshots_objects_and_not_the_later_ones(story):
    assert "before" in story.after_restore and "after" not in story.after_restore


def test_the_verify_step_reports_the_one_member_under_a_new_cluster_id(story):
    """Step 5, from the engine's record of the step's output: the real etcd's member list and cluster ID."""
    assert story.verified["restore"] == FIRST_ID and story.verified["members"] == ["c1"]
    assert story.verified["clusterId"] and story.verified["clusterId"] != story.verified["previousClusterId"]


def test_a_second_up_runs_nothing(story):
    assert story.second_up == []


def test_a_second_restore_from_a_newer_snapshot_undoes_a_bad_change(story):
    assert story.undone.error is None, story.undone.error
    assert {"before", "precious"} <= story.after_second_restore and "later" not in story.after_second_restore


def test_going_back_as_the_page_says_brings_back_the_state_before_that_restore(story):
    names = story.went_back["configmaps"]
    assert {"before", "later"} <= names and "precious" not in names


def test_the_exported_kubeconfig_works_after_the_restore(story):
    """Step 7 ran: the `kubeconfig` output's token is one the restored data holds."""
    assert story.kubeconfig_after_restore is True


def test_after_going_back_the_kubeconfig_the_restore_issued_is_refused(story):
    """The credentials were rotated after the snapshot, so the restore issued new ones (step 7); the data of
    before the restore never held them: why the page ends "Going back" with a new kubeconfig.revision."""
    assert story.went_back["restore's kubeconfig works"] is False


def test_after_going_back_a_new_kubeconfig_revision_runs_only_the_kubeconfig_step_and_works(story):
    assert story.went_back["revision up"] == {"ran": ["kubeconfig"], "error": None}
    assert story.went_back["new kubeconfig works"] is True


@pytest.fixture(scope="module")
def offsite(story):
    """After the story: retention 2 and an off-host copy, set as a person would; then one scheduled run."""
    cluster = story.cluster
    cluster.lab.ssh("c1", "sudo mkdir -p /srv/offsite")
    before = snapshots(cluster)
    changed = set_and_up(cluster, "etcd.backup.retention", "2", "etcd.backup.copyCommand", 'cp "$1" /srv/offsite/')
    run = scheduled_run(cluster)
    return cluster, before, changed, run


def test_backup_settings_change_only_the_backup_step_and_the_timer_stays_enabled(offsite):
    cluster, _, changed, _ = offsite
    assert changed == {"ran": ["c1-etcd-backup"], "error": None}, changed
    timer = cluster.lab.ssh("c1", "sudo cat /etc/systemd/system/kubeadm-cluster-etcd-backup.timer").stdout
    assert "OnCalendar=*-*-* 00/6:00:00" in timer
    enabled = "/var/lib/kclab-node/units/kubeadm-cluster-etcd-backup.timer.enabled"  # the systemctl stand-in's record
    assert cluster.lab.ssh("c1", f"sudo test -e {enabled}", check=False).returncode == 0


def test_a_scheduled_run_takes_a_snapshot_the_real_etcdutl_verifies_and_copies_it_off_host(offsite):
    cluster, before, _, run = offsite
    assert run.returncode == 0, run.stderr
    recorded = backup_status(cluster)
    name = recorded["path"].rsplit("/", 1)[1]
    assert recorded["result"] == "ok" and name not in before, recorded
    local = cluster.lab.work / "snapshot-copy.db"
    local.write_bytes((cluster.lab.hosts["c1"].root / recorded["path"].lstrip("/")).read_bytes())
    verified = json.loads(subprocess.run([str(etcd_tool("etcdutl")), "snapshot", "status", str(local), "-w", "json"],
                                         capture_output=True, text=True, check=True).stdout)
    assert verified["revision"] == recorded["revision"] and verified["totalKey"] >= 1
    assert recorded["size"] == local.stat().st_size
    # etcdctl and etcdutl came from the running etcd's image (etcd's own Dockerfile carries both).
    tools = cluster.lab.ssh("c1", "sudo ls /usr/local/lib/kubeadm-cluster/etcd").stdout.split()
    assert sorted(tools) == ["etcdctl", "etcdutl"]
    assert snapshots(cluster, "/srv/offsite") == [name]
    assert snapshots(cluster) == [before[-1], name]  # retention 2: this member's newest two


def test_retention_keeps_the_newest_two_and_the_off_host_copies_are_the_targets_to_prune(offsite):
    cluster = offsite[0]
    copied = snapshots(cluster, "/srv/offsite")
    for _ in range(2):
        backup(cluster)
    taken = snapshots(cluster, "/srv/offsite")
    assert len(taken) == len(copied) + 2 and taken[:len(copied)] == copied
    assert snapshots(cluster) == taken[-2:]
    assert backup_status(cluster)["path"] == f"{BACKUPS}/{taken[-1]}"


def test_a_failed_offsite_copy_is_reported_and_the_snapshot_kept(offsite):
    cluster = offsite[0]
    kept = snapshots(cluster)
    changed = set_and_up(cluster, "etcd.backup.copyCommand", 'cp "$1" /srv/unreachable/')
    assert changed == {"ran": ["c1-etcd-backup"], "error": None}, changed
    # The stack output says where the status is and the newest snapshot as of this setup run.
    (output,) = cluster.stack.outputs()["etcdBackup"]
    assert output["statusFile"] == f"{BACKUPS}/status.json"
    assert output["lastSnapshot"].replace("-", "").replace(":", "") == SNAPSHOT.match(kept[-1]).group(1)
    run = scheduled_run(cluster)
    assert run.returncode != 0
    assert f"Job for {BACKUP} failed" in run.stderr
    recorded = backup_status(cluster)
    assert recorded["result"] == "copy-failed", recorded
    name = recorded["path"].rsplit("/", 1)[1]
    assert name not in kept and snapshots(cluster) == [kept[-1], name]  # kept locally, the oldest pruned
    journal = cluster.lab.ssh("c1", f"sudo cat /var/lib/kclab-node/units/{BACKUP.removesuffix('.service')}.journal")
    assert f"etcd snapshot {recorded['path']} is kept on c1, but its off-host copy (etcd.backup.copyCommand) " \
           "failed" in journal.stdout


def test_bad_schedule_retention_and_percentage_are_refused_by_the_cli_naming_each_key(offsite):
    """Last: it leaves the stack's config invalid."""
    cluster = offsite[0]
    for key, value in (("etcd.backup.schedule", "every 6 hours"), ("etcd.backup.retention", "0"),
                       ("upgrade.maxUnavailableWorkers", "150%")):
        cluster.stack.cli("config", "set", "--path", key, value, *cluster.stack._stack_args())
    result = cluster.preview(None)
    assert result.returncode != 0
    for key in ("etcd.backup.schedule", "etcd.backup.retention", "upgrade.maxUnavailableWorkers"):
        assert key in result.output, result.output
