"""The lab's real upgrades (issue 12): `real-upgrade.yaml` comes up at 1.36.3 (two stacked control planes, five
workers), then one `pulumi up` with kubernetesVersion 1.36.4 (a patch) and another with 1.37.2 (one minor: etcd
3.6.8 → 3.7.0 and pkgs.k8s.io's repository move too) run the program's upgrade chain (components/upgrade.py) with
the real `kubeadm upgrade apply` on c1, then the real `kubeadm upgrade node` on c2 and on the workers; the kubelet
is the one stand-in (standins/kubelet.py, its version that of its package). Everything asserted comes from the real
API server, the real etcd or the engine.

The five workers at upgrade.maxUnavailableWorkers "30%" (rounded up: 2) upgrade in three batches, 2, 2 and 1, each
batch's workers at the same time and no batch before the previous one is uncordoned, all after the control planes
(issue 13). What each worker went through, from its drain starting to its uncordon ending, comes from the sequence
numbers the engine gives its ResourcePre and ResOutputs events (`pulumi up --json`).

The minor upgrade's run also adds a control plane (c3) and a worker (w6): a new node's upgrade step is new too and
does nothing, so they must join at 1.37.2, and only once the API server they reach runs it (see tests/lab/README.md)."""

from __future__ import annotations

import pytest

from pulumi_cli import Result
from scenario import lab_cluster

pytestmark = pytest.mark.lab

SOURCE, TARGET, NEXT_MINOR = "1.36.3", "1.36.4", "1.37.2"
# cmd/kubeadm/app/constants/constants.go DefaultEtcdVersion: "3.6.8-0" at v1.36.3 and v1.36.4, "3.7.0-0" at
# v1.37.2, so `kubeadm upgrade apply` moves etcd in the minor upgrade only.
ETCD_IMAGE = {TARGET: "3.6.8-0", NEXT_MINOR: "3.7.0-0"}
# The components whose image every kubeadm upgrade changes.
UPGRADED = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# Written before the minor upgrade; the etcd upgrade must keep it.
KEPT = "kept-across-upgrades"
CONTROL_PLANES = ["c1", "c2"]  # c1 runs `kubeadm upgrade apply`, c2 `kubeadm upgrade node`
WORKERS = ["w1", "w2", "w3", "w4", "w5"]
NODES = [*CONTROL_PLANES, *WORKERS]
ADDED = ["c3", "w6"]  # joined in the minor upgrade's run


def mirror_pods(cluster) -> dict[str, dict[str, dict]]:
    """Each control plane's mirror pods by component: what `kubeadm upgrade` reads and waits on
    (cmd/kubeadm/app/util/apiclient/wait.go@v1.36.4 getStaticPodSingleHash: kubernetes.io/config.hash)."""
    pods: dict[str, dict[str, dict]] = {}
    for pod in cluster.kubectl("get pods -n kube-system -l tier=control-plane")["items"]:
        pods.setdefault(pod["spec"]["nodeName"], {})[pod["metadata"]["labels"]["component"]] = pod
    return pods


def image(pod: dict) -> str:
    return pod["spec"]["containers"][0]["image"]


def config_hash(pod: dict) -> str:
    return pod["metadata"]["annotations"]["kubernetes.io/config.hash"]


def condition(obj: dict, kind: str) -> str | None:
    return next((c["status"] for c in obj["status"].get("conditions", []) if c["type"] == kind), None)


def worker_spans(result: Result) -> dict[str, tuple[int, int]]:
    """Each worker's upgrade, as engine event sequence numbers: its drain's start to its uncordon's end."""
    return {w: (result.step(f"{w}-upgrade-drain").started, result.step(f"{w}-upgrade-uncordon").ended)
            for w in WORKERS}


def batches_of(spans: dict[str, tuple[int, int]]) -> list[list[str]]:
    """Workers grouped as the engine ran them: a worker whose drain started after every worker of the
    current group had ended starts a new group."""
    groups: list[list[str]] = []
    group_end = -1
    for worker in sorted(spans, key=lambda w: spans[w][0]):
        start, end = spans[worker]
        if start > group_end:
            groups.append([])
        groups[-1].append(worker)
        group_end = max(group_end, end)
    return [sorted(group) for group in groups]


def every_node(value, nodes: list[str] = NODES) -> dict[str, object]:
    return {name: value for name in nodes}


@pytest.fixture(scope="module")
def upgraded():
    with lab_cluster("real-upgrade.yaml") as cluster:
        first = cluster.up(cluster.config(without=ADDED))
        assert first.error is None, first.error
        assert cluster.problems(cluster.config(without=ADDED)) == []
        before = mirror_pods(cluster)
        target = cluster.config(without=ADDED, kubernetesVersion=TARGET)
        result = cluster.up(target)
        yield cluster, target, result, before


@pytest.fixture(scope="module")
def minor(upgraded):
    cluster, _, patch, _ = upgraded
    assert patch.error is None, patch.error
    cluster.kubectl(f"create configmap {KEPT} --from-literal=written-at=v{TARGET}")
    before = mirror_pods(cluster)
    target = cluster.config(kubernetesVersion=NEXT_MINOR)
    result = cluster.up(target)
    return cluster, target, result, before


