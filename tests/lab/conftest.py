"""Lab fixtures: skipped, with the reason, where the lab cannot run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hosts import lab_available  # noqa: E402

CONFIGS = Path(__file__).resolve().parent / "configs"


def pytest_collection_modifyitems(items):
    reason = lab_available()
    for item in items:
        if "lab" in item.keywords and reason:
            item.add_marker(pytest.mark.skip(reason=f"lab: {reason}"))
