"""The lab's real stacked-etcd HA (issue 12), `real-ha-stacked.yaml`: three control planes joined by the real kubeadm
(control-plane certificates uploaded, each adding its member to the real etcd), then, in order on one bring-up, a
control plane removed (its member gone from the real member list, its machine reset) and added back. Adding it back
first fails when its machine goes away once its etcd member started, then, with the machine back and the clock 2 h 5
min later (clock.py), on the material minted for that attempt, and succeeds once joinMaterialEpoch makes the program
mint new material. Then disaster recovery of the three members through the engine (docs/recovery.md): every data
directory destroyed, `etcd.restore` set, `pulumi up`; then a restore after a bad change undone with the page's
"Going back". Every fact asserted is read from the real programs: etcdctl's member list, the API server (kubectl with
admin.conf), kubeadm's own errors, pgrep on the hosts, the engine's events and preview."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import pytest

import clock
import vip
from components.config import API_SERVER_PORT
from hosts import CLIENT_NS, in_ns
from pulumi_cli import Result
from scenario import (add_user_everywhere, lab_cluster, once_its_etcd_member, replaced_or_deleted,
                      rerun_every_script, served_certificate, wait_until)
from tests.recovery_page import DOCS_ID, bash_blocks, docs_section

pytestmark = [pytest.mark.lab, pytest.mark.moves_clock]

CONTROL_PLANES = ["cp1", "cp2", "cp3"]
LEAVING = "cp3"  # not the first: the program refuses to remove the control plane that ran kubeadm init
# Past the join material's lifetime: kubeadm's 2 h for the uploaded certificates (DefaultCertTokenDuration,
# cmd/kubeadm/app/constants/constants.go@v1.36.4) and the token's (components/join_material.py TOKEN_TTL).
LATE_BY = 2 * 3600 + 5 * 60
# How long kube-apiserver caches a token's successful authentication (TokenSuccessCacheTTL, no flag:
# pkg/kubeapiserver/options/authentication.go@v1.36.4), plus a second.
TOKEN_CACHE_SECONDS = 10 + 1


@pytest.fixture(scope="module")
def stacked():
    with lab_cluster("real-ha-stacked.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        cluster.times = {"up": result.seconds}
        yield cluster, config
        print("stacked HA times (s):", {step: round(seconds) for step, seconds in cluster.times.items()})


def control_plane_pods(cluster, component: str) -> list[str]:
    return sorted(p["spec"]["nodeName"]
                  for p in cluster.kubectl(f"get pods -n kube-system -l component={component}")["items"])


def test_three_control_planes_come_up_each_with_its_etcd_member(stacked):
    cluster, config = stacked
    assert cluster.problems(config) == []
    for host in CONTROL_PLANES:
        assert cluster.etcd_member_names(host) == CONTROL_PLANES
    assert control_plane_pods(cluster, "kube-apiserver") == CONTROL_PLANES
    assert control_plane_pods(cluster, "etcd") == CONTROL_PLANES


def test_the_joined_api_servers_use_every_etcd_member(stacked):
    """kubeadm's stacked join points each API server at its local member (--etcd-servers=https://127.0.0.1:2379);
    the member list above is the real cluster the three of them share."""
    cluster, _ = stacked
    pod = cluster.kubectl(f"get pod -n kube-system kube-apiserver-{LEAVING}")
    assert "--etcd-servers=https://127.0.0.1:2379" in pod["spec"]["containers"][0]["command"]


def what_runs(cluster) -> dict:
    """What a script run again must leave as it is: each host's control-plane processes (PIDs: none restarted), the
    real etcd's cluster ID and member IDs, the Nodes' UIDs (none registered again)."""
    members = cluster.etcdctl("cp1", "member list")
    return {"processes": {host: cluster.lab.ssh(host, "pgrep -l -x 'etcd|kube-apiserver|kube-controller|kube-scheduler'"
                                                ).stdout.split("\n") for host in CONTROL_PLANES},
            "etcd": (members["header"]["cluster_id"], sorted(m["ID"] for m in members["members"])),
            "nodes": sorted((n["metadata"]["name"], n["metadata"]["uid"]) for n in cluster.kubectl("get nodes")["items"])}


def test_every_script_run_again_changes_nothing_the_real_programs_run(stacked):
    """The idempotency check (scenario.rerun_every_script: each command's stored script, over SSH, with its stdin, in
    the state's order) against the real kubeadm, etcd and API server: every script succeeds, no static pod restarts,
    etcd keeps its cluster and members, no Node is registered again, and the engine then plans nothing."""
    cluster, config = stacked
    before = what_runs(cluster)
    ran = rerun_every_script(cluster)
    assert {"cp1-init", "cp2-join", "cp3-join", "kubeconfig"} <= set(ran), ran
    assert what_runs(cluster) == before
    assert cluster.preview(config, "--expect-no-changes").returncode == 0


def test_a_control_plane_cordoned_by_hand_stays_cordoned_when_every_script_runs_again(stacked):
    """The upgrade steps uncordon only what they drained; here they run again with nothing to upgrade."""
    cluster, _ = stacked
    admin = "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf"
    cluster.lab.ssh("cp1", f"{admin} cordon cp2")
    try:
        rerun_every_script(cluster)
        assert cluster.kubectl("get node cp2")["spec"].get("unschedulable") is True
    finally:
        cluster.lab.ssh("cp1", f"{admin} uncordon cp2")


def test_refresh_then_preview_expects_no_changes(stacked):
    cluster, config = stacked
    refreshed = cluster.stack.refresh()
    assert refreshed.error is None, refreshed.error
    preview = cluster.preview(config, "--expect-no-changes")
    # On failure, what the engine would change, as a person would look for it.
    assert preview.returncode == 0, cluster.preview(config, "--diff").output[-20000:]


def test_removing_the_first_control_plane_is_refused_before_anything_changes(stacked):
    cluster, config = stacked
    before = what_runs(cluster)
    without_first = cluster.config(without=("cp1",))
    preview = cluster.preview(without_first)
    refusals = [d["message"] for d in (preview.preview or {}).get("diagnostics", []) if d.get("severity") == "error"]
    assert preview.returncode != 0 and any("cannot run kubeadm init" in m for m in refusals), preview.output
    result = cluster.up(without_first, "--skip-preview")  # the update itself refuses too, not only its preview
    assert result.error is not None and "cannot run kubeadm init" in result.error
    assert result.ran() == []
    assert what_runs(cluster) == before
    assert cluster.preview(config, "--expect-no-changes").returncode == 0


def test_rotating_the_ssh_key_replaces_nothing_and_restarts_nothing(stacked):
    cluster, config = stacked
    lab = cluster.lab
    before = what_runs(cluster)
    new_key = lab.work / "rotated-id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(new_key)], check=True)
    public = new_key.with_suffix(".pub").read_text().strip()
    for name in lab.hosts:
        lab.ssh(name, f"echo '{public}' >> ~/.ssh/authorized_keys")
    old_public = lab.key_path.with_suffix(".pub").read_text().strip()
    rotated = dict(config, sshPrivateKey=new_key.read_text())
    result = cluster.up(rotated)
    assert result.error is None, result.error
    assert replaced_or_deleted(result) == []
    assert what_runs(cluster) == before
    # The old key is gone from the machines: the stack now works with the new one only.
    for name in lab.hosts:
        lab.ssh(name, f"grep -vF '{old_public.split()[1]}' ~/.ssh/authorized_keys > ~/.ssh/k && "
                      "mv ~/.ssh/k ~/.ssh/authorized_keys")
    lab.key_path.write_text(new_key.read_text())
    lab.key_path.with_suffix(".pub").write_text(public + "\n")
    assert cluster.preview(cluster.config(), "--expect-no-changes").returncode == 0


def test_changing_the_ssh_user_and_back_replaces_nothing_and_restarts_nothing(stacked):
    cluster, _ = stacked
    before = what_runs(cluster)
    add_user_everywhere(cluster, "ops")
    changed = cluster.config()
    changed["ssh"] = {**changed["ssh"], "user": "ops"}
    result = cluster.up(changed)
    assert result.error is None, result.error
    assert replaced_or_deleted(result) == []
    # And back: the scenarios after this one run as the lab's own user.
    back = cluster.up(cluster.config())
    assert back.error is None, back.error
    assert replaced_or_deleted(back) == []
    assert what_runs(cluster) == before


# --- certificates.renew on the three control planes, one at a time --------------------------------------------------
# certs-renew.sh parks each control plane's static pods for the kubelet's manifest re-read, so its API server and etcd
# member stop, and waits for both to serve again before the engine runs the next node's: two members keep etcd's
# quorum and two API servers answer throughout. Before the removal below, whose config no longer sets the renewal.

RENEWAL = "2026-11-27"


@dataclass
class Renewal:
    before: dict[str, tuple[str, str]]  # host -> what its API server and its etcd member serve (serial, notBefore)
    after: dict[str, tuple[str, str]]
    result: Result
    readiness: list[tuple[float, dict[str, str]]]  # every 0.5 s in the up: (when, host -> its /readyz HTTP code)


def served_certificates(cluster) -> dict[str, tuple[str, str]]:
    """Empty where nothing serves: the up must not end before every member and API server serves again."""
    return {host: (served_certificate(cluster, host, API_SERVER_PORT, check=False),
                   served_certificate(cluster, host, 2379, check=False)) for host in CONTROL_PLANES}


def readiness_while(cluster, action: Callable[[], Result]) -> tuple[Result, list[tuple[float, dict[str, str]]]]:
    """ACTION's result, and each control plane's /readyz code as the client gets it (curl; "000": no answer at all)
    every 0.5 s while ACTION ran, with the monotonic time of each poll."""
    samples: list[tuple[float, dict[str, str]]] = []
    finished = threading.Event()

    probes = {host: vip.api_check(cluster.lab.hosts[host].addresses[0], API_SERVER_PORT) for host in CONTROL_PLANES}

    def poll() -> None:
        while not finished.is_set():
            samples.append((time.monotonic(), {host: in_ns(CLIENT_NS, "sh", "-c", probe, check=False).stdout.strip()
                                               for host, probe in probes.items()}))
            finished.wait(0.5)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        return action(), samples
    finally:
        finished.set()
        poller.join()


@pytest.fixture(scope="module")
def renewal(stacked):
    """With the lab's config as it is now (the SSH key rotated above is the hosts' only one)."""
    cluster, _ = stacked
    config = cluster.config()
    before = served_certificates(cluster)
    time.sleep(1)  # notBefore has a resolution of one second
    result, readiness = readiness_while(cluster, lambda: cluster.up({**config, "certificates": {"renew": RENEWAL}}))
    assert result.error is None, result.error
    cluster.times["certificates.renew"] = result.seconds
    return Renewal(before, served_certificates(cluster), result, readiness)


def test_every_api_server_and_etcd_member_serves_a_renewed_certificate_when_up_ends(renewal):
    assert "" not in [served for host in CONTROL_PLANES for served in renewal.before[host]], renewal.before
    assert [host for host in CONTROL_PLANES if renewal.after[host][0] in ("", renewal.before[host][0])] == []
    assert [host for host in CONTROL_PLANES if renewal.after[host][1] in ("", renewal.before[host][1])] == []


def test_the_engine_renews_one_control_plane_after_another(renewal):
    steps = [renewal.result.step(f"{host}-certs-renew") for host in CONTROL_PLANES]
    assert [step.action for step in steps] == ["update"] * 3
    assert steps[0].ended < steps[1].started and steps[1].ended < steps[2].started


def test_each_api_server_stops_in_turn_and_never_two_at_once(renewal):
    """An API server that does not answer at all ("000": its process is parked) is down; an answer that is not ready
    (etcd electing a leader after a member stopped) is not."""
    down = [{host for host, code in sample.items() if code == "000"} for _, sample in renewal.readiness]
    assert max(len(hosts) for hosts in down) == 1, [hosts for hosts in down if len(hosts) > 1]
    first_down = {host: next((i for i, hosts in enumerate(down) if host in hosts), None) for host in CONTROL_PLANES}
    assert None not in first_down.values(), first_down  # each went down: its static pods were parked
    assert sorted(CONTROL_PLANES, key=first_down.get) == CONTROL_PLANES
    ready = [when for when, sample in renewal.readiness if "200" in sample.values()]
    print(f"\nrenewal of 3 control planes: {len(renewal.readiness)} polls; the longest time no API server was ready: "
          f"{max(b - a for a, b in zip(ready, ready[1:])):.1f} s")


def test_etcd_keeps_its_three_members_and_every_node_is_ready_after_the_renewal(stacked, renewal):
    cluster, _ = stacked
    for host in CONTROL_PLANES:
        assert cluster.etcd_member_names(host) == CONTROL_PLANES
    assert cluster.problems(cluster.config()) == []


@pytest.fixture(scope="module")
def removed(stacked):
    """Then the scenarios go on with the lab's config as it is now (the SSH key rotated above is the hosts' only one)."""
    cluster, _ = stacked
    result = cluster.up(cluster.config(without=(LEAVING,)))
    assert result.error is None, result.error
    cluster.times[f"remove {LEAVING}"] = result.seconds
    return cluster, cluster.config()


def test_removing_a_control_plane_removes_its_etcd_member_and_node(removed):
    cluster, _ = removed
    remaining = [cp for cp in CONTROL_PLANES if cp != LEAVING]
    assert cluster.etcd_member_names("cp1") == remaining
    assert sorted(n["metadata"]["name"] for n in cluster.kubectl("get nodes")["items"]) == remaining


def test_the_removed_control_plane_is_reset_and_its_processes_end(removed):
    cluster, _ = removed
    assert cluster.lab.ssh(LEAVING, "sudo find /etc/kubernetes/manifests /var/lib/etcd -mindepth 1 2>/dev/null || true"
                           ).stdout.strip() == ""
    assert cluster.control_plane_processes_left(LEAVING) == ""


def machine_gone(cluster) -> None:
    """LEAVING's machine goes away: its kubelet and kubeadm end first, then every process (their connections closed
    before the link goes down, Lab.stop_host). A session left open would end with the TCP keepalive, after 150 s."""
    cluster.lab.ssh(LEAVING, "sudo pkill -KILL -x kubelet; sudo pkill -KILL -x kubeadm", check=False)
    cluster.lab.stop_host(LEAVING)


@pytest.fixture(scope="module")
def late(removed):
    """Two attempts to add cp3 back before it succeeds, when the machine's clock may move (else None): one whose
    machine goes away once its etcd member started, then, with the machine back 2 h 5 min later, the same one on the
    same material. The clock stays moved until the module ends: what was minted in the moved time is not valid
    before it."""
    cluster, config = removed
    if not clock.ALLOWED:
        yield None
        return
    # kubeadm reset cannot remove a member without a Node: the retry must.
    watcher = once_its_etcd_member(cluster, LEAVING, lambda: machine_gone(cluster), voting=False)
    interrupted = cluster.up(config)
    watcher.join()
    # The real API server keeps a token's success for TOKEN_CACHE_SECONDS of its monotonic clock, which the
    # clock step below does not move: that much real time passes first, as it would in 2 h.
    time.sleep(TOKEN_CACHE_SECONDS)
    with clock.moved_forward(LATE_BY):
        # The machine boots: the lab's host start runs sshd only, so the enabled runtime and kubelet are started
        # as systemd would. The kubelet runs the static pods again (cp3's etcd member with its data) and cannot
        # finish its TLS bootstrap with the expired token: still no Node.
        cluster.lab.start_host(LEAVING)
        cluster.lab.ssh(LEAVING, "sudo systemctl start containerd && sudo systemctl start kubelet")
        yield interrupted, cluster.up(config)


@pytest.fixture(scope="module")
def rejoined(removed, late):
    cluster, config = removed
    if late is not None:  # the material of the attempts above has expired: the user's remedy, a new epoch
        config = {**config, "joinMaterialEpoch": "2"}
    result = cluster.up(config)
    assert result.error is None, result.error
    cluster.times[f"add {LEAVING} again"] = result.seconds
    return cluster, config, result


def attempts(late) -> tuple:
    if late is None:
        clock.require_permission()
    return late


def test_a_join_whose_machine_went_away_after_its_etcd_member_started_fails_that_run(late):
    interrupted, _ = attempts(late)
    assert [step.name for step in interrupted.commands if step.failed] == [f"{LEAVING}-join"], interrupted.error


def test_the_same_material_more_than_2_h_later_is_refused_and_the_user_told_what_to_do(late, removed):
    """The retry resets what the interrupted join left (kubelet.conf is not among it: no TLS bootstrap finished), its
    etcd member too (else the next join's member panics on its emptied data), then the real API server refuses the
    expired token."""
    _, again = attempts(late)
    cluster, _ = removed
    assert [step.name for step in again.commands if step.failed] == [f"{LEAVING}-join"], again.error
    assert not {"join-material", "certificate-upload"} & set(again.ran())  # the first attempt's material
    assert cluster.etcd_member_names("cp1") == ["cp1", "cp2"]
    assert "an earlier kubeadm join did not finish" in again.error
    # kubeadm's preflight reads kubeadm-config with the token (cmd/kubeadm/app/cmd/join.go fetchInitConfiguration).
    assert "unable to fetch the kubeadm-config ConfigMap: failed to get config map: Unauthorized" in again.error
    assert "set a new kubeadm-cluster:joinMaterialEpoch" in again.error


def test_a_new_join_material_epoch_mints_new_material_and_the_control_plane_joins(late, rejoined):
    attempts(late)
    _, _, result = rejoined
    assert {"join-material", "certificate-upload", f"{LEAVING}-join", "join-cleanup"} <= set(result.ran())


def test_the_removed_control_plane_joins_again_with_a_new_member(rejoined):
    cluster, config, _ = rejoined
    assert cluster.problems(config) == []
    for host in CONTROL_PLANES:
        assert cluster.etcd_member_names(host) == CONTROL_PLANES


def test_a_second_up_changes_nothing(rejoined):
    cluster, config, _ = rejoined
    assert cluster.preview(config, "--expect-no-changes").returncode == 0


# --- Disaster recovery of the three members through the engine (docs/recovery.md, issue 13) ------------------------
# After the bring-up and the removal above, on the same cluster: ConfigMap `before`, a scheduled backup on cp1, the
# credentials rotated (a new kubeconfig.revision) and ConfigMap `after`; then every member's data directory destroyed
# and its etcd killed (the kubelet starts it again on an empty directory), and the restore set as the page's "Running
# it" says. Every fact below is the real programs' answer: the three API servers, etcdctl, the engine's events.

RESTORE_ID, SECOND_ID = "2026-11-26-stacked", "2026-11-26-stacked-2"
BUMP = 1_000_000_000  # etcd-restore-snapshot.sh's --bump-revision
LEASES = ("kube-controller-manager", "kube-scheduler")


def kubectl_on(cluster, host: str, args: str, check: bool = True):
    """The real kubectl with admin.conf against HOST's own API server."""
    return cluster.lab.ssh(host, f"sudo kubectl --kubeconfig /etc/kubernetes/admin.conf --server "
                                 f"https://{cluster.lab.hosts[host].addresses[0]}:6443 {args}", check=check)


def lease_holder(cluster, lease: str) -> str:
    done = kubectl_on(cluster, "cp1", f"-n kube-system get lease {lease} -o jsonpath={{.spec.holderIdentity}}",
                      check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def every_api_server_ready(cluster) -> None:
    for host in CONTROL_PLANES:
        wait_until(f"{host}'s API server's readiness", lambda: kubectl_on(cluster, host, "get --raw=/readyz",
                                                                           check=False).returncode == 0)


def configmaps_on(cluster, host: str) -> set[str]:
    return {n.removeprefix("configmap/") for n in kubectl_on(cluster, host, "get configmaps -n default -o name").stdout.split()}


def scheduled_backup(cluster) -> dict:
    """What the backup timer elapsing does (systemd.timer(5) Unit=): the service starts, on cp1; its status file."""
    time.sleep(1.1)  # snapshot names have one-second resolution
    cluster.lab.ssh("cp1", "sudo systemctl start kubeadm-cluster-etcd-backup.service")
    status = json.loads(cluster.lab.ssh("cp1", "sudo cat /var/lib/etcd-backups/status.json").stdout)
    assert status["result"] == "ok", status
    return status


@dataclass
class Restored:
    cluster: object
    config: dict
    ran: list[str]
    error: str | None
    before_rv: int                # ConfigMap `before`'s resourceVersion: in the snapshot
    after_rv: int                 # ConfigMap `after`'s: newer than the snapshot
    leaders: dict[str, str]       # lease -> holder before the restore
    verified: dict                # what the verify step printed
    credentials: dict[str, bool]  # which `kubeconfig` outputs the API server accepts after the restore
    second_up: list[str]


@pytest.fixture(scope="module")
def restored(rejoined):
    cluster, config, _ = rejoined
    started = time.monotonic()
    kubectl_on(cluster, "cp1", "create configmap before --from-literal=state=in-the-snapshot")
    before_rv = int(kubectl_on(cluster, "cp1", "get configmap before -o jsonpath={.metadata.resourceVersion}").stdout)
    leaders = {lease: wait_until(f"a {lease} leader", lambda: lease_holder(cluster, lease)) for lease in LEASES}
    in_the_snapshot = cluster.exported_kubeconfig()
    status = scheduled_backup(cluster)
    rotated = cluster.up({**config, "kubeconfig": {"revision": "after-the-snapshot"}})
    assert rotated.error is None and rotated.ran() == ["kubeconfig"], (rotated.ran(), rotated.error)
    after_the_snapshot = cluster.exported_kubeconfig()
    kubectl_on(cluster, "cp1", "create configmap after --from-literal=state=after-the-snapshot")
    after_rv = int(kubectl_on(cluster, "cp1", "get configmap after -o jsonpath={.metadata.resourceVersion}").stdout)

    for host in CONTROL_PLANES:  # the disaster
        cluster.lab.ssh(host, "sudo sh -c 'rm -rf /var/lib/etcd/member; kill -9 $(pgrep -x etcd)'")
    config = {**config, "kubeconfig": {"revision": "after-the-snapshot"},
              "etcd": {"restore": {"id": RESTORE_ID, "snapshot": status["path"]}}}
    result = cluster.up(config)
    cluster.times["restore"] = result.seconds
    every_api_server_ready(cluster)
    credentials = {"in the snapshot": cluster.kubeconfig_works(in_the_snapshot, "cp1"),
                   "issued after the snapshot": cluster.kubeconfig_works(after_the_snapshot, "cp1"),
                   "issued by the restore": cluster.kubeconfig_works(cluster.exported_kubeconfig(), "cp1")}
    verified = json.loads(cluster.step_output("etcd-restore-verify").strip().splitlines()[-1])
    second_up = cluster.up(config).ran()
    print(f"\nthree-member restore: {time.monotonic() - started:.0f} s")
    return Restored(cluster, config, result.ran(), result.error, before_rv, after_rv, leaders, verified, credentials,
                    second_up)


def test_the_restore_runs_its_chain_in_the_engines_order_then_the_kubeconfig_step(restored):
    """components/restore.py: every check and the snapshot, then every stop, the first member, each other member
    added, rejoined and promoted one at a time, the verification, every API server; then the credentials again."""
    assert restored.error is None, restored.error
    groups = [{f"{cp}-etcd-restore-check" for cp in CONTROL_PLANES} | {"etcd-restore-snapshot"},
              {f"{cp}-etcd-restore-stop" for cp in CONTROL_PLANES}, {"etcd-restore-first"},
              *({f"{cp}-etcd-restore-{step}"} for cp in CONTROL_PLANES[1:] for step in ("add", "rejoin", "promote")),
              {"etcd-restore-verify"}, {f"{cp}-etcd-restore-apiserver" for cp in CONTROL_PLANES}, {"kubeconfig"}]
    ran = list(restored.ran)
    for group in groups:
        assert set(ran[:len(group)]) == group, (ran, group)
        ran = ran[len(group):]
    assert ran == []


def test_every_api_server_has_the_snapshots_objects_and_not_the_later_ones(restored):
    for host in CONTROL_PLANES:
        names = configmaps_on(restored.cluster, host)
        assert "before" in names and "after" not in names, (host, names)


def test_the_verify_step_reports_the_three_members_under_a_new_cluster_id(restored):
    assert restored.verified["restore"] == RESTORE_ID and restored.verified["members"] == CONTROL_PLANES
    assert restored.verified["clusterId"] != restored.verified["previousClusterId"]
    for host in CONTROL_PLANES:
        assert restored.cluster.etcd_member_names(host) == CONTROL_PLANES


def test_resource_versions_continue_above_every_one_seen_before(restored):
    """--bump-revision: a client's resourceVersion from before the restore never names a later state."""
    listed = json.loads(kubectl_on(restored.cluster, "cp1", "get --raw /api/v1/namespaces/default/configmaps").stdout)
    assert int(listed["metadata"]["resourceVersion"]) > restored.after_rv + BUMP - 1_000


@pytest.mark.parametrize("seen", ["before_rv", "after_rv"])
def test_a_watch_from_before_the_restore_is_told_to_list_again(restored, seen):
    """An informer watching from a resourceVersion it saw before the restore gets 410 Gone ("too old resource
    version", watch_cache.go getAllEventsSinceLocked, k8s.io/apiserver@v0.36.4) and lists again, rather than waiting
    for, or being sent, a history that is not the one it saw."""
    events = kubectl_on(restored.cluster, "cp2", "get --raw '/api/v1/namespaces/default/configmaps?watch=1&"
                                                 f"resourceVersion={getattr(restored, seen)}&timeoutSeconds=5'"
                        ).stdout.splitlines()
    assert events, "the watch ended without an error: the client keeps a history that is not the one it saw"
    event = json.loads(events[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410, event


@pytest.mark.parametrize("lease", LEASES)
def test_the_controller_manager_and_scheduler_run_again_as_new_processes(restored, lease):
    """docs/recovery.md step 6: they start again after the API server, nothing cached from before; the lease from
    the snapshot names the holder of then, a new process takes it (a new identity per start: hostname_UUID,
    cmd/kube-controller-manager/app/controllermanager.go@v1.36.4)."""
    old = restored.leaders[lease]
    new = wait_until(f"a new {lease} leader", lambda: (lambda h: h if h and h != old else "")(
        lease_holder(restored.cluster, lease)), 180)
    assert re.fullmatch(r"cp[123]_[0-9a-f-]{36}", new), new


# The exported credentials are ServiceAccount tokens checked against their Secret and ServiceAccount in etcd
# (pkg/serviceaccount/legacy.go@v1.36.4, --service-account-lookup): the snapshot holds those of its time, and the
# restore's `kubeconfig` step (kubeconfig.py, replaced on a new etcd.restore.id) revokes them.

def test_the_credentials_the_snapshot_brought_back_are_revoked_by_the_restore(restored):
    assert restored.credentials["in the snapshot"] is False


def test_credentials_issued_after_the_snapshot_are_refused(restored):
    assert restored.credentials["issued after the snapshot"] is False


def test_the_kubeconfig_output_after_the_restore_works(restored):
    assert restored.credentials["issued by the restore"] is True


def test_a_second_up_after_the_restore_runs_nothing(restored):
    assert restored.second_up == []


# --- "Going back" on the three members ----------------------------------------------------------------------------
# It undoes a restore after a bad change (not after a disaster): ConfigMap `precious` written and backed up, then the
# bad change (`precious` deleted, `later` written, the credentials rotated), a second restore from that snapshot through
# the engine, and the page's three blocks run as root on the nodes each names, every node done before the next block.


@dataclass
class WentBack:
    undone_error: str | None
    after_second_restore: dict[str, set[str]]  # host -> the ConfigMaps its API server lists
    after_going_back: dict[str, set[str]]
    restores_kubeconfig_works: bool            # the `kubeconfig` output the second restore issued, after going back
    revision_up: list[str]                     # what a new kubeconfig.revision's `up` ran then
    new_kubeconfig_works: bool


@pytest.fixture(scope="module")
def went_back(restored):
    cluster, config = restored.cluster, restored.config
    started = time.monotonic()
    kubectl_on(cluster, "cp1", "create configmap precious")
    snapshot = scheduled_backup(cluster)["path"]
    kubectl_on(cluster, "cp1", "delete configmap precious")
    kubectl_on(cluster, "cp1", "create configmap later")
    config = {**config, "kubeconfig": {"revision": "rotated"}}  # credentials the snapshot lacks
    rotated = cluster.up(config)
    assert rotated.error is None and rotated.ran() == ["kubeconfig"], (rotated.ran(), rotated.error)
    undone = cluster.up({**config, "etcd": {"restore": {"id": SECOND_ID, "snapshot": snapshot}}})
    cluster.times["second restore"] = undone.seconds
    every_api_server_ready(cluster)
    after_second_restore = {host: configmaps_on(cluster, host) for host in CONTROL_PLANES}
    restores_kubeconfig = cluster.exported_kubeconfig()

    going_back = time.monotonic()
    for name, block in zip(("stop", "swap", "start"), bash_blocks(docs_section("Going back")), strict=True):
        # Each block on every node at once (each is a control plane and an etcd member), as a person with a terminal
        # per node runs it; every node is done before the next block.
        def run_block(host: str, script: str = block.replace(DOCS_ID, SECOND_ID)):
            return cluster.lab.ssh(host, "sudo bash -euo pipefail", stdin=script, check=False)
        with ThreadPoolExecutor(len(CONTROL_PLANES)) as pool:
            for host, done in zip(CONTROL_PLANES, pool.map(run_block, CONTROL_PLANES)):
                assert done.returncode == 0, f"Going back, {name} on {host}:\n{done.stdout}{done.stderr}"
        cluster.times[f"going back: {name}"] = time.monotonic() - going_back
    every_api_server_ready(cluster)
    cluster.times["going back: API servers ready"] = time.monotonic() - going_back
    after_going_back = {host: configmaps_on(cluster, host) for host in CONTROL_PLANES}
    works = cluster.kubeconfig_works(restores_kubeconfig, "cp1")
    # The page's last instruction: change kubeconfig.revision and run `pulumi up`.
    assert "change `kubeconfig.revision` and run `pulumi up`" in " ".join(docs_section("Going back").split())
    revision_up = cluster.up({**config, "etcd": {"restore": {"id": SECOND_ID, "snapshot": snapshot}},
                              "kubeconfig": {"revision": "after-going-back"}})
    assert revision_up.error is None, revision_up.error
    print(f"\nsecond restore and going back: {time.monotonic() - started:.0f} s")
    return WentBack(undone.error, after_second_restore, after_going_back, works, revision_up.ran(),
                    cluster.kubeconfig_works(cluster.exported_kubeconfig(), "cp1"))


def test_a_second_restore_from_a_newer_snapshot_undoes_a_bad_change_on_every_api_server(went_back):
    assert went_back.undone_error is None, went_back.undone_error
    for host, names in went_back.after_second_restore.items():
        assert {"before", "precious"} <= names and "later" not in names, (host, names)


def test_going_back_as_the_page_says_brings_back_the_state_before_that_restore_on_every_api_server(went_back):
    for host, names in went_back.after_going_back.items():
        assert {"before", "later"} <= names and "precious" not in names, (host, names)


def test_after_going_back_the_kubeconfig_the_restore_issued_is_refused(went_back):
    """The credentials were rotated after the snapshot, so the restore issued new ones (step 7); the data of before
    the restore never held them: why the page ends "Going back" with a new kubeconfig.revision."""
    assert went_back.restores_kubeconfig_works is False


def test_after_going_back_a_new_kubeconfig_revision_runs_only_the_kubeconfig_step_and_works(went_back):
    assert went_back.revision_up == ["kubeconfig"]
    assert went_back.new_kubeconfig_works is True
