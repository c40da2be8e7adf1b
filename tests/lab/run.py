"""tests/lab/run CONFIG.yaml — bring up the stack config's cluster in the lab and check it.

Exits 0 only when the stand-in cluster reports every node joined with the right role and version;
prints a one-line summary last; removes the lab's hosts also on failure.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent), str(HERE)]

from cluster import LabCluster, target_version  # noqa: E402
from components.config import ConfigError  # noqa: E402
from hosts import LabError, lab_available  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: tests/lab/run CONFIG.yaml", file=sys.stderr)
        return 2
    reason = lab_available()
    if reason:
        print(f"lab: cannot run: {reason}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        with LabCluster(Path(argv[0])) as cluster:
            return bring_up(cluster, started)
    except (LabError, ConfigError) as error:
        print(f"lab: cannot run: {error}", file=sys.stderr)
        return 2


def bring_up(cluster: LabCluster, started: float) -> int:
    config = cluster.config()
    result = cluster.up(config)
    problems = cluster.problems(config)
    if result.error:
        print(f"lab: pulumi up failed: {result.error}", file=sys.stderr)
    for problem in problems:
        print(f"lab: {problem}", file=sys.stderr)
    names = [node["name"] for node in config["nodes"]]
    as_configured = [name for name in names if not any(p.startswith(f"{name}: ") for p in problems)]
    seconds = time.monotonic() - started
    failed = bool(result.error or problems)
    version = target_version(config)
    print(f"lab: {'FAILED' if failed else 'OK'}: {len(as_configured)}/{len(names)} nodes as configured at "
          f"v{version}, {len(result.ran())} commands in {seconds:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
