"""Day-2 operations on the lab's real Kubernetes (issue 12), `real-control-plane.yaml`, in order on one bring-up:
certificates.renew renews what the real processes serve and restarts them; removing the worker drains it through the
real API server's eviction API (a PodDisruptionBudget that blocks is named in the program's log), deletes its Node and
resets the machine; `pulumi destroy`, then a fresh up of the control plane alone on the same hosts; the worker added
back 25 h later (the machine's clock moved, clock.py), on new join material. Every fact asserted is read from the real
programs: the API server (kubectl with admin.conf), openssl s_client against the real listeners, the hosts' files."""

from __future__ import annotations

import json
import time

import pytest

import clock
from scenario import lab_cluster, served_certificate, wait_until

pytestmark = [pytest.mark.lab, pytest.mark.moves_clock]

# The kubelet stand-in reports pods bound to its node Running without running them (standins/kubelet.py), so the
# image is only a name here.
WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: web, image: registry.k8s.io/pause:3.10.1}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: guarded, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: guarded}}
  template:
    metadata: {labels: {app: guarded}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: guarded, image: registry.k8s.io/pause:3.10.1}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: guarded, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: guarded}}
"""
# upgrade.drain.timeout: long enough for the unguarded evictions, short for the guarded one. Set from the first up:
# a node's drain on removal runs with the settings recorded when it was registered (the engine deletes a resource
# with its last inputs, so a change in the same up as the removal comes too late).
DRAIN_TIMEOUT = "30s"


@pytest.fixture(scope="module")
def day2():
    with lab_cluster("real-control-plane.yaml") as cluster:
        config = cluster.config(upgrade={"drain": {"timeout": DRAIN_TIMEOUT}})
        result = cluster.up(config)
        assert result.error is None, result.error
        cluster.times = {"up": result.seconds}
        yield cluster, config
        print("day-2 times (s):", {step: round(seconds) for step, seconds in cluster.times.items()})


def admin(cluster, script: str, stdin: str = "") -> str:
    return cluster.lab.ssh("c1", f"sudo kubectl --kubeconfig /etc/kubernetes/admin.conf {script}", stdin=stdin).stdout


def pods(cluster, app: str) -> list[dict]:
    return json.loads(admin(cluster, f"get pods -n default -l app={app} -o json"))["items"]


def host_leftovers(cluster, host: str) -> dict[str, str]:
    """What a reset leaves on HOST: static pod manifests, etcd data, kubeconfigs."""
    checks = {
        "manifests": "sudo find /etc/kubernetes/manifests -mindepth 1 2>/dev/null || true",
        "etcd data": "sudo find /var/lib/etcd -mindepth 1 2>/dev/null || true",
        "kubeconfigs": "sudo sh -c 'ls /etc/kubernetes/*.conf 2>/dev/null || true'",
    }
    found = {}
    for what, script in checks.items():
        done = cluster.lab.ssh(host, f"{script} 2>&1", check=False)
        if done.returncode or done.stdout.strip():
            found[what] = f"exit {done.returncode}: {done.stdout.strip()}"
    return found


# --- 2. certificates.renew: the program's certs-renew.sh with the real kubeadm certs renew ---------------------

RENEWAL = "2026-11-26"
CONTROL_PLANE_PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def processes(cluster) -> dict[str, str]:
    return {name: cluster.lab.ssh("c1", f"pgrep -x {name[:15]}").stdout.split()[0] for name in CONTROL_PLANE_PROCESSES}


@pytest.fixture(scope="module")
def renewal(day2):
    cluster, config = day2
    before = {"apiserver": served_certificate(cluster, "c1", 6443), "etcd": served_certificate(cluster, "c1", 2379),
              "processes": processes(cluster), "expiry": cluster.stack.outputs()["certificateExpiry"]}
    time.sleep(1)  # notBefore has a resolution of one second
    result = cluster.up({**config, "certificates": {"renew": RENEWAL}})
    assert result.error is None, result.error
    cluster.times["certificates.renew"] = result.seconds
    return cluster, before, result


def test_the_api_server_serves_its_renewed_certificate(renewal):
    cluster, before, _ = renewal
    assert served_certificate(cluster, "c1", 6443) != before["apiserver"]


def test_etcd_serves_its_renewed_certificate(renewal):
    cluster, before, _ = renewal
    assert served_certificate(cluster, "c1", 2379) != before["etcd"]


def test_the_static_pods_run_as_new_processes(renewal):
    cluster, before, _ = renewal
    after = processes(cluster)
    assert {name for name in CONTROL_PLANE_PROCESSES if after[name] == before["processes"][name]} == set()


def test_admin_conf_still_reaches_the_api_server(renewal):
    cluster, _, _ = renewal
    assert sorted(n["metadata"]["name"] for n in cluster.kubectl("get nodes")["items"]) == ["c1", "w1"]


def test_the_certificate_expiry_output_is_read_again(renewal):
    cluster, before, _ = renewal
    old = {e["name"]: e["expires"] for e in before["expiry"]}
    new = {e["name"]: e["expires"] for e in cluster.stack.outputs()["certificateExpiry"]}
    assert {name for name in new if new[name] != old.get(name)} >= {"apiserver", "admin.conf"}


# --- 1. Removing the worker: kubectl drain through the real eviction API ------------------------------------------

@pytest.fixture(scope="module")
def removal(day2):
    cluster, config = day2
    admin(cluster, "apply -f -", stdin=WORKLOADS)

    def running_on_w1() -> bool:
        current = pods(cluster, "web") + pods(cluster, "guarded")
        return len(current) == 3 and all(
            p["spec"].get("nodeName") == "w1" and p["status"].get("phase") == "Running" for p in current)

    wait_until("the workloads Running on w1", running_on_w1, 180)
    before = {p["metadata"]["name"] for p in pods(cluster, "web") + pods(cluster, "guarded")}
    guarded = pods(cluster, "guarded")[0]["metadata"]["name"]
    leaving = {**config, "certificates": {"renew": RENEWAL}}
    result = cluster.up({**leaving, "nodes": [n for n in config["nodes"] if n["name"] != "w1"]})
    assert result.error is None, result.error
    cluster.times["remove w1"] = result.seconds
    return cluster, result, before, guarded


def test_removing_the_worker_deletes_its_node(removal):
    cluster, _, _, _ = removal
    assert [n["metadata"]["name"] for n in cluster.kubectl("get nodes")["items"]] == ["c1"]


def test_the_drain_evicted_the_unguarded_pods_and_their_replacements_wait_unscheduled(removal):
    """The Deployment's pods on w1 are gone; the ReplicaSet made new ones the real scheduler cannot place (c1 keeps
    kubeadm's control-plane NoSchedule taint)."""
    cluster, _, before, _ = removal

    def replaced() -> bool:
        current = pods(cluster, "web")
        return len(current) == 2 and not {p["metadata"]["name"] for p in current} & before and all(
            not p["spec"].get("nodeName") and p["status"]["phase"] == "Pending" for p in current)

    wait_until("the web pods replaced and Pending", replaced, 60)
    scheduled = [next(c for c in p["status"]["conditions"] if c["type"] == "PodScheduled") for p in pods(cluster, "web")]
    assert {(c["status"], c["reason"]) for c in scheduled} == {("False", "Unschedulable")}


