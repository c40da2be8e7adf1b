"""SPEC §4 ordering: the dependency graph is the plan."""

from __future__ import annotations

import pytest

from harness import base_config, run_program


@pytest.fixture(scope="module")
def run():
    return run_program(base_config())


def test_nodes_are_prepared_in_parallel(run):
    prepares = [r for r in run.commands if r.name.endswith("-prepare")]
    assert len(prepares) == 5
    for r in prepares:
        others = {p.name for p in prepares} - {r.name}
        assert not any(run.depends_on(r.name, other) for other in others)


def test_init_runs_on_the_first_control_plane_after_its_preparation(run):
    init = run.named("cp1-init")
    assert init.host == "10.0.0.11"
    assert run.depends_on("cp1-init", "cp1-prepare")
    assert not run.depends_on("cp1-init", "w1-prepare")


def test_first_control_plane_is_the_first_in_nodes_order():
    config = base_config()
    config["nodes"] = [config["nodes"][3], *config["nodes"][1:3], config["nodes"][0], config["nodes"][4]]
    run = run_program(config)
    assert run.named("cp2-init").host == "10.0.0.12"
    assert "cp1-init" not in run.names()


def test_join_material_is_minted_after_init(run):
    assert run.depends_on("join-material", "cp1-init")
    assert run.named("join-material").host == "10.0.0.11"


@pytest.mark.parametrize("node", ["cp2", "cp3", "w1", "w2"])
def test_every_join_waits_for_join_material_and_its_preparation(run, node):
    assert run.depends_on(f"{node}-join", "join-material")
    assert run.depends_on(f"{node}-join", f"{node}-prepare")


def test_control_plane_joins_are_chained(run):
    assert run.depends_on("cp3-join", "cp2-join")
    assert not run.depends_on("cp2-join", "cp3-join")


def test_worker_joins_run_in_parallel_with_each_other_and_control_planes(run):
    for worker in ("w1-join", "w2-join"):
        for other in ("w1-join", "w2-join", "cp2-join", "cp3-join"):
            if other != worker:
                assert not run.depends_on(worker, other), f"{worker} waits for {other}"


def test_registrations_follow_their_join_and_run_on_the_first_control_plane(run):
    for node in ("cp2", "cp3", "w1", "w2"):
        assert run.depends_on(f"{node}-register", f"{node}-join")
        assert run.named(f"{node}-register").host == "10.0.0.11"


def test_kubeconfig_is_read_after_init_without_waiting_for_joins(run):
    assert run.depends_on("kubeconfig", "cp1-init")
    for join in ("cp2-join", "cp3-join", "w1-join", "w2-join"):
        assert not run.depends_on("kubeconfig", join)


def test_upgrade_chain_order(run):
    chain = ["upgrade-preflight", "cp1-upgrade", "cp2-upgrade", "cp3-upgrade",
             "w1-upgrade-drain", "w1-upgrade", "w1-upgrade-uncordon"]
    for earlier, later in zip(chain, chain[1:]):
        assert run.depends_on(later, earlier), f"{later} does not wait for {earlier}"


def test_workers_upgrade_one_batch_at_a_time(run):
    assert run.depends_on("w2-upgrade-drain", "w1-upgrade-uncordon")


def test_larger_batches_upgrade_workers_together():
    run = run_program(base_config(upgrade={"maxUnavailableWorkers": 2}))
    assert not run.depends_on("w2-upgrade-drain", "w1-upgrade-uncordon")
    assert run.depends_on("w2-upgrade-drain", "cp3-upgrade")


def test_worker_drain_and_uncordon_run_on_the_first_control_plane(run):
    assert run.named("w1-upgrade-drain").host == "10.0.0.11"
    assert run.named("w1-upgrade").host == "10.0.0.21"
    assert run.named("w1-upgrade-uncordon").host == "10.0.0.11"


def test_certificate_renewal_is_chained_over_control_planes(run):
    assert run.depends_on("cp2-certs-renew", "cp1-certs-renew")
    assert run.depends_on("cp3-certs-renew", "cp2-certs-renew")
    assert run.depends_on("kubeconfig", "cp1-certs-renew")


def test_single_control_plane_cluster():
    run = run_program(base_config(nodes=[{"name": "solo", "address": "10.0.0.11", "roles": ["control-plane"]}],
                                  controlPlane={}))
    assert {"solo-prepare", "solo-init", "join-material", "kubeconfig"} <= run.names()
    assert not any(name.endswith("-join") for name in run.names())
