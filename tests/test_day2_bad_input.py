"""Issue 13's bad input together: an unparseable backup schedule, retention 0 and a percentage over 100 %
are each reported with the key, the bad value and what is allowed, all in one error."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_spec
from harness import base_config


def test_bad_schedule_retention_and_percentage_are_reported_at_once_naming_key_value_and_allowed():
    with pytest.raises(ConfigError) as error:
        parse_spec(base_config(etcd={"backup": {"schedule": "every 6 hours", "retention": 0}},
                               upgrade={"maxUnavailableWorkers": "150%"}))
    schedule, retention, percentage = error.value.problems
    assert schedule.startswith("etcd.backup.schedule: 'every 6 hours' is not valid; expected a systemd OnCalendar")
    assert retention.startswith("etcd.backup.retention: 0 is not valid; expected an integer from 1 to 1000")
    assert percentage.startswith("upgrade.maxUnavailableWorkers: '150%' is not valid;")
    assert "1% to 100%" in percentage