def test_a_blocking_pod_disruption_budget_is_named_in_the_program_log(removal):
    _, result, _, guarded = removal
    assert (f"drain of w1 did not finish within {DRAIN_TIMEOUT} (a PodDisruptionBudget allows no disruption of pod "
            f"default/{guarded}") in result.output


def test_the_removed_worker_is_reset(removal):
    cluster, _, _, _ = removal
    assert host_leftovers(cluster, "w1") == {}


# --- 3. pulumi destroy, then a fresh up on the same hosts ---------------------------------------------------------

def cluster_ca(cluster) -> str:
    return cluster.lab.ssh("c1", "sudo openssl x509 -noout -fingerprint -sha256 -in /etc/kubernetes/pki/ca.crt").stdout


@pytest.fixture(scope="module")
def destroyed(removal):
    cluster, _, _, _ = removal
    ca = cluster_ca(cluster)
    result = cluster.destroy()
    assert result.error is None, result.error
    cluster.times["destroy"] = result.seconds
    return cluster, ca


def test_destroy_leaves_every_host_clean(destroyed):
    cluster, _ = destroyed
    assert {host: host_leftovers(cluster, host) for host in ("c1", "w1")} == {"c1": {}, "w1": {}}


def test_destroy_stops_the_control_plane_processes(destroyed):
    """The real kubeadm reset removes the containers (the kubelet stand-in's end with /var/lib/kubelet's state)."""
    cluster, _ = destroyed
    assert cluster.control_plane_processes_left("c1") == ""


