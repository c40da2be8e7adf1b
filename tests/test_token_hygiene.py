"""Issue 14, token hygiene: short-lived join credentials, certificates uploaded only for joining control
planes, and everything deleted once the joins of a set are done (kubeadm v1.36.4)."""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import CERTIFICATE_KEY, TOKEN, base_config, inner_script, plan, run_program, script_param

JOINERS = ("cp2", "cp3", "w1", "w2")


@pytest.fixture(scope="module")
def run():
    return run_program(base_config())


def workers_only() -> dict:
    config = base_config()
    config["nodes"] = [n for n in config["nodes"] if n["name"] not in ("cp2", "cp3")]
    config["controlPlane"] = {}
    return config


# --- the graph -------------------------------------------------------------------------------------------

def test_the_cleanup_runs_on_the_first_control_plane_after_every_join_of_the_set(run):
    assert run.named("join-cleanup").host == run.named("cp1-init").host
    [component] = [r for r in run.resources if r.typ == "kubeadm-cluster:index:JoinCleanup"]
    waits_for = {run.named(f"{node}-join").urn for node in JOINERS}
    waits_for |= {run.named("join-material").urn, run.named("certificate-upload").urn}
    assert waits_for <= component.dependencies  # its own depends_on, not through something else


def test_the_cleanup_is_replaced_with_the_join_material_and_so_runs_when_it_is_reminted(run):
    assert run.named("join-cleanup").plain("triggers") == run.named("join-material").plain("triggers")
    grown = copy.deepcopy(base_config())
    grown["nodes"].append({"name": "w3", "address": "10.0.0.23", "roles": ["worker"]})
    assert {"join-material", "join-cleanup"} <= plan(run, run_program(grown)).replaced


def uploads_certificates(command) -> bool:
    script = command.plain("create") or ""
    return "kubeadm init phase upload-certs" in script or "--upload-certs" in script


def test_adding_only_a_worker_uploads_no_certificates(run):
    grown = copy.deepcopy(base_config())
    grown["nodes"].append({"name": "w3", "address": "10.0.0.23", "roles": ["worker"]})
    after = run_program(grown)
    runs = plan(run, after).touched
    assert runs and not [c.name for c in after.commands if c.name in runs and uploads_certificates(c)]


def test_a_cluster_whose_joiners_are_all_workers_never_uploads_certificates():
    run = run_program(workers_only())
    assert not [c.name for c in run.commands if uploads_certificates(c)]
    for node in ("w1", "w2"):
        assert CERTIFICATE_KEY not in run.named(f"{node}-join").plain("stdin")


def test_control_plane_joins_wait_for_the_upload_and_only_they_get_its_key(run):
    assert run.depends_on("cp2-join", "certificate-upload")
    assert CERTIFICATE_KEY in run.named("cp2-join").plain("stdin")
    assert TOKEN in run.named("w1-join").plain("stdin")
    assert CERTIFICATE_KEY not in run.named("w1-join").plain("stdin")


# --- lifetimes -------------------------------------------------------------------------------------------

def test_init_makes_one_short_lived_described_token_and_uploads_no_certificates(run):
    script = inner_script(run.named("cp1-init").plain("create"))
    init = next(d for d in yaml.safe_load_all(script_param(script, "KUBEADM_CONFIG"))
                if d["kind"] == "InitConfiguration")
    assert init["bootstrapTokens"] == [{"description": "kubeadm-cluster init, unused, deleted after the joins",
                                        "ttl": "10m0s"}]
    assert "--upload-certs" not in script


def test_the_join_token_lives_as_long_as_the_uploaded_certificates(run):
    assert script_param(inner_script(run.named("join-material").plain("create")), "TOKEN_TTL") == "2h0m0s"


def test_a_failed_join_tells_the_user_the_materials_real_lifetime(run):
    """The token lives 2 h (TOKEN_TTL above), not kubeadm's default 24 h: the advice must say so."""
    script = inner_script(run.named("cp2-join").plain("create"))
    [advice] = [line for line in script.splitlines() if "kubeadm join failed" in line]
    assert "older than 2 h" in advice and "24 h" not in advice and "joinMaterialEpoch" in advice


# --- join-cleanup.sh in bash -------------------------------------------------------------------------------

# `kubeadm token list` as v1.36.4 prints it (cmd/kubeadm/app/cmd/token.go formatBootstrapToken; each token
# through its own tabwriter, minwidth 10, padding 3; the header with the first): ours (join, init, kubeadm's
# owner of kubeadm-certs), a token someone made by hand, and one whose description only contains ours.
LISTING = """\
TOKEN                     TTL         EXPIRES                USAGES                   DESCRIPTION                                                EXTRA GROUPS
abcdef.0123456789abcdef   1h          2026-11-25T02:00:00Z   authentication,signing   kubeadm-cluster join material                              system:bootstrappers:kubeadm:default-node-token
ghijkl.0123456789abcdef   9m          2026-11-25T00:10:00Z   authentication,signing   kubeadm-cluster init, unused, deleted after the joins      system:bootstrappers:kubeadm:default-node-token
mnopqr.0123456789abcdef   1h          2026-11-25T02:00:00Z   <none>                   Proxy for managing TTL for the kubeadm-certs secret        <none>
stuvwx.0123456789abcdef   23h         2026-11-26T00:00:00Z   authentication,signing   <none>                                                     system:bootstrappers:kubeadm:default-node-token
yzabcd.0123456789abcdef   23h         2026-11-26T00:00:00Z   authentication,signing   a copy of kubeadm-cluster join material                    system:bootstrappers:kubeadm:default-node-token
"""


def run_cleanup(run, tmp_path: Path, listing: str, list_status: int = 0) -> subprocess.CompletedProcess:
    (tmp_path / "listing").write_text(listing)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {"kubectl": "exit 0",
             "kubeadm": f'if [[ "$1 $2" == "token list" ]]; then cat {tmp_path}/listing; exit {list_status}; fi'}
    for name, body in stubs.items():
        (bin_dir / name).write_text(f'#!/usr/bin/env bash\necho "{name} $*" >>{tmp_path}/calls\n{body}\n')
        (bin_dir / name).chmod(0o755)
    script = inner_script(run.named("join-cleanup").plain("create"))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_cleanup_deletes_our_tokens_and_the_uploaded_certificates_only(run, tmp_path):
    result = run_cleanup(run, tmp_path, LISTING)
    assert result.returncode == 0, result.stderr
    assert [c for c in calls(tmp_path) if "delete" in c] == [
        "kubeadm token delete abcdef ghijkl mnopqr",
        "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system delete secret kubeadm-certs --ignore-not-found"]
    assert "0123456789abcdef" not in result.stdout + result.stderr


def test_cleanup_with_nothing_left_to_delete_succeeds_without_deleting_a_token(run, tmp_path):
    result = run_cleanup(run, tmp_path, "")
    assert result.returncode == 0, result.stderr
    assert not [c for c in calls(tmp_path) if c.startswith("kubeadm token delete")]


def test_cleanup_fails_when_it_cannot_list_the_tokens(run, tmp_path):
    result = run_cleanup(run, tmp_path, "", list_status=1)
    assert result.returncode != 0
    assert not [c for c in calls(tmp_path) if "delete" in c]
