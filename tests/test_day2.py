"""SPEC §6/§7: what `pulumi up` changes when the config changes (and what it leaves alone)."""

from __future__ import annotations

import copy

from harness import base_config, plan, run_program


def with_worker(config: dict, name: str = "w3", address: str = "10.0.0.23") -> dict:
    config = copy.deepcopy(config)
    config["nodes"].append({"name": name, "address": address, "roles": ["worker"]})
    return config


def test_rerun_with_unchanged_config_changes_nothing():
    result = plan(run_program(base_config()), run_program(base_config()))
    assert result.touched == set()


def test_adding_a_worker_creates_only_its_resources_and_remints_join_material():
    result = plan(run_program(base_config()), run_program(with_worker(base_config())))
    assert result.created == {"w3-prepare", "w3-join", "w3-register", "w3-upgrade-drain", "w3-upgrade",
                              "w3-upgrade-uncordon", "w3-host-key-scan", "w3-host-key"}
    # A new token and its cleanup; no certificate upload: no control plane joins.
    assert result.replaced == {"join-material", "join-cleanup"}
    # The kubelet serving-certificate approver learns the new node's name and address.
    assert result.updated == {"kubelet-serving-approver"}
    assert result.deleted == set()


def test_new_join_material_does_not_rerun_existing_joins():
    before, after = run_program(base_config()), run_program(with_worker(base_config()))
    for node in ("cp2", "cp3", "w1", "w2"):
        assert "stdin" in after.named(f"{node}-join").ignore_changes
    assert plan(before, after).updated == {"kubelet-serving-approver"}


def test_adding_a_control_plane_creates_only_its_resources():
    config = copy.deepcopy(base_config())
    config["nodes"].insert(3, {"name": "cp4", "address": "10.0.0.14", "roles": ["control-plane"]})
    result = plan(run_program(base_config()), run_program(config))
    assert result.created == {"cp4-prepare", "cp4-control-plane-files", "cp4-join", "cp4-register", "cp4-upgrade",
                              "cp4-certs-renew", "cp4-etcd-backup", "cp4-host-key-scan", "cp4-host-key",
                              # the restore steps of a new member exist and run nothing (components/restore.py)
                              *(f"cp4-etcd-restore-{step}" for step in ("check", "stop", "add", "rejoin", "promote",
                                                                        "apiserver"))}
    # The first control plane reads its encryption configuration again for the newcomer.
    assert result.replaced == {"join-material", "certificate-upload", "join-cleanup", "cp1-control-plane-files"}
    assert result.updated == {"kubelet-serving-approver"}


def test_removing_a_worker_runs_only_its_delete_path():
    config = base_config()
    config["nodes"] = [n for n in config["nodes"] if n["name"] != "w2"]
    result = plan(run_program(base_config()), run_program(config))
    assert result.deleted == {"w2-prepare", "w2-join", "w2-register", "w2-upgrade-drain", "w2-upgrade",
                              "w2-upgrade-uncordon", "w2-host-key-scan", "w2-host-key"}
    assert result.replaced == {"join-material", "join-cleanup"}
    assert result.created == set() and result.updated == {"kubelet-serving-approver"}


def test_minor_upgrade_changes_only_the_upgrade_chain_and_expiry():
    before = run_program(base_config())
    after = run_program(base_config(kubernetesVersion="1.37.2"))
    result = plan(before, after)
    assert result.updated == {"upgrade-preflight", "cp1-upgrade", "cp2-upgrade", "cp3-upgrade",
                              "w1-upgrade-drain", "w1-upgrade", "w1-upgrade-uncordon",
                              "w2-upgrade-drain", "w2-upgrade", "w2-upgrade-uncordon", "certificate-expiry"}
    # The exported credentials are tokens, not admin.conf's certificate that `upgrade apply` renews: they stay.
    assert result.replaced == result.created == result.deleted == set()
    assert "1.37.2" in after.named("cp1-upgrade").plain("update")
    assert "K8S_MINOR=1.37\n" in after.named("cp1-upgrade").plain("update")


def test_cri_o_follows_the_kubelet_to_the_new_minor():
    mirror = {"cri-o": "https://mirror.example/cri-o/v{minor}/deb/"}
    after = run_program(base_config(kubernetesVersion="1.37.2", containerRuntime={"type": "cri-o"},
                                    packageRepositories=mirror))
    for name in ("cp2-upgrade", "w1-upgrade"):
        script = after.named(name).plain("update")
        assert "RUNTIME=cri-o\n" in script and "CRIO_REPO_URL=https://mirror.example/cri-o/v1.37/deb/\n" in script
        assert "if [[ $RUNTIME == cri-o ]]; then upgrade_crio; fi" in script


def test_day_two_steps_run_only_on_change_so_a_new_cluster_passes_through_them():
    run = run_program(base_config())
    day_two = [c for c in run.commands if c.name.endswith(("-upgrade", "-upgrade-drain", "-upgrade-uncordon",
                                                               "-certs-renew", "upgrade-preflight"))]
    assert len(day_two) == 1 + 3 + 2 * 3 + 3
    for command in day_two:
        assert command.plain("create") is None and command.plain("update"), command.name


def test_version_change_does_not_rerun_preparation_init_or_joins():
    after = run_program(base_config(kubernetesVersion="1.37.2"))
    for name in ("cp1-prepare", "w1-prepare", "cp1-init", "cp2-join", "w1-join"):
        assert "create" in after.named(name).ignore_changes, name


def test_epoch_change_remints_join_material_only():
    result = plan(run_program(base_config()), run_program(base_config(joinMaterialEpoch="2")))
    assert result.touched == result.replaced == {"join-material", "certificate-upload", "join-cleanup"}


def test_certificate_renewal_reruns_renewals_and_expiry_and_rotates_the_exported_credentials():
    result = plan(run_program(base_config()), run_program(base_config(certificates={"renew": "2026-11-24"})))
    # The add-ons' provider takes the new token; its cluster_identifier keeps that from replacing anything
    # (provider/pkg/provider/provider.go@v4.25.0 DiffConfig).
    assert result.updated == {"cp1-certs-renew", "cp2-certs-renew", "cp3-certs-renew", "certificate-expiry",
                              "addons-kubernetes"}
    assert result.replaced == {"kubeconfig"}


def test_label_change_reruns_only_that_nodes_registration():
    config = base_config()
    config["nodes"][3]["labels"] = {"disk": "hdd"}
    assert plan(run_program(base_config()), run_program(config)).touched == {"w1-register"}


def test_schedulable_control_planes_drop_the_taint_through_registration():
    result = plan(run_program(base_config()), run_program(base_config(
        controlPlane={"endpoint": "k8s-api.internal:6443", "schedulable": True})))
    assert result.touched == {"cp1-register", "cp2-register", "cp3-register"}


def test_address_change_replaces_that_nodes_commands_delete_first():
    config = base_config()
    config["nodes"][4]["address"] = "10.0.0.42"
    after = run_program(config)
    result = plan(run_program(base_config()), after)
    assert {"w2-prepare", "w2-join", "w2-register"} <= result.replaced
    assert after.named("w2-join").delete_before_replace
    assert after.named("w2-register").delete_before_replace
