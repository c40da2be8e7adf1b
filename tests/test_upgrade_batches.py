"""upgrade.maxUnavailableWorkers as a count or a percentage, and the upgrade.drain settings: what the config
accepts and rejects, and how the worker upgrades are batched in the dependency graph."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_spec
from harness import base_config, inner_script, run_program, script_param

CONTROL_PLANES = [{"name": f"cp{i}", "address": f"10.0.0.1{i}", "roles": ["control-plane"]} for i in (1, 2, 3)]


def workers(count: int) -> list[dict]:
    return [{"name": f"w{i}", "address": f"10.1.{i // 200}.{i % 200 + 1}", "roles": ["worker"]}
            for i in range(1, count + 1)]


def batch_size(value, worker_count: int = 10) -> int:
    upgrade = {} if value is None else {"maxUnavailableWorkers": value}
    spec = parse_spec(base_config(nodes=CONTROL_PLANES + workers(worker_count), upgrade=upgrade))
    return spec.max_unavailable_workers


def problems(upgrade: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_spec(base_config(upgrade=upgrade))
    return error.value.problems


@pytest.mark.parametrize("value,worker_count,expected", [
    ("30%", 10, 3),
    ("25%", 10, 3),  # 2.5 rounds up
    ("1%", 10, 1),  # at least one
    ("100%", 10, 10),
    ("20%", 1000, 200),
    (4, 10, 4),
    ("4", 10, 4),  # `pulumi config set --path` may hand a number over as a string
])
def test_max_unavailable_workers_counts_and_percentages(value, worker_count, expected):
    assert batch_size(value, worker_count) == expected


def test_default_is_twenty_percent_of_the_workers():
    assert batch_size(None, 10) == 2
    assert batch_size(None, 1000) == 200


@pytest.mark.parametrize("value", ["101%", "0%", 0, -2, "-5%", "lots", "12.5%", "20 %", True, 1001])
def test_bad_max_unavailable_workers_is_rejected_naming_the_key_and_the_value(value):
    (problem,) = problems({"maxUnavailableWorkers": value})
    assert problem.startswith(f"upgrade.maxUnavailableWorkers: {value!r} is not valid")
    assert "1% to 100%" in problem


def test_drain_defaults_never_wait_forever():
    drain = parse_spec(base_config()).drain
    assert (drain.timeout, drain.grace_period, drain.skip_wait_for_delete_timeout) == ("5m", -1, 0)


def test_drain_settings_are_read():
    drain = parse_spec(base_config(upgrade={"drain": {"timeout": "1h30m", "gracePeriod": 30,
                                                      "skipWaitForDeleteTimeout": 60}})).drain
    assert (drain.timeout, drain.grace_period, drain.skip_wait_for_delete_timeout) == ("1h30m", 30, 60)


@pytest.mark.parametrize("key,value,allowed", [
    ("timeout", "0s", "above zero"),  # kubectl drain: "zero means infinite"
    ("timeout", "0", "above zero"),
    ("timeout", "5 minutes", "duration"),
    ("timeout", 300, "duration"),  # kubectl needs a unit
    ("gracePeriod", -2, "-1 to"),
    ("gracePeriod", "soon", "-1 to"),
    ("skipWaitForDeleteTimeout", -1, "0 to"),
])
def test_bad_drain_settings_are_rejected_naming_the_key(key, value, allowed):
    (problem,) = problems({"drain": {key: value}})
    assert problem.startswith(f"upgrade.drain.{key}: {value!r} is not valid")
    assert allowed in problem


def test_every_bad_upgrade_setting_is_reported_at_once():
    assert len(problems({"maxUnavailableWorkers": "150%", "drain": {"timeout": "0s", "gracePeriod": -9}})) == 3


def worker_batches(run, names: list[str]) -> list[list[str]]:
    """Workers grouped by how many worker upgrades must finish before their drain starts."""
    level: dict[str, int] = {}
    for name in names:  # config order: a worker only ever waits for workers before it
        before = [level[other] for other in level
                  if run.depends_on(f"{name}-upgrade-drain", f"{other}-upgrade-uncordon")]
        level[name] = 1 + max(before, default=-1)
    return [[name for name in names if level[name] == i] for i in range(max(level.values()) + 1)]


def test_ten_workers_at_thirty_percent_upgrade_in_four_batches_one_after_another():
    names = [f"w{i}" for i in range(1, 11)]
    run = run_program(base_config(nodes=CONTROL_PLANES + workers(10), upgrade={"maxUnavailableWorkers": "30%"}))
    batches = worker_batches(run, names)
    assert batches == [["w1", "w2", "w3"], ["w4", "w5", "w6"], ["w7", "w8", "w9"], ["w10"]]
    for earlier, later in zip(batches, batches[1:]):
        for name in later:
            for done in earlier:  # a batch starts only when every worker of the one before is back
                assert run.depends_on(f"{name}-upgrade-drain", f"{done}-upgrade-uncordon")
    for name in batches[0]:
        assert run.depends_on(f"{name}-upgrade-drain", "cp3-upgrade")


def test_control_planes_still_upgrade_one_at_a_time_with_a_percentage():
    run = run_program(base_config(nodes=CONTROL_PLANES + workers(10), upgrade={"maxUnavailableWorkers": "100%"}))
    assert run.depends_on("cp3-upgrade", "cp2-upgrade")
    assert run.depends_on("cp2-upgrade", "cp1-upgrade")


def test_every_drain_gets_the_drain_settings():
    run = run_program(base_config(upgrade={"drain": {"timeout": "10m", "gracePeriod": 45,
                                                     "skipWaitForDeleteTimeout": 20}}))
    scripts = {"w1-upgrade-drain": run.named("w1-upgrade-drain").plain("update"),
               "cp2-upgrade": run.named("cp2-upgrade").plain("update"),
               "w1-register (delete)": run.named("w1-register").plain("delete")}
    for step, command in scripts.items():
        script = inner_script(command)
        assert (script_param(script, "DRAIN_TIMEOUT"), script_param(script, "DRAIN_GRACE_PERIOD"),
                script_param(script, "DRAIN_SKIP_WAIT_FOR_DELETE_TIMEOUT")) == ("10m", "45", "20"), step
        assert "drain_blockers()" in script, step
