"""The lab's real stacked-etcd HA (issue 12), `real-ha-stacked.yaml`: three control planes joined by the real kubeadm
(control-plane certificates uploaded, each adding its member to the real etcd), then, in order on one bring-up, a
control plane removed (its member gone from the real member list, its machine reset) and added back. Adding it back
first fails when its machine goes away once its etcd member started, then, with the machine back and the clock 2 h 5
min later (clock.py), on the material minted for that attempt, and succeeds once joinMaterialEpoch makes the program
mint new material. Every fact asserted is read from the real programs: etcdctl's member list, the API server (kubectl with
admin.conf), kubeadm's own errors, pgrep on the hosts, the engine's events and preview."""

from __future__ import annotations

import time

import pytest

import clock
from scenario import lab_cluster, once_its_etcd_member_started

pytestmark = pytest.mark.lab

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


@pytest.fixture(scope="module")
def removed(stacked):
    cluster, config = stacked
    result = cluster.up(cluster.config(without=(LEAVING,)))
    assert result.error is None, result.error
    cluster.times[f"remove {LEAVING}"] = result.seconds
    return cluster, config


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
    """LEAVING's machine goes away. Its kubelet and kubeadm end first, so the program's SSH session ends as it would
    when the provider's TCP keepalive gives up (a link that just goes down leaves the lab's ssh waiting)."""
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
    watcher = once_its_etcd_member_started(cluster, LEAVING, lambda: machine_gone(cluster))
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
