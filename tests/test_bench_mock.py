"""bench/bench.py still runs: it builds on the test harness's mocks, which change with the program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_mock_benchmark_measures_a_ten_node_cluster_and_its_floor():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "10"], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    row = out.stdout.strip().splitlines()[-1].split("|")
    assert row[1].strip() == "10" and int(row[2]) > 10, out.stdout
