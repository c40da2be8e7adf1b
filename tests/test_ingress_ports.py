"""Issue 11 item 10: haproxy and the ingress controller must not bind the same host port on control
planes that run both (haproxy-keepalived with controlPlane.schedulable: true)."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_spec
from harness import KEEPALIVED_AUTH_PASS, base_config, run_program

# ingress-nginx values.yaml@helm-chart-4.15.1: controller.admissionWebhooks.port; _params.tpl passes it as
# --validating-webhook=:PORT, which in the host network is the node's port.
CHART_DEFAULT_WEBHOOK_PORT = 8443


def config(endpoint_port: int = 8443, schedulable: bool = True, **ingress) -> dict:
    return base_config(
        controlPlane={"endpoint": f"10.0.0.100:{endpoint_port}", "schedulable": schedulable,
                      "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}},
        keepalivedAuthPass=KEEPALIVED_AUTH_PASS, **({"ingress": ingress} if ingress else {}))


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_spec(raw)
    return error.value.problems


def release_values(raw: dict) -> dict:
    release = next(r for r in run_program(raw).resources if r.typ == "kubernetes:helm.sh/v3:Release")
    return release.plain("values")


def test_the_default_webhook_port_is_not_the_default_haproxy_port():
    values = release_values(config())
    webhook = values["controller"].get("admissionWebhooks", {}).get("port", CHART_DEFAULT_WEBHOOK_PORT)
    assert values["controller"]["hostNetwork"] is True
    assert webhook != 8443


def test_the_defaults_with_schedulable_control_planes_are_accepted():
    assert parse_spec(config()).control_plane.endpoint_port == 8443


def test_a_webhook_port_set_to_the_endpoint_port_is_rejected_naming_both_keys():
    found = problems(config(values={"controller": {"admissionWebhooks": {"port": 8443}}}))
    assert len(found) == 1
    assert found[0].startswith("controlPlane.endpoint: '10.0.0.100:8443' is not valid")
    assert "ingress.values.controller.admissionWebhooks.port" in found[0]
    assert "controlPlane.schedulable" in found[0]


def test_an_endpoint_on_the_default_webhook_port_is_rejected():
    found = problems(config(endpoint_port=8444))
    assert "ingress.values.controller.admissionWebhooks.port" in found[0]


@pytest.mark.parametrize("port,source", [(10254, "--healthz-port"), (443, "controller.containerPort.https")])
def test_an_endpoint_on_another_port_ingress_nginx_binds_is_rejected(port, source):
    assert source in problems(config(endpoint_port=port))[0]


def test_traefik_host_ports_count_too():
    assert "ingress.values.ports.websecure.hostPort" in problems(config(endpoint_port=443, controller="traefik"))[0]


def test_without_the_host_network_the_webhook_port_stays_in_the_pod():
    spec = parse_spec(config(hostNetwork=False, values={"controller": {"admissionWebhooks": {"port": 8443}}}))
    assert spec.control_plane.endpoint_port == 8443


def test_control_planes_that_do_not_run_the_ingress_controller_may_share_the_port():
    raw = config(schedulable=False, values={"controller": {"admissionWebhooks": {"port": 8443}}})
    assert parse_spec(raw).control_plane.endpoint_port == 8443
