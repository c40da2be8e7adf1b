"""Benchmark with the real Pulumi engine (a script, not a test): the CLI built by toolchain/build.

    .venv/bin/python bench/real.py preview [SIZES...] [NAME=VALUE...]   # default 10 100 1000; NAME=VALUE: env of both CLIs
    flock /tmp/kclab.lock .venv/bin/python bench/real.py bringup [CONFIG]   # default tests/lab/configs/ha-kube-vip.yaml

preview: for each size (bench.py's clusters: 3 control planes, the rest workers), `pulumi preview --json` of
a fresh stack of this program, then of a floor program with as many bare `remote.Command`s as the
program's preview plans (no dependencies, one host each), both by the same CLI in the same run, each in
a file backend of its own. Each preview runs as the lab runs the program (tests/lab/pulumi_cli.py: the
inline-program helper serving the program, the CLI, the kubernetes provider built by toolchain/build, the
lab's pulumi-command stand-in). Wall: the whole CLI invocation. Peak memory: the largest sum, over
samples every 0.1 s, of the resident set (VmRSS) of every process in the tree the invocation started:
the helper running the Python program, the CLI and its plugins (shared pages count once per process).

bringup: brings up CONFIG's lab hosts (tests/lab), runs `pulumi up` without its add-ons (as tests/lab/run
does), and compares the `up`'s wall time with the critical path: each resource's duration is the time
between its ResourcePre and ResOutputs events as this script receives them (the engine's own event
timestamps have whole-second resolution; that figure is printed too), the dependency graph is each
resource's `dependencies` and `parent` in `pulumi stack export`, and the critical path is the longest
path weighted by those durations.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "lab"), str(ROOT / "bench")]

from pulumi_cli import COMMAND, Stack  # noqa: E402

FLOOR_PROGRAM = '''\
import pulumi
from pulumi_command import remote

for i in range(int(pulumi.Config().require("commands"))):
    remote.Command(f"c{i}", connection=remote.ConnectionArgs(host=f"10.0.{i // 250}.{i % 250 + 1}"), create="true")
'''
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> int:
    """Bytes resident in `root` and all its descendants now (VmRSS summed)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/statm") as statm:
                rss[int(entry)] = int(statm.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(stack: Stack, args: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run a program-running CLI operation: (wall seconds, CPU seconds, peak tree RSS MiB, stdout)."""
    argv = stack.argv(*args, "--stack", stack.name, "--config-file", str(stack.config_file), program=True)
    cpu = cpu_of_children()
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**stack.env, **env}, cwd=stack.project)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({process.returncode}):\n{stdout[-3000:]}{stderr[-3000:]}")
    return seconds, cpu_of_children() - cpu, peak / 2**20, stdout


def planned_commands(stdout: str) -> tuple[int, int]:
    """(remote commands, all resources) the preview digest plans."""
    digest = json.loads(stdout[stdout.index("{"):])
    steps = digest.get("steps") or []
    return sum(1 for s in steps if s["urn"].rsplit("::", 2)[1].split("$")[-1] == COMMAND), len(steps)


def preview(sizes: list[int], env: dict[str, str]) -> None:
    from bench import config

    if env:
        print("environment of both CLIs: " + " ".join(f"{k}={v}" for k, v in env.items()))
    print("| nodes | remote commands | resources planned | program preview s | floor preview s | time ratio | "
          "program CPU s | floor CPU s | program peak MiB | floor peak MiB | memory ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-real-") as work:
        floor_project = Path(work, "floor")
        floor_project.mkdir()
        (floor_project / "Pulumi.yaml").write_text("name: floor\nruntime: python\n")
        (floor_project / "__main__.py").write_text(FLOOR_PROGRAM)
        for size in sizes:
            program = Stack(f"n{size}", Path(work, f"program-{size}")).init()
            program.set_config(config(size))
            p_seconds, p_cpu, p_peak, out = measured(program, ["preview", "--json"], env)
            commands, resources = planned_commands(out)
            floor = Stack(f"n{size}", Path(work, f"floor-{size}"), project=floor_project).init()
            floor.set_config({"commands": str(commands)})
            f_seconds, f_cpu, f_peak, out = measured(floor, ["preview", "--json"], env)
            assert planned_commands(out)[0] == commands
            print(f"| {size} | {commands} | {resources} | {p_seconds:.1f} | {f_seconds:.1f} | {p_seconds / f_seconds:.2f} | "
                  f"{p_cpu:.1f} | {f_cpu:.1f} | {p_peak:.0f} | {f_peak:.0f} | {p_peak / f_peak:.2f} |", flush=True)


def critical_path(resources: list[dict[str, Any]], seconds: dict[str, float]) -> tuple[float, list[str]]:
    """The longest path through `dependencies` and `parent` links, weighted by each resource's seconds."""
    by_urn = {r["urn"]: r for r in resources}

    @lru_cache(maxsize=None)
    def longest(urn: str) -> tuple[float, tuple[str, ...]]:
        record = by_urn.get(urn)
        if record is None:
            return 0.0, ()
        waits = [*record.get("dependencies", []), *([record["parent"]] if record.get("parent") else [])]
        below = max((longest(dep) for dep in waits), default=(0.0, ()))
        own = seconds.get(urn, 0.0)
        return below[0] + own, below[1] + ((urn,) if own else ())

    total, path = max((longest(urn) for urn in by_urn), default=(0.0, ()))
    return total, list(path)


def bringup(config_path: Path) -> None:
    from cluster import LabCluster, without_addons

    received: dict[str, dict[str, float]] = {}

    def on_event(event: dict[str, Any], _process: Any) -> None:
        now = time.monotonic()
        for kind, edge in (("resourcePreEvent", "start"), ("resOutputsEvent", "end"), ("resOpFailedEvent", "end")):
            payload = event.get(kind)
            if payload:
                received.setdefault(payload["metadata"]["urn"], {}).setdefault(edge, now)

    with tempfile.TemporaryDirectory(prefix="bench-bringup-") as state:
        started = time.monotonic()
        with LabCluster(config_path, log=lambda _: None, state=Path(state), stack="bench") as cluster:
            hosts_seconds = time.monotonic() - started
            config, taken = without_addons(cluster.config(addons=True))
            result = cluster.up(config, on_event=on_event)
            if result.error or cluster.problems(config):
                raise SystemExit(f"bring-up failed: {result.error or cluster.problems(config)}")
            resources = cluster.stack.export()["deployment"]["resources"]
    custom = {r["urn"] for r in resources if r.get("custom")}
    seconds = {urn: t["end"] - t["start"] for urn, t in received.items() if urn in custom and "end" in t}
    engine_seconds = {s.urn: float(s.seconds) for s in result.steps if s.urn in custom and s.seconds is not None}
    path_seconds, path = critical_path(resources, seconds)
    engine_path_seconds, _ = critical_path(resources, engine_seconds)
    update = [t for t in received.values() if "end" in t]
    span = max(t["end"] for t in update) - min(t["start"] for t in update)
    print(f"config: {config_path} ({len(config['nodes'])} nodes; brought up without: {', '.join(taken) or 'nothing'})")
    print(f"lab hosts up in {hosts_seconds:.1f} s (not counted below)")
    print("| pulumi up wall s | first step start to last step end s | critical path s | wall / critical path | "
          "critical path s (engine timestamps, 1 s resolution) | commands run |")
    print("|---|---|---|---|---|---|")
    print(f"| {result.seconds:.1f} | {span:.1f} | {path_seconds:.1f} | {result.seconds / path_seconds:.2f} | "
          f"{engine_path_seconds:.0f} | {len(result.ran())} |")
    print("critical path: " + " → ".join(f"{urn.rsplit('::', 1)[1]} {seconds[urn]:.1f} s" for urn in path))


if __name__ == "__main__":
    if sys.argv[1:2] == ["bringup"]:
        bringup(Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "tests" / "lab" / "configs" / "ha-kube-vip.yaml")
    elif sys.argv[1:2] == ["preview"]:
        settings = dict(a.split("=", 1) for a in sys.argv[2:] if "=" in a)
        preview([int(a) for a in sys.argv[2:] if "=" not in a] or [10, 100, 1000], settings)
    else:
        raise SystemExit(__doc__)
