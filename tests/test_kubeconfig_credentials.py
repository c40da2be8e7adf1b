"""The exported credentials (components/kubeconfig.py): revocable ServiceAccount tokens, not admin.conf."""

from __future__ import annotations

import pytest
import yaml

from components.config import ConfigError, parse_spec
from components.kubeconfig import credentials
from harness import ADMIN_TOKEN, CA_DATA, base_config, plan, run_program
from test_secrets import plaintext_leaves

SCOPED = [{"name": "ci", "namespaces": ["apps", "apps-staging"], "role": "edit"},
          {"name": "dashboards", "namespaces": ["monitoring"], "role": "view"}]


def documents(run, kind: str) -> list[dict]:
    create = run.named("kubeconfig").plain("create")
    manifest = create.split("MANIFEST=", 1)[1].split("\nNAMESPACE=", 1)[0].strip("'")
    return [d for d in yaml.safe_load_all(manifest) if d and d["kind"] == kind]


def admin_id(**config) -> str:
    return credentials(parse_spec(base_config(**config)))[0].id


def test_the_kubeconfig_output_is_a_service_account_token_not_admin_conf():
    kubeconfig = yaml.safe_load(run_program(base_config()).outputs["kubeconfig"])
    assert kubeconfig["users"] == [{"name": admin_id(), "user": {"token": ADMIN_TOKEN}}]
    assert kubeconfig["clusters"][0]["cluster"] == {"certificate-authority-data": CA_DATA,
                                                    "server": "https://k8s-api.internal:6443"}


def test_the_admin_credential_is_bound_to_cluster_admin_through_its_own_service_account():
    run = run_program(base_config())
    subject = {"kind": "ServiceAccount", "name": admin_id(), "namespace": "kubeadm-cluster"}
    [binding] = documents(run, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "cluster-admin" and binding["subjects"] == [subject]
    [secret] = documents(run, "Secret")
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": admin_id()}
    assert "data" not in secret  # the token controller issues the token; nothing secret in the script


def test_the_service_account_comes_before_its_token_secret():
    """The token controller deletes a token Secret whose ServiceAccount it cannot find."""
    create = run_program(base_config()).named("kubeconfig").plain("create")
    assert create.index("kind: ServiceAccount") < create.index("kind: Secret")


def test_a_new_revision_replaces_the_credential_step_and_nothing_on_the_nodes():
    before, after = run_program(base_config()), run_program(base_config(kubeconfig={"revision": "2"}))
    result = plan(before, after)
    assert result.replaced == {"kubeconfig"}
    assert result.updated == {"addons-kubernetes"}  # the add-ons' provider takes the new token
    assert admin_id(kubeconfig={"revision": "2"}) != admin_id()
    assert f"CREDENTIAL_IDS={admin_id(kubeconfig={'revision': '2'})}\n" in after.named("kubeconfig").plain("create")


def test_a_certificate_renewal_rotates_the_credential():
    assert admin_id(certificates={"renew": "2026-11-25"}) != admin_id()


def test_a_replaced_credential_step_has_no_delete_that_could_remove_the_new_credential():
    """pulumi-command creates the replacement before deleting the old resource; the script itself removes
    every credential the config no longer names."""
    assert run_program(base_config()).named("kubeconfig").plain("delete") is None


def test_scoped_credentials_are_secret_outputs_bound_in_their_namespaces_only():
    run = run_program(base_config(kubeconfig={"scoped": SCOPED}))
    assert "scopedKubeconfigs" in run.secret_outputs
    ci = yaml.safe_load(run.outputs["scopedKubeconfigs"]["ci"])
    assert ci["users"][0]["user"] == {"token": "scoped-token-ci"}
    assert ci["contexts"][0]["context"]["namespace"] == "apps"
    bindings = {(b["metadata"]["namespace"], b["roleRef"]["name"], b["subjects"][0]["name"].split("-")[0])
                for b in documents(run, "RoleBinding")}
    assert bindings == {("apps", "edit", "ci"), ("apps-staging", "edit", "ci"), ("monitoring", "view", "dashboards")}
    assert len(documents(run, "ClusterRoleBinding")) == 1  # the admin credential's only
    assert {n["metadata"]["name"] for n in documents(run, "Namespace")} == {
        "kubeadm-cluster", "apps", "apps-staging", "monitoring"}


def test_no_scoped_token_in_plaintext_in_any_recorded_input_or_output():
    run = run_program(base_config(kubeconfig={"scoped": SCOPED}))
    leaks = []
    for resource in run.resources:
        recorded = {"inputs": resource.inputs, "outputs": {k: v for k, v in resource.outputs.items()
                                                           if k not in resource.additional_secret_outputs}}
        leaks += [f"{resource.name}{path}" for path, text in plaintext_leaves(recorded) if "scoped-token-" in text]
    plain_outputs = {k: v for k, v in run.outputs.items() if k not in run.secret_outputs}
    leaks += [f"stack output{path}" for path, text in plaintext_leaves(plain_outputs) if "scoped-token-" in text]
    assert leaks == []


def test_without_scoped_credentials_the_output_is_empty():
    assert run_program(base_config()).outputs["scopedKubeconfigs"] == {}


def test_one_scoped_revision_rotates_that_credential_only():
    before = credentials(parse_spec(base_config(kubeconfig={"scoped": SCOPED})))
    changed = [dict(SCOPED[0], revision="2"), SCOPED[1]]
    after = credentials(parse_spec(base_config(kubeconfig={"scoped": changed})))
    assert [a.id == b.id for a, b in zip(before, after)] == [True, False, True]


def test_changing_a_scoped_credentials_namespaces_issues_a_new_one():
    before = credentials(parse_spec(base_config(kubeconfig={"scoped": SCOPED})))
    changed = [dict(SCOPED[0], namespaces=["apps"]), SCOPED[1]]
    after = credentials(parse_spec(base_config(kubeconfig={"scoped": changed})))
    assert before[1].id != after[1].id


@pytest.mark.parametrize("scoped, problem", [
    ([{"name": "ci", "namespaces": ["kube-system"]}], "kubeconfig.scoped[0].namespaces[0]: 'kube-system' is not valid"),
    ([{"name": "ci", "namespaces": ["kubeadm-cluster"]}],
     "kubeconfig.scoped[0].namespaces[0]: 'kubeadm-cluster' is not valid"),
    ([{"name": "admin", "namespaces": ["apps"]}], "kubeconfig.scoped[0].name: 'admin' is not valid"),
    ([{"name": "ci", "namespaces": ["apps"]}, {"name": "ci", "namespaces": ["web"]}],
     "kubeconfig.scoped[1].name: 'ci' is not valid; names must be unique (also kubeconfig.scoped[0])"),
    ([{"name": "ci"}], "kubeconfig.scoped[0].namespaces: is required"),
    ([{"name": "ci", "namespaces": ["apps"], "role": "cluster-admin"}],
     "kubeconfig.scoped[0].role: 'cluster-admin' is not valid; allowed: view, edit, admin"),
    ([{"name": "ci", "namespaces": ["apps"], "roles": "edit"}], "kubeconfig.scoped[0].roles: unknown key (did you mean role?)"),
])
def test_invalid_scoped_credentials_are_refused_naming_the_key(scoped, problem):
    with pytest.raises(ConfigError) as error:
        parse_spec(base_config(kubeconfig={"scoped": scoped}))
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems
