"""Issue 14 against the real kube-apiserver: the exported kubeconfigs work, a new kubeconfig.revision
revokes the old ones, and a scoped kubeconfig is refused outside its namespaces.

The control plane is real (tests/real_control_plane.py: kubeadm v1.36.4's files, etcd v3.6.8,
kube-apiserver and kube-controller-manager v1.36.4, whose token controller issues the tokens). On it the
program's rendered `kubeconfig` step (components/kubeconfig.sh) runs with the real kubectl, and the
kubeconfigs are what the program makes of its output (components/kubeconfig.py kubeconfigs). They are
used with the real kubectl; a revoked token is refused by kube-apiserver's authentication (401:
pkg/serviceaccount/legacy.go@v1.36.4 legacyValidator.Validate, --service-account-lookup on by default).
"""

from __future__ import annotations

import os
import shlex
import shutil

import pytest

from components.kubeconfig import kubeconfigs
from real_control_plane import ControlPlane, real_control_plane, spec_of, stack_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"),
                                reason="needs root, ip and nsenter for a private host")


def config(revision: str) -> dict:
    return stack_config(kubeconfig={"revision": revision,
                                    "scoped": [{"name": "ci", "namespaces": ["apps"], "role": "edit"}]})


def issue(control_plane: ControlPlane, revision: str) -> dict[str, str]:
    """Runs the rendered kubeconfig step of REVISION; the kubeconfigs the program makes of its output."""
    script = control_plane.render(config(revision))["kubeconfig"]
    return kubeconfigs(spec_of(config(revision)), control_plane.sh(script, timeout=180))


def kubectl_with(control_plane: ControlPlane, kubeconfig: str, *args: str):
    """The real kubectl on the control plane with KUBECONFIG (on stdin, in a private temporary file)."""
    script = f'f=$(mktemp); trap \'rm -f "$f"\' EXIT; cat >"$f"; kubectl --kubeconfig "$f" {shlex.join(args)}'
    return control_plane.run(script, stdin=kubeconfig, timeout=60)


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    with real_control_plane(config("1"), tmp_path_factory.mktemp("revocation"), prefix="kcrevoke") as running:
        yield running


@pytest.fixture(scope="module")
def first(control_plane) -> dict[str, str]:
    return issue(control_plane, "1")


@pytest.fixture(scope="module")
def second(control_plane, first) -> dict[str, str]:
    """Revision 2, issued after every test that uses revision 1's credentials while they are valid. Right
    before, both old tokens authenticate once more, so that the API server has them in its cache of
    successful token authentications (10 s: pkg/kubeapiserver/options/authentication.go@v1.36.4
    TokenSuccessCacheTTL), as a consumer's busy kubeconfig would."""
    for kubeconfig in first.values():
        assert kubectl_with(control_plane, kubeconfig, "get", "--raw", "/api").returncode == 0
    return issue(control_plane, "2")


def test_the_admin_kubeconfig_is_cluster_admin(control_plane, first):
    assert kubectl_with(control_plane, first["admin"], "get", "namespaces", "-o", "name").stdout.split() \
        == ["namespace/apps", "namespace/default", "namespace/kube-node-lease", "namespace/kube-public",
            "namespace/kube-system", "namespace/kubeadm-cluster"]
    assert kubectl_with(control_plane, first["admin"], "get", "nodes").returncode == 0
    assert kubectl_with(control_plane, first["admin"], "auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_the_scoped_kubeconfig_edits_its_namespace(control_plane, first):
    assert kubectl_with(control_plane, first["ci"], "auth", "can-i", "create", "deployments").stdout.strip() == "yes"
    created = kubectl_with(control_plane, first["ci"], "create", "configmap", "probe", "--from-literal=a=b")
    assert created.returncode == 0, created.stderr
    assert "configmap/probe" in created.stdout


@pytest.mark.parametrize("args", [("get", "pods", "-n", "default"), ("get", "secrets", "-n", "kube-system"),
                                  ("get", "nodes"), ("create", "namespace", "elsewhere")],
                         ids=["pods-in-default", "secrets-in-kube-system", "nodes", "a-namespace"])
def test_the_scoped_kubeconfig_is_forbidden_outside_its_namespaces(control_plane, first, args):
    result = kubectl_with(control_plane, first["ci"], *args)
    assert result.returncode != 0 and "Error from server (Forbidden)" in result.stderr, result.stderr


def test_a_new_revision_issues_working_credentials(control_plane, second):
    assert kubectl_with(control_plane, second["admin"], "auth", "can-i", "*", "*").stdout.strip() == "yes"
    assert kubectl_with(control_plane, second["ci"], "get", "configmap", "probe").returncode == 0


@pytest.mark.parametrize("name", ["admin", "ci"])
def test_the_old_token_is_refused_once_the_step_has_run(control_plane, first, second, name):
    result = kubectl_with(control_plane, first[name], "get", "--raw", "/api")
    assert result.returncode != 0 and "Unauthorized" in result.stderr, result.stderr
    assert kubectl_with(control_plane, second[name], "get", "--raw", "/api").returncode == 0


def test_the_nodes_admin_conf_is_untouched_by_the_revocation(control_plane, second):
    assert control_plane.kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"