@pytest.fixture(scope="module")
def fresh(destroyed, day2):
    """The fresh up brings up the control plane alone: the worker comes a day later (4. below)."""
    cluster, old_ca = destroyed
    _, config = day2
    alone = {**config, "nodes": [n for n in config["nodes"] if n["name"] == "c1"]}
    result = cluster.up(alone)
    assert result.error is None, result.error
    cluster.times["fresh up"] = result.seconds
    return cluster, alone, old_ca


def test_a_fresh_up_on_the_same_hosts_makes_a_new_cluster(fresh):
    cluster, alone, old_ca = fresh
    assert cluster.problems(alone) == []
    assert cluster_ca(cluster) != old_ca
    assert sorted(n["metadata"]["name"] for n in cluster.kubectl("get nodes")["items"]) == ["c1"]
    # Nothing of the old cluster: its workloads were in the old etcd.
    assert json.loads(admin(cluster, "get deployments -n default -o json"))["items"] == []


# --- 4. A worker added 25 h after the bring-up ---------------------------------------------------------------------
# Past the lifetime of every bootstrap token the bring-up minted (components/join_material.py TOKEN_TTL) by a day of
# the real controllers' and API server's time: the program mints new material for the new worker only, and the real
# API server accepts it. The clock stays moved until the module ends (clock.py): what is minted in the moved time is
# not valid before it.

LATER_BY = 25 * 3600


def test_the_preview_diff_shows_the_new_workers_whole_script(fresh, day2):
    cluster, _, _ = fresh
    _, config = day2
    digest = cluster.preview(config).preview
    prepare = next(s for s in digest["steps"] if s["urn"].endswith("::w1-prepare"))
    assert prepare["op"] == "create"
    script = prepare["newState"]["inputs"]["create"]
    diff = cluster.preview(config, "--diff", "--show-full-output")
    assert diff.returncode == 0, diff.output
    # The CLI prints a created string input Go-quoted (%q), cut to its first 3 lines unless --show-full-output
    # (pkg/backend/display/object_diff.go@v3.274.1 truncatePropertyString; cmd/pulumi/operations/preview.go).
    body = [json.dumps(line, ensure_ascii=False)[1:-1] for line in script.splitlines() if len(line.strip()) > 20]
    assert len(body) > 20 and [line for line in body if line not in diff.output] == []
    assert "w1-join" in diff.output and "w1-register" in diff.output


def control_plane_identity(cluster) -> dict[str, str]:
    """What a second `kubeadm init` on c1 would change: its Node's UID and the cluster CA."""
    return {"node": cluster.kubectl("get node c1")["metadata"]["uid"], "ca": cluster_ca(cluster)}


@pytest.fixture(scope="module")
def a_day_later(fresh, day2):
    """Skipped, with the reason, where the machine's clock may not move (clock.py); nothing comes after it."""
    cluster, _, _ = fresh
    _, config = day2
    clock.require_permission()
    before = control_plane_identity(cluster)
    with clock.moved_forward(LATER_BY):
        result = cluster.up(config)
        cluster.times["w1 added 25 h later"] = result.seconds
        yield cluster, config, result, before


def test_a_worker_added_a_day_later_joins_with_new_material(a_day_later):
    cluster, config, result, _ = a_day_later
    assert result.error is None, result.error
    assert cluster.problems(config) == []
    created = {s.name for s in result.commands if s.action == "create"}
    assert {"w1-prepare", "w1-join", "w1-register"} <= created and {n.split("-")[0] for n in created} == {"w1"}
    remint = {"join-material", "join-cleanup"}
    assert {s.name for s in result.commands if s.action in ("replace", "delete")} == remint
    others = {s.name: s.action for s in result.commands
              if s.action != "same" and s.name not in created and s.name not in remint}
    assert set(others.values()) <= {"update"}, others
    assert {s.host for s in result.commands if s.action in ("create", "replace") and s.host} <= {
        node["address"] for node in config["nodes"]}


def test_the_control_plane_was_not_initialised_again(a_day_later):
    cluster, _, _, before = a_day_later
    assert control_plane_identity(cluster) == before


def test_no_bootstrap_token_and_no_uploaded_certificates_are_left_at_the_api_server(a_day_later):
    cluster, _, _, _ = a_day_later
    tokens = cluster.kubectl("get secrets -n kube-system --field-selector type=bootstrap.kubernetes.io/token")
    assert [t["metadata"]["name"] for t in tokens["items"]] == []
    assert "kubeadm-certs" not in {s["metadata"]["name"] for s in cluster.kubectl("get secrets -n kube-system")["items"]}
