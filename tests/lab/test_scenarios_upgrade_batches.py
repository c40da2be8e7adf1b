"""Ten workers upgraded 30 % at a time, read from the real engine's events (issue 13).

One control plane and ten workers (configs/ten-workers.yaml, upgrade.maxUnavailableWorkers "30%") come
up at 1.36.4; one `pulumi up` raises kubernetesVersion to 1.37.1. 30 % of 10 rounds up to 3, so the
workers must upgrade in four batches, 3, 3, 3 and 1, each batch's workers at the same time and no batch
before the previous one is uncordoned, all after the control plane. What each worker went through, from
its drain starting to its uncordon ending, comes from the sequence numbers the engine gives its
ResourcePre and ResOutputs events (`pulumi up --json`).
"""

from __future__ import annotations

import time

import pytest

from pulumi_cli import Result
from scenario import lab_cluster

pytestmark = pytest.mark.lab

TARGET = "1.37.1"
WORKERS = [f"w{i:02d}" for i in range(1, 11)]


@pytest.fixture(scope="module")
def wide():
    timings = {}
    started = time.monotonic()
    with lab_cluster("ten-workers.yaml") as cluster:
        timings["hosts"] = time.monotonic() - started
        config = cluster.config()
        first = cluster.up(config)
        assert first.error is None, first.error
        timings["bring-up"] = first.seconds
        target = cluster.config(kubernetesVersion=TARGET)
        result = cluster.up(target)
        timings["upgrade"] = result.seconds
        print(f"\nten-workers lab: hosts {timings['hosts']:.0f} s, bring-up {timings['bring-up']:.0f} s, "
              f"upgrade {timings['upgrade']:.0f} s")
        yield cluster, target, result


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


def test_every_node_ends_at_the_new_version(wide):
    cluster, target, result = wide
    assert result.error is None, result.error
    assert cluster.problems(target) == []


def test_ten_workers_at_thirty_percent_upgrade_in_four_batches_one_after_another(wide):
    _, _, result = wide
    spans = worker_spans(result)
    assert batches_of(spans) == [WORKERS[0:3], WORKERS[3:6], WORKERS[6:9], WORKERS[9:]], spans


def test_the_workers_of_a_batch_upgrade_at_the_same_time(wide):
    _, _, result = wide
    spans = worker_spans(result)
    for batch in (WORKERS[0:3], WORKERS[3:6], WORKERS[6:9]):
        # Every worker of the batch started its drain before any of them was uncordoned.
        assert max(spans[w][0] for w in batch) < min(spans[w][1] for w in batch), {w: spans[w] for w in batch}


def test_the_control_plane_upgrades_before_any_worker_is_drained(wide):
    _, _, result = wide
    control_plane = result.step("cp1-upgrade")
    assert control_plane.action == "update" and not control_plane.failed
    assert result.step("upgrade-preflight").ended < control_plane.started
    assert control_plane.ended < min(result.step(f"{w}-upgrade-drain").started for w in WORKERS)


def test_each_worker_was_drained_once_and_is_schedulable_again(wide):
    cluster, _, _ = wide
    journal = cluster.lab.journal()
    drained = [d["node"] for d in journal["drains"]]
    assert sorted(drained) == sorted(["cp1", *WORKERS])
    assert not any(m["unschedulable"] for m in cluster.members().values())
    assert [u["host"] for u in journal["upgrades"]][0] == "cp1"