def test_the_upgrade_runs_through_the_real_kubeadm(upgraded):
    cluster, target, result, _ = upgraded
    assert result.error is None, result.error
    workers = {f"{w}-upgrade{step}" for w in WORKERS for step in ("-drain", "", "-uncordon")}
    assert {"c1-upgrade", "c2-upgrade", *workers} <= set(result.ran("update"))
    # An upgrade replaces nothing: no init, join or reset runs again.
    assert [s.name for s in result.commands if s.action in ("replace", "delete")] == []
    assert cluster.problems(target) == []
    # The API server's own /version, and kubeadm's record of the cluster's version (upload-config of upgrade apply).
    assert cluster.kubectl("version")["serverVersion"]["gitVersion"] == f"v{TARGET}"
    kubeadm_config = cluster.kubectl("get configmap -n kube-system kubeadm-config")["data"]["ClusterConfiguration"]
    assert f"kubernetesVersion: v{TARGET}" in kubeadm_config


def test_the_etcd_snapshot_before_the_upgrade_is_taken_in_the_etcd_pod(upgraded):
    """upgrade-preflight.sh runs etcdctl in the etcd pod through the real kubectl exec and API server."""
    cluster, _, result, _ = upgraded
    assert "upgrade-preflight" in result.ran("update")
    listing = cluster.lab.ssh("c1", "sudo ls /var/lib/etcd-snapshots").stdout.split()
    assert listing == [f"before-v{TARGET}.db"]


def test_every_upgraded_static_pod_runs_the_new_image_under_a_new_config_hash(upgraded):
    cluster, _, _, before = upgraded
    after = mirror_pods(cluster)
    for node in CONTROL_PLANES:
        for component in UPGRADED:
            old, new = before[node][component], after[node][component]
            assert image(old).endswith(f":v{SOURCE}") and image(new).endswith(f":v{TARGET}"), (node, component)
            assert config_hash(new) != config_hash(old), (node, component)
            assert new["status"]["phase"] == "Running" and condition(new, "Ready") == "True", (node, component)
        # No etcd change between v1.36.3 and v1.36.4: the same image on both.
        assert image(after[node]["etcd"]) == image(before[node]["etcd"]), node
    # kubeadm leaves the first member's static pod alone. The second's it writes again, as for a member that was
    # never joined (CreateLocalEtcdStaticPodManifestFile with no members: `--initial-cluster` itself only, which a
    # member with data ignores), so its manifest differs from the join's and etcd restarts there
    # (phases/upgrade/staticpods.go@v1.36.4 performEtcdStaticPodUpgrade, upgradeComponent).
    assert config_hash(after["c1"]["etcd"]) == config_hash(before["c1"]["etcd"])


def test_the_second_control_plane_is_upgraded_by_the_real_kubeadm_upgrade_node(upgraded):
    cluster = upgraded[0]
    log = cluster.step_output("c2-upgrade", "stderr")
    assert "kubeadm upgrade node" in log and "kubeadm upgrade apply" not in log, log
    # cmd/kubeadm/app/cmd/phases/upgrade/node/controlplane.go@v1.36.4
    assert "The control plane instance for this node was successfully upgraded!" in log, log
    # Drained before its kubelet's upgrade, uncordoned after (upgrade-lib.sh: only a node it drained).
    assert "node/c2 uncordoned" in log, log


def test_every_kubelet_reports_the_new_version_ready_and_schedulable(upgraded):
    cluster, _, _, _ = upgraded
    nodes = {n["metadata"]["name"]: n for n in cluster.kubectl("get nodes")["items"]}
    assert {name: n["status"]["nodeInfo"]["kubeletVersion"] for name, n in nodes.items()} == every_node(f"v{TARGET}")
    assert {name: condition(n, "Ready") for name, n in nodes.items()} == every_node("True")
    assert {name: bool(n["spec"].get("unschedulable")) for name, n in nodes.items()} == every_node(False)
    assert not any("kubeadm-cluster.io/drained-for-upgrade" in (n["metadata"].get("annotations") or {})
                   for n in nodes.values())


def test_five_workers_at_thirty_percent_upgrade_in_batches_of_two_two_and_one(upgraded):
    spans = worker_spans(upgraded[2])
    assert batches_of(spans) == [WORKERS[0:2], WORKERS[2:4], WORKERS[4:]], spans


def test_the_workers_of_a_batch_upgrade_at_the_same_time(upgraded):
    spans = worker_spans(upgraded[2])
    for batch in (WORKERS[0:2], WORKERS[2:4]):
        # Every worker of the batch started its drain before any of them was uncordoned.
        assert max(spans[w][0] for w in batch) < min(spans[w][1] for w in batch), {w: spans[w] for w in batch}


def test_the_control_planes_upgrade_one_at_a_time_before_any_worker_is_drained(upgraded):
    result = upgraded[2]
    first, second = result.step("c1-upgrade"), result.step("c2-upgrade")
    assert first.action == second.action == "update" and not (first.failed or second.failed)
    assert result.step("upgrade-preflight").ended < first.started
    assert first.ended < second.started
    assert second.ended < min(result.step(f"{w}-upgrade-drain").started for w in WORKERS)


