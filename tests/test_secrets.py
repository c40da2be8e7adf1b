"""SPEC §4 secrets: stdin only, secret outputs, nothing in plaintext anywhere the engine records."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from components.kubeadm_config import join_configuration
from components.config import parse_spec
from harness import (ADMIN_TOKEN, CERTIFICATE_KEY, KEEPALIVED_AUTH_PASS, SECRET_PLAINTEXTS, SECRET_SIG, TOKEN,
                     base_config, run_program)

TOPOLOGIES = {
    "stacked-external-lb": base_config(),
    "kube-vip": base_config(controlPlane={"endpoint": "10.0.0.100:6443",
                                          "loadBalancer": {"type": "kube-vip", "vip": "10.0.0.100"}}),
    "haproxy-keepalived": base_config(controlPlane={"endpoint": "10.0.0.100:8443",
                                                    "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}},
                                      keepalivedAuthPass=KEEPALIVED_AUTH_PASS),
    "external-etcd": base_config(etcd={"topology": "external"}, nodes=base_config()["nodes"] + [
        {"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)]),
}


def plaintext_leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in `value` that is not inside a secret wrapper, with its path."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return
        for key, item in value.items():
            yield from plaintext_leaves(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from plaintext_leaves(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def run(request):
    return run_program(TOPOLOGIES[request.param])


def test_no_secret_plaintext_in_any_recorded_input_or_output(run):
    leaks = []
    for resource in run.resources:
        secret_outputs = set(resource.additional_secret_outputs)
        recorded = {"inputs": resource.inputs,
                    "outputs": {k: v for k, v in resource.outputs.items() if k not in secret_outputs}}
        for path, text in plaintext_leaves(recorded):
            leaks += [f"{resource.name}{path}: {what}" for what, secret in SECRET_PLAINTEXTS.items() if secret in text]
    assert leaks == []


def test_no_secret_in_plain_stack_outputs(run):
    for key, value in run.outputs.items():
        if key in run.secret_outputs:
            continue
        for _, text in plaintext_leaves(value):
            assert not any(secret in text for secret in SECRET_PLAINTEXTS.values()), key


def test_kubeconfig_output_is_secret(run):
    assert "kubeconfig" in run.secret_outputs
    assert ADMIN_TOKEN in run.outputs["kubeconfig"]


def test_commands_printing_secrets_mark_stdout_secret_and_do_not_stream_it(run):
    for name in ("join-material", "certificate-upload", "kubeconfig") + (("etcd-ca",) if "etcd-ca" in run.names() else ()):
        command = run.named(name)
        assert {"stdout", "stderr"} <= set(command.additional_secret_outputs), name
        assert command.plain("logging") == "stderr", name


def test_join_configuration_travels_through_secret_stdin(run):
    for node in ("cp2", "cp3", "w1", "w2"):
        join = run.named(f"{node}-join")
        assert join.is_secret("stdin")
        assert TOKEN in join.plain("stdin")
        assert TOKEN not in join.plain("create")


def test_control_plane_joins_carry_the_certificate_key_workers_do_not(run):
    assert CERTIFICATE_KEY in run.named("cp2-join").plain("stdin")
    assert CERTIFICATE_KEY not in run.named("w1-join").plain("stdin")


def test_no_remote_environment_and_no_previous_output_in_env(run):
    for command in run.commands:
        assert not command.plain("environment"), command.name
        assert command.plain("addPreviousOutputInEnv") is False, command.name


def test_ssh_key_is_only_in_the_secret_connection(run):
    for command in run.commands:
        assert command.is_secret("connection")
        assert "BEGIN OPENSSH PRIVATE KEY" in command.plain("connection")["privateKey"]


def test_join_configuration_is_a_v1beta4_document_with_the_material():
    spec = parse_spec(base_config())
    node = spec.nodes[1]
    text = join_configuration(spec, node, {"token": TOKEN, "caCertHash": "sha256:x", "certificateKey": "k"})
    import yaml

    document = yaml.safe_load(text)
    assert document["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert document["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "k8s-api.internal:6443", "token": TOKEN, "caCertHashes": ["sha256:x"]}
    assert document["controlPlane"]["certificateKey"] == "k"


def test_a_step_document_error_names_what_is_missing_but_not_the_values():
    from components.join_material import JOIN_MATERIAL_KEYS
    from components.remote import last_json_document

    with pytest.raises(ValueError) as raised:
        last_json_document(f'{{"token": "{TOKEN}"}}', JOIN_MATERIAL_KEYS, "join-material")
    assert "lacks caCertHash" in str(raised.value)
    assert TOKEN not in str(raised.value)
    with pytest.raises(ValueError, match="did not print its JSON document"):
        last_json_document(f"token {TOKEN} and no JSON", JOIN_MATERIAL_KEYS, "join-material")


CHART_PASSWORD = "s3cret-chart-passw0rd"
SECRET_RELEASE = {"name": "app", "chart": "app", "repo": "https://charts.example/", "version": "1.0.0",
                  "values": {"auth": {"password": CHART_PASSWORD}}}


def test_helm_values_set_as_a_secret_stay_secret():
    run = run_program(base_config(helmReleases=[SECRET_RELEASE]), secret_keys=("helmReleases",))
    release = run.named("app")
    assert release.is_secret("values") and release.plain("values")["auth"]["password"] == CHART_PASSWORD
    for resource in run.resources:
        assert not [p for p, text in plaintext_leaves(resource.inputs) if CHART_PASSWORD in text], resource.name


def test_ingress_values_set_as_a_secret_stay_secret():
    config = base_config(ingress={"controller": "traefik", "values": {"token": CHART_PASSWORD}})
    release = run_program(config, secret_keys=("ingress",)).named("traefik")
    assert release.is_secret("values") and release.plain("values")["token"] == CHART_PASSWORD


def test_plain_helm_values_are_not_made_secret():
    assert not run_program(base_config(helmReleases=[SECRET_RELEASE])).named("app").is_secret("values")


def test_a_rejected_value_of_a_secret_key_is_not_echoed():
    bad = dict(SECRET_RELEASE, values=CHART_PASSWORD)  # not a mapping
    with pytest.raises(Exception) as error:
        run_program(base_config(helmReleases=[bad]), secret_keys=("helmReleases",))
    assert "helmReleases[0].values: [secret] is not valid" in str(error.value)
    assert CHART_PASSWORD not in str(error.value)


def test_a_mistyped_key_is_rejected_without_its_value():
    config = base_config(sshPrivatekey="-----BEGIN OPENSSH PRIVATE KEY-----typo")
    with pytest.raises(Exception) as error:
        run_program(config, secret_keys=("sshPrivatekey",))
    assert "sshPrivatekey: unknown key (did you mean sshPrivateKey?)" in str(error.value)
    assert "typo" not in str(error.value)
