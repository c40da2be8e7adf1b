"""Pulumi.dev.yaml, the example users copy, stays a valid stack config."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.config import PROJECT, parse_spec

ROOT = Path(__file__).resolve().parent.parent


def test_dev_stack_is_valid_and_is_three_control_planes_and_two_workers():
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    raw = {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith(f"{PROJECT}:")}
    spec = parse_spec(raw, stack="dev", has_private_key=True)
    assert len(spec.control_planes) == 3 and len(spec.workers) == 2
    assert spec.control_plane.load_balancer.type == "kube-vip"


def test_project_name_is_the_config_namespace():
    assert yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"] == PROJECT
