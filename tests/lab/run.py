"""tests/lab/run [--state DIR] CONFIG.yaml — bring up a stack config's cluster in the lab with the real
Pulumi CLI (`pulumi up`) and check it.

Exits 0 only when the stand-in cluster reports every node joined with the right role and version;
prints a one-line summary last; removes the lab's hosts also on failure.

A stand-in lab has no API server, so a config with add-ons (flannel, an ingress controller, Helm
releases) is first previewed unchanged — the real kubernetes provider plans them while the kubeconfig
is unknown — and then brought up without them (`cni.type: none`, `ingress.controller: none`, no
`helmReleases`); the summary says so. A real lab (`kclab: {real: true}`) applies them through the real
kubernetes provider, its charts from the lab's chart repository (tests/lab/charts.py: stand-in charts),
and the summary names them.

--state DIR: the stack's file backend lives in DIR and stays after the run (stack: the config file's
name; passphrase: $PULUMI_CONFIG_PASSPHRASE, else a new one written to DIR/passphrase), e.g.
    PULUMI_BACKEND_URL=file://DIR PULUMI_CONFIG_PASSPHRASE_FILE=DIR/passphrase pulumi stack export --stack NAME
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent), str(HERE)]

from cluster import LabCluster, print_line, target_version, without_addons  # noqa: E402
from components.config import ConfigError, parse_spec  # noqa: E402
from hosts import LabError, lab_available  # noqa: E402
from pulumi_cli import PulumiError  # noqa: E402


def passphrase_for(state: Path) -> str:
    """The passphrase of a kept backend: the user's, else one written beside the state (mode 600)."""
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        return os.environ["PULUMI_CONFIG_PASSPHRASE"]
    path = state / "passphrase"
    if path.exists():
        return path.read_text().strip()
    state.mkdir(parents=True, exist_ok=True)
    phrase = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(phrase + "\n")
    return phrase


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tests/lab/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, help="keep the stack's file backend in this directory")
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    reason = lab_available()
    if reason:
        print(f"lab: cannot run: {reason}", file=sys.stderr)
        return 2
    started = time.monotonic()
    state = args.state.resolve() if args.state else None
    try:
        with LabCluster(args.config, log=print_line, state=state, stack=args.config.stem if state else "lab",
                        passphrase=passphrase_for(state) if state else None) as cluster:
            return bring_up(cluster, started)
    except (LabError, ConfigError, PulumiError) as error:
        print(f"lab: cannot run: {error}", file=sys.stderr)
        return 2


def bring_up(cluster: LabCluster, started: float) -> int:
    config = cluster.config(addons=True)
    lab_config, taken = (config, []) if cluster.lab.real else without_addons(config)
    notes = []
    if taken:
        preview = cluster.preview(config)
        if preview.returncode != 0:
            print(f"lab: pulumi preview of the config with its add-ons failed: {preview.error}", file=sys.stderr)
            print(f"lab: FAILED: preview with add-ons, in {time.monotonic() - started:.0f} s")
            return 1
        notes.append(f"add-ons previewed ({preview_count(preview)} steps), brought up without them: {', '.join(taken)}")
    result = cluster.up(lab_config)
    problems = cluster.problems(lab_config)
    if result.error:
        print(f"lab: pulumi up failed: {result.error}", file=sys.stderr)
    for problem in problems:
        print(f"lab: {problem}", file=sys.stderr)
    if cluster.state:
        notes.append(f"state kept in {cluster.state} (stack {cluster.stack_name})")
    names = [node["name"] for node in config["nodes"]]
    as_configured = [name for name in names if not any(p.startswith(f"{name}: ") for p in problems)]
    seconds = time.monotonic() - started
    failed = bool(result.error or problems)
    version = target_version(config)
    if cluster.lab.real and not result.error:
        applied = addons_applied(config)
        if applied:
            notes.insert(0, f"add-ons applied by the real kubernetes provider: {', '.join(applied)}")
        notes.insert(0, cluster.real_versions())
    print(f"lab: {'FAILED' if failed else 'OK'}: {len(as_configured)}/{len(names)} nodes as configured at "
          f"v{version}, pulumi up ran {len(result.ran())} commands, in {seconds:.0f} s"
          + "".join(f"; {note}" for note in notes))
    return 1 if failed else 0


def addons_applied(config: dict) -> list[str]:
    """The add-ons CONFIG asks for, in words."""
    spec = parse_spec(config)
    return ([f"flannel {spec.cni.version}"] if spec.cni.type == "flannel" else []) \
        + ([f"{spec.ingress.controller} chart {spec.ingress.chart_version}"] if spec.ingress.controller != "none" else []) \
        + [f"Helm release {r.name} ({r.chart} {r.version})" for r in spec.helm_releases]


def preview_count(preview) -> int:
    digest = preview.preview or {}
    return len(digest.get("steps") or [])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
