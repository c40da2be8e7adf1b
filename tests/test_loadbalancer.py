"""Issue 4: the HA endpoint for each load-balancer type."""

from __future__ import annotations

import yaml

from harness import KEEPALIVED_AUTH_PASS, base_config, inner_script, plan, run_program, script_param as param

KUBE_VIP = base_config(controlPlane={"endpoint": "10.0.0.100:6443",
                                     "loadBalancer": {"type": "kube-vip", "vip": "10.0.0.100", "interface": "eth1"}})
HAPROXY = base_config(controlPlane={"endpoint": "10.0.0.100:8443",
                                    "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}},
                      keepalivedAuthPass=KEEPALIVED_AUTH_PASS)


def test_external_load_balancer_runs_nothing_extra():
    names = run_program(base_config()).names()
    assert not any("kube-vip" in n or "haproxy" in n for n in names)


def test_kube_vip_on_the_init_node_goes_in_before_init_with_super_admin_conf():
    run = run_program(KUBE_VIP)
    assert run.depends_on("cp1-init", "cp1-kube-vip-before-kubeadm")
    manifest = yaml.safe_load(param(inner_script(run.named("cp1-kube-vip-before-kubeadm").plain("create")), "MANIFEST"))
    assert manifest["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/super-admin.conf"
    env = {e["name"]: e.get("value") for e in manifest["spec"]["containers"][0]["env"]}
    assert env["address"] == "10.0.0.100" and env["vip_subnet"] == "32"
    assert env["vip_interface"] == "@INTERFACE@"
    assert env["vip_arp"] == "true" and env["vip_leaderelection"] == "true"
    assert manifest["spec"]["containers"][0]["image"].startswith("ghcr.io/kube-vip/kube-vip:v")
    assert param(inner_script(run.named("cp1-kube-vip-before-kubeadm").plain("create")), "VIP_INTERFACE") == "eth1"


def test_kube_vip_switches_to_admin_conf_after_init_and_joins_get_it_after_their_join():
    run = run_program(KUBE_VIP)
    assert run.depends_on("cp1-kube-vip-after-kubeadm", "cp1-init")
    for node in ("cp1", "cp2", "cp3"):
        script = inner_script(run.named(f"{node}-kube-vip-after-kubeadm").plain("create"))
        assert yaml.safe_load(param(script, "MANIFEST"))["spec"]["volumes"][0]["hostPath"]["path"] == \
            "/etc/kubernetes/admin.conf"
    assert run.depends_on("cp2-kube-vip-after-kubeadm", "cp2-join")
    assert not any(n.startswith("cp2-kube-vip-before") for n in run.names())
    assert not any(n.startswith("w1-kube-vip") for n in run.names())


def test_haproxy_keepalived_before_every_control_plane_kubeadm():
    run = run_program(HAPROXY)
    assert run.depends_on("cp1-init", "cp1-haproxy-keepalived-before-kubeadm")
    assert run.depends_on("cp2-join", "cp2-haproxy-keepalived-before-kubeadm")
    assert run.depends_on("cp3-join", "cp3-haproxy-keepalived-before-kubeadm")


def test_haproxy_balances_every_control_plane_on_the_endpoint_port():
    script = inner_script(run_program(HAPROXY).named("cp2-haproxy-keepalived-before-kubeadm").plain("create"))
    config = param(script, "HAPROXY_CFG")
    assert "bind *:8443" in config
    for address in ("10.0.0.11", "10.0.0.12", "10.0.0.13"):
        assert f"{address}:6443 check verify none" in config
    assert "http-check send meth GET uri /healthz" in config


def test_keepalived_first_control_plane_is_master():
    run = run_program(HAPROXY)
    first = param(inner_script(run.named("cp1-haproxy-keepalived-before-kubeadm").plain("create")), "KEEPALIVED_CONF")
    second = param(inner_script(run.named("cp2-haproxy-keepalived-before-kubeadm").plain("create")), "KEEPALIVED_CONF")
    assert "state MASTER" in first and "priority 101" in first
    assert "state BACKUP" in second and "priority 100" in second
    assert "10.0.0.100" in first and "auth_pass @AUTH_PASS@" in first


def test_vrrp_password_goes_through_secret_stdin_only():
    run = run_program(HAPROXY)
    command = run.named("cp1-haproxy-keepalived-before-kubeadm")
    assert command.is_secret("stdin")
    assert command.plain("stdin") == KEEPALIVED_AUTH_PASS
    assert KEEPALIVED_AUTH_PASS not in command.plain("create")


def test_vrrp_password_is_derived_from_the_ssh_key_when_not_configured():
    config = dict(HAPROXY)
    config.pop("keepalivedAuthPass")
    command = run_program(config).named("cp1-haproxy-keepalived-before-kubeadm")
    assert command.is_secret("stdin")
    assert len(command.plain("stdin")) == 8


def test_haproxy_manifest_changes_when_backends_change():
    more = dict(HAPROXY, nodes=HAPROXY["nodes"] + [{"name": "cp4", "address": "10.0.0.14", "roles": ["control-plane"]}])
    before = param(inner_script(run_program(HAPROXY).named("cp1-haproxy-keepalived-before-kubeadm").plain("create")),
                   "HAPROXY_MANIFEST")
    after = param(inner_script(run_program(more).named("cp1-haproxy-keepalived-before-kubeadm").plain("create")),
                  "HAPROXY_MANIFEST")
    assert yaml.safe_load(before)["metadata"]["annotations"] != yaml.safe_load(after)["metadata"]["annotations"]


def test_haproxy_updates_roll_one_control_plane_at_a_time():
    """Issue 11 item 15: adding cp4 changes every haproxy's backends; each node's update waits for the
    previous node's (whose script waits until its restarted haproxy answers)."""
    more = dict(HAPROXY, nodes=HAPROXY["nodes"] + [{"name": "cp4", "address": "10.0.0.14", "roles": ["control-plane"]}])
    before, after = run_program(HAPROXY), run_program(more)
    steps = [f"cp{i}-haproxy-keepalived-before-kubeadm" for i in range(1, 5)]
    assert set(steps[:3]) <= plan(before, after).updated
    for earlier, later in zip(steps, steps[1:]):
        assert after.depends_on(later, earlier), f"{later} does not wait for {earlier}"


def mirrored(config: dict, **images: str) -> dict:
    control_plane = config["controlPlane"]
    return dict(config, controlPlane={**control_plane, "loadBalancer": {**control_plane["loadBalancer"], "images": images}})


def test_kube_vip_runs_the_configured_mirror_image():
    """imageRepository moves only kubeadm's images: an air-gapped site names its copy of kube-vip's."""
    run = run_program(mirrored(KUBE_VIP, kubeVip="mirror.internal:5000/kube-vip/kube-vip:v1.2.3"))
    manifest = yaml.safe_load(param(inner_script(run.named("cp1-kube-vip-before-kubeadm").plain("create")), "MANIFEST"))
    assert manifest["spec"]["containers"][0]["image"] == "mirror.internal:5000/kube-vip/kube-vip:v1.2.3"


def test_haproxy_and_keepalived_run_the_configured_mirror_images():
    run = run_program(mirrored(HAPROXY, haproxy="mirror.internal/haproxy:2.8", keepalived="mirror.internal/keepalived:2"))
    script = inner_script(run.named("cp1-haproxy-keepalived-before-kubeadm").plain("create"))
    images = [yaml.safe_load(param(script, name))["spec"]["containers"][0]["image"]
              for name in ("HAPROXY_MANIFEST", "KEEPALIVED_MANIFEST")]
    assert images == ["mirror.internal/haproxy:2.8", "mirror.internal/keepalived:2"]
