"""Benchmark: program evaluation at 10, 100 and 1000 nodes under Pulumi mocks (a script, not a test).

For each size (3 control planes, the rest workers) it reports, against a floor program that registers
the same number of bare remote Commands under the same mocks: wall time and peak memory of a whole
evaluation, remote commands per node, the depth of the remote-command dependency graph (the longest
chain of commands that must run one after another: on a new cluster only commands with a `create`
connect to a machine; on a version change the update-only day-2 steps run too), and how many
resources adding one node touches.
Each measurement runs in a fresh process.

    .venv/bin/python bench/bench.py [SIZES...]
    .venv/bin/python bench/bench.py --upgrade-depth WORKERS   # upgrade chain depth: default batch size vs 1
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def config(nodes: int, upgrade: dict | None = None) -> dict:
    from harness import base_config

    inventory = [{"name": f"cp{i}", "address": f"10.1.0.{i}", "roles": ["control-plane"]} for i in (1, 2, 3)]
    inventory += [{"name": f"w{i}", "address": f"10.2.{i // 250}.{i % 250 + 1}", "roles": ["worker"]}
                  for i in range(nodes - 3)]
    return base_config(nodes=inventory, ingress={"controller": "traefik"}, upgrade=upgrade or {})


def longest_command_chain(run, creating: bool) -> int:
    """Commands that run on the longest dependency path (dependencies plus parent links, as the engine
    waits). `creating`: a new cluster, where commands without a create run nothing."""
    by_urn = {r.urn: r for r in run.resources}

    @lru_cache(maxsize=None)
    def depth(urn: str) -> int:
        record = by_urn.get(urn)
        if record is None:
            return 0
        below = max((depth(dep) for dep in run.waits_for(urn)), default=0)
        runs = record.is_command and (not creating or record.plain("create"))
        return below + (1 if runs else 0)

    sys.setrecursionlimit(100_000)
    return max(depth(urn) for urn in by_urn)


def measure_program(nodes: int) -> dict:
    from harness import plan, run_program

    started = time.perf_counter()
    run = run_program(config(nodes))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    grown = config(nodes + 1)
    touched = plan(run, run_program(grown)).touched
    return {"seconds": seconds, "peak_mib": peak, "commands": len(run.commands),
            "creation_depth": longest_command_chain(run, creating=True),
            "upgrade_depth": longest_command_chain(run, creating=False), "touched_by_one_more_node": len(touched)}


def measure_upgrade_depth(workers: int, max_unavailable: str) -> dict:
    """The upgrade chain depth with 3 control planes and `workers` workers; "" is the default setting."""
    from harness import run_program

    upgrade = {"maxUnavailableWorkers": max_unavailable} if max_unavailable else {}
    return {"upgrade_depth": longest_command_chain(run_program(config(workers + 3, upgrade)), creating=False)}


def measure_floor(commands: int) -> dict:
    """The same number of bare Commands, no dependencies: what the SDK and mocks cost by themselves."""
    import pulumi
    from pulumi_command import remote

    from harness import ClusterMocks, RecordingMonitor

    mocks = ClusterMocks(lambda name: "", stashed={})
    pulumi.runtime.set_mocks(mocks, project="floor", stack="bench", preview=False, monitor=RecordingMonitor(mocks))

    @pulumi.runtime.test
    def program():
        for i in range(commands):
            remote.Command(f"c{i}", connection=remote.ConnectionArgs(host=f"10.0.{i // 250}.{i % 250 + 1}"),
                           create="true")

    started = time.perf_counter()
    program()
    return {"seconds": time.perf_counter() - started,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(kind: str, size: int, *extra: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(size), *extra], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def upgrade_depths(workers: int) -> None:
    from components.config import DEFAULT_MAX_UNAVAILABLE_WORKERS

    print("| workers | upgrade.maxUnavailableWorkers | chain depth: upgrade |")
    print("|---|---|---|")
    for setting in ("", "1"):
        depth = child("upgrade-depth", workers, setting)["upgrade_depth"]
        shown = f"{DEFAULT_MAX_UNAVAILABLE_WORKERS} (default)" if not setting else setting
        print(f"| {workers} | {shown} | {depth} |")


def main(sizes: list[int]) -> None:
    rows = []
    for size in sizes:
        program = child("program", size)
        floor = child("floor", program["commands"])
        rows.append((size, program, floor))
        print(f"measured {size} nodes", file=sys.stderr)
    print("| nodes | remote commands | per node | chain depth: new cluster | chain depth: upgrade | program s | "
          "floor s | program peak MiB | floor peak MiB | resources touched by +1 node |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, p, f in rows:
        print(f"| {size} | {p['commands']} | {p['commands'] / size:.1f} | {p['creation_depth']} | "
              f"{p['upgrade_depth']} | {p['seconds']:.1f} | "
              f"{f['seconds']:.1f} | {p['peak_mib']:.0f} | {f['peak_mib']:.0f} | {p['touched_by_one_more_node']} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        kind, size = sys.argv[2], int(sys.argv[3])
        if kind == "upgrade-depth":
            result = measure_upgrade_depth(size, sys.argv[4])
        else:
            result = measure_program(size) if kind == "program" else measure_floor(size)
        print(json.dumps(result))
    elif sys.argv[1:2] == ["--upgrade-depth"]:
        upgrade_depths(int(sys.argv[2]))
    else:
        main([int(s) for s in sys.argv[1:]] or [10, 100, 1000])
