"""The GitHub workflows keep the fields the docs promise."""

from __future__ import annotations

import re
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
    assert workflow["jobs"]["preview"]["permissions"]["pull-requests"] == "write"
    step = preview_step(workflow["jobs"]["preview"])
    assert "PULUMI_CONFIG_PASSPHRASE" in step["env"]
    assert re.search(r"^\s*gh pr comment \"\$PR\" --body-file comment\.md$", step["run"], re.M)
    assert workflow["jobs"]["preview"]["needs"] == "test"
    assert any("bash .ci/run" in step.get("run", "") for step in workflow["jobs"]["test"]["steps"])


def preview_step(job: dict) -> dict:
    return next(step for step in job["steps"] if "pulumi preview" in step.get("run", ""))


def test_pr_preview_shows_every_script_in_full():
    # Without --show-full-output the CLI cuts each string to 3 lines (pkg/backend/display/object_diff.go@v3.274.1).
    command = next(line for line in preview_step(load("preview.yml")["jobs"]["preview"])["run"].splitlines()
                   if line.startswith("pulumi preview"))
    assert {"--diff", "--show-full-output"} <= set(command.split())


def test_pr_preview_installs_the_cli_the_toolchain_pins():
    versions = (WORKFLOWS.parent.parent / "toolchain" / "versions").read_text()
    pinned = re.search(r"^PULUMI_CLI=v(\S+)$", versions, re.M).group(1)
    step = pulumi_step(load("preview.yml")["jobs"]["preview"])
    assert "command" not in step["with"] and step["with"]["pulumi-version"] == pinned


def up_step(job: dict) -> dict:
    return next(step for step in job["steps"] if "pulumi up" in step.get("run", ""))


def test_up_runs_on_main_one_at_a_time():
    workflow = load("up.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    step = up_step(workflow["jobs"]["up"])
    assert step["run"].split()[:4] == ["pulumi", "up", "--stack", "dev"]
    assert step["env"]["PULUMI_BACKEND_URL"] == "${{ secrets.PULUMI_BACKEND_URL }}"


def test_up_log_shows_every_script_in_full():
    # The action's own `up` takes `diff: true` only, which the CLI cuts to 3 lines a string.
    workflow = load("up.yml")
    assert {"--diff", "--show-full-output"} <= set(up_step(workflow["jobs"]["up"])["run"].split())
    assert "command" not in pulumi_step(workflow["jobs"]["up"])["with"]


def secret_references(job: dict) -> set[str]:
    return set(re.findall(r"secrets\.([A-Z_]+)", yaml.safe_dump(job))) - {"GITHUB_TOKEN"}


def test_preview_reads_the_passphrase_only_in_the_protected_environment():
    workflow = load("preview.yml")
    assert workflow["jobs"]["preview"]["environment"] == "preview"
    assert secret_references(workflow["jobs"]["test"]) == set()
    assert "pull-requests" not in workflow["permissions"]


def test_preview_skips_pull_requests_from_forks():
    condition = load("preview.yml")["jobs"]["preview"]["if"]
    assert condition == "github.event.pull_request.head.repo.full_name == github.repository"


def test_no_workflow_runs_untrusted_code_with_the_base_repository_secrets():
    for name in ("preview.yml", "up.yml"):
        assert "pull_request_target" not in load(name)["on"], name


def test_up_waits_for_the_production_environment_approval():
    job = load("up.yml")["jobs"]["up"]
    assert job["environment"] == "production"
    assert secret_references(job) == {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"}


def test_ci_docs_name_the_environments_and_their_reviewers():
    docs = (WORKFLOWS.parent.parent / "docs" / "ci.md").read_text()
    assert "| `preview` |" in docs and "| `production` |" in docs
    assert docs.count("**required reviewers**") == 2


def test_pr_preview_skips_the_per_step_snapshot_but_up_does_not():
    # The CLI serializes the whole deployment after each step even in a preview (bench/README.md).
    assert preview_step(load("preview.yml")["jobs"]["preview"])["env"]["PULUMI_SKIP_CHECKPOINTS"] == "true"
    assert "PULUMI_SKIP_CHECKPOINTS" not in yaml.safe_dump(load("up.yml"))
