"""Lab fixtures: skipped, with the reason, where the lab cannot run; the modules in the order the streams take them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
sys.path.insert(0, str(HERE))

from hosts import lab_available  # noqa: E402


# The lab's modules, the longest first (by .ci/run's --durations, 2026-11): .ci/run's two streams take them in this
# order, a module each at a time (pytest-xdist --dist loadfile --no-loadscope-reorder), so that neither stream ends
# long after the other with one long module left. A module not listed runs after these, in collection order.
LONGEST_FIRST = (
    "test_scenarios_real_restore.py",
    "test_scenarios_real_upgrade.py",
    "test_scenarios_real_haproxy_keepalived.py",
    "test_scenarios_real_external_etcd.py",
    "test_scenarios_real_addons.py",
    "test_scenarios_real.py",
    "test_scenarios.py",
    "test_scenarios_ha.py",
    "test_lab_machines.py",
    "test_scenarios_faults.py",
    "test_scenarios_host_keys.py",
    "test_command_provider.py",
    "test_scenarios_real_ha.py",
    "test_lab_images.py",
    "test_lab_charts.py",
    "test_lab_command_provider_host_keys.py",
    "test_lab_kubeadm_flow.py",
)


def pytest_collection_modifyitems(items):
    reason = lab_available()
    for item in items:
        if "lab" in item.keywords and reason:
            item.add_marker(pytest.mark.skip(reason=f"lab: {reason}"))
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    # Stable: tier 1's tests (not in this directory) first and in their order, each module's tests in theirs.
    items.sort(key=lambda item: (item.path.parent == HERE, rank.get(item.path.name, len(rank))))