def test_the_minor_upgrade_runs_through_the_real_kubeadm(minor):
    cluster, target, result, _ = minor
    assert result.error is None, result.error
    assert {"upgrade-preflight", "c1-upgrade", "c2-upgrade", "w5-upgrade-drain", "w5-upgrade",
            "w5-upgrade-uncordon"} <= set(result.ran("update"))
    assert cluster.problems(target) == []
    assert cluster.kubectl("version")["serverVersion"]["gitVersion"] == f"v{NEXT_MINOR}"
    listing = cluster.lab.ssh("c1", "sudo ls /var/lib/etcd-snapshots").stdout.split()
    assert f"before-v{NEXT_MINOR}.db" in listing


def test_the_minor_upgrade_moves_etcd_on_both_control_planes_and_keeps_its_data(minor):
    """c1's member by `upgrade apply`, c2's by `upgrade node`; then c3 joins at the new version: three members."""
    cluster, _, _, before = minor
    after = mirror_pods(cluster)
    for node in CONTROL_PLANES:
        assert image(before[node]["etcd"]).endswith(f":{ETCD_IMAGE[TARGET]}"), node
        assert image(after[node]["etcd"]).endswith(f":{ETCD_IMAGE[NEXT_MINOR]}"), node
        # The running member's own answer.
        status = cluster.etcdctl(node, "endpoint status")[0]["Status"]
        assert status["version"] == ETCD_IMAGE[NEXT_MINOR].split("-")[0], node
        for component in UPGRADED:
            assert image(after[node][component]).endswith(f":v{NEXT_MINOR}"), (node, component)
    assert cluster.etcd_member_names("c1") == ["c1", "c2", "c3"]
    kept = cluster.kubectl(f"get configmap {KEPT}")
    assert kept["data"] == {"written-at": f"v{TARGET}"}


def test_the_minor_upgrade_moves_every_node_to_the_new_minors_package_repository(minor):
    """pkgs.k8s.io has one repository per minor: the upgrade must point apt at v1.37 before installing."""
    cluster, _, _, _ = minor
    for host in (*NODES, *ADDED):
        sources = cluster.lab.ssh(host, "cat /etc/apt/sources.list.d/kubernetes.list").stdout
        assert "/v1.37/" in sources and "/v1.36/" not in sources, (host, sources)
        assert cluster.lab.ssh(host, "kubeadm version -o short").stdout.strip() == f"v{NEXT_MINOR}", host
        assert cluster.lab.ssh(host, "dpkg-query -W -f='${Version}' cri-tools").stdout == "1.37.0-1.1", host
    nodes = {n["metadata"]["name"]: n for n in cluster.kubectl("get nodes")["items"]}
    assert {name: n["status"]["nodeInfo"]["kubeletVersion"] for name, n in nodes.items()} == every_node(
        f"v{NEXT_MINOR}", [*NODES, *ADDED])
    assert {name: condition(n, "Ready") for name, n in nodes.items()} == every_node("True", [*NODES, *ADDED])


def test_the_nodes_added_in_that_run_join_once_the_api_server_they_reach_runs_the_new_minor(minor):
    """The new control plane and the worker join after every control plane that was there is upgraded: the
    engine's order of the steps."""
    result = minor[2]
    upgraded = result.step("c2-upgrade")
    assert upgraded.action == "update" and not upgraded.failed
    for node in ADDED:
        assert result.step(f"{node}-join").started > upgraded.ended, node


def test_the_nodes_added_in_that_run_needed_no_upgrade(minor):
    cluster, _, result, _ = minor
    for node in ADDED:
        assert result.step(f"{node}-upgrade").action == "create", node
        assert cluster.lab.ssh(node, "kubeadm version -o short").stdout.strip() == f"v{NEXT_MINOR}", node
    assert cluster.lab.ssh("w6", "dpkg-query -W -f='${Version}' cri-tools").stdout == "1.37.0-1.1"
    assert "cri-tools" in cluster.lab.ssh("w6", "apt-mark showhold").stdout.split()


def test_the_new_control_planes_certificates_are_deleted_with_the_tokens_once_the_joins_are_done(minor):
    """A control plane joins, so the run uploads the certificates again (the bring-up's upload, for c2, was deleted
    once its joins were done); once this run's joins are done the real API server holds neither the kubeadm-certs
    Secret nor a bootstrap token."""
    cluster, _, result, _ = minor
    assert {"certificate-upload", "join-material", "join-cleanup"} <= set(result.ran("replace"))
    assert result.step("join-cleanup").started > max(result.step(f"{n}-join").ended for n in ADDED)
    secrets = cluster.kubectl("get secrets -n kube-system")["items"]
    assert [s["metadata"]["name"] for s in secrets
            if s["type"] == "bootstrap.kubernetes.io/token" or s["metadata"]["name"] == "kubeadm-certs"] == []


def test_a_second_up_changes_nothing(minor):
    cluster, target, _, _ = minor
    assert cluster.preview(target, "--expect-no-changes").returncode == 0
