"""The GitHub workflows keep the fields the docs promise."""

from __future__ import annotations

from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as true
    return document


def pulumi_step(job: dict) -> dict:
    return next(step for step in job["steps"] if step.get("uses", "").startswith("pulumi/actions@"))


def test_preview_comments_the_diff_on_pull_requests():
    workflow = load("preview.yml")
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"]["pull-requests"] == "write"
    step = pulumi_step(workflow["jobs"]["preview"])
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True and step["with"]["diff"] is True
    assert "PULUMI_CONFIG_PASSPHRASE" in step["env"]
    assert workflow["jobs"]["preview"]["needs"] == "test"
    assert any("bash .ci/run" in step.get("run", "") for step in workflow["jobs"]["test"]["steps"])


def test_up_runs_on_main_one_at_a_time():
    workflow = load("up.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    step = pulumi_step(workflow["jobs"]["up"])
    assert step["with"]["command"] == "up"
    assert step["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
