"""Issue 14: the control plane is hardened by default, each measure with its opt-out (README "Security").

kube-bench needs a real control plane, which the lab does not run yet: these tests check the rendered
configuration (flags, mounted files, file modes, kernel settings) instead.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, parse_spec
from components.control_plane_files import ADMISSION_CONFIG, AUDIT_POLICY, ENCRYPTION_CONFIG, audit_policy
from components.kubeadm_config import init_configuration
from components.scripts import render
from harness import ENCRYPTION_KEY, base_config, inner_script, run_program, script_param

API_SERVER_FILE_FLAGS = {"admission-control-config-file": ADMISSION_CONFIG, "audit-policy-file": AUDIT_POLICY,
                         "encryption-provider-config": ENCRYPTION_CONFIG}


def spec(**security):
    config = base_config(security=security) if security else base_config()
    return parse_spec(config)


def documents(**security) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(init_configuration(spec(**security)))}


def args(component: dict) -> dict[str, str]:
    return {a["name"]: a["value"] for a in component.get("extraArgs", [])}


# -- profiling ------------------------------------------------------------------------------------

def test_profiling_is_off_in_every_control_plane_component():
    cluster = documents()["ClusterConfiguration"]
    for component in ("apiServer", "controllerManager", "scheduler"):
        assert args(cluster[component])["profiling"] == "false", component


def test_profiling_opt_out():
    cluster = documents(profiling=True)["ClusterConfiguration"]
    assert not any("profiling" in args(cluster[c]) for c in ("apiServer", "controllerManager", "scheduler"))


# -- flags and the files they read ------------------------------------------------------------------

def test_api_server_reads_the_hardening_files_by_default():
    api_server = args(documents()["ClusterConfiguration"]["apiServer"])
    assert {flag: api_server.get(flag) for flag in API_SERVER_FILE_FLAGS} == API_SERVER_FILE_FLAGS


@pytest.mark.parametrize("setting, flags", [
    ({"podSecurity": "privileged"}, {"admission-control-config-file"}),
    ({"auditLog": False}, {"audit-policy-file", "audit-log-path", "audit-log-maxage", "audit-log-maxbackup",
                           "audit-log-maxsize"}),
    ({"encryptionAtRest": False}, {"encryption-provider-config"}),
])
def test_each_opt_out_drops_only_its_flags(setting, flags):
    default = args(documents()["ClusterConfiguration"]["apiServer"])
    opted_out = args(documents(**setting)["ClusterConfiguration"]["apiServer"])
    assert set(default) - set(opted_out) == flags


def test_every_file_flag_is_visible_in_the_static_pod():
    api_server = documents()["ClusterConfiguration"]["apiServer"]
    for path in API_SERVER_FILE_FLAGS.values():
        mount = [v for v in api_server["extraVolumes"] if path.startswith(v["mountPath"] + "/")]
        assert mount and mount[0]["hostPath"] == mount[0]["mountPath"] and mount[0]["readOnly"] is True, path


def test_audit_log_is_rotated_on_a_writable_host_path():
    api_server = documents()["ClusterConfiguration"]["apiServer"]
    flags = args(api_server)
    assert flags["audit-log-path"] == "/var/log/kubernetes/audit/audit.log"
    assert (flags["audit-log-maxage"], flags["audit-log-maxbackup"], flags["audit-log-maxsize"]) == ("30", "10", "100")
    log_volume = next(v for v in api_server["extraVolumes"] if v["mountPath"] == "/var/log/kubernetes/audit")
    assert log_volume["readOnly"] is False and log_volume["hostPath"] == "/var/log/kubernetes/audit"


def test_no_hardening_volume_when_every_file_flag_is_off():
    cluster = documents(podSecurity="privileged", auditLog=False, encryptionAtRest=False)["ClusterConfiguration"]
    assert cluster["apiServer"]["extraVolumes"] == []


# -- Pod Security admission ---------------------------------------------------------------------------

def admission_defaults(config: dict) -> tuple[dict, dict]:
    run = run_program(config)
    script = inner_script(run.named("cp1-control-plane-files").plain("create"))
    plugin = yaml.safe_load(script_param(script, "ADMISSION_CONFIG"))["plugins"][0]
    assert plugin["name"] == "PodSecurity"
    return plugin["configuration"]["defaults"], plugin["configuration"]["exemptions"]


def test_pod_security_enforces_baseline_and_warns_and_audits_restricted():
    defaults, exemptions = admission_defaults(base_config())
    assert (defaults["enforce"], defaults["warn"], defaults["audit"]) == ("baseline", "restricted", "restricted")
    assert exemptions["namespaces"] == ["kube-system"]


def test_pod_security_level_is_configurable():
    defaults, _ = admission_defaults(base_config(security={"podSecurity": "restricted"}))
    assert defaults["enforce"] == "restricted"


def test_add_on_namespaces_that_need_host_access_are_labelled_privileged():
    run = run_program(base_config(ingress={"controller": "traefik"}))
    namespaces = {r.plain("metadata")["name"]: r.plain("metadata").get("labels", {})
                  for r in run.resources if r.typ == "kubernetes:core/v1:Namespace"}
    for name in ("kube-flannel", "traefik"):
        assert namespaces[name]["pod-security.kubernetes.io/enforce"] == "privileged", name


# -- audit policy -------------------------------------------------------------------------------------

def audit_level(policy: dict, verb: str, group: str, resource: str, user: str = "alice") -> str:
    """The level of the first rule that matches a resource request (audit.k8s.io/v1 semantics)."""
    for rule in policy["rules"]:
        if "nonResourceURLs" in rule or ("verbs" in rule and verb not in rule["verbs"]):
            continue
        if "users" in rule and user not in rule["users"] or "userGroups" in rule:
            continue
        if "resources" in rule and not any(r["group"] == group and resource in r["resources"]
                                           for r in rule["resources"]):
            continue
        return rule["level"]
    raise AssertionError("no rule matched")


def test_audit_policy_never_logs_secret_bodies():
    policy = yaml.safe_load(audit_policy())
    for verb in ("create", "update", "patch", "get", "delete"):
        assert audit_level(policy, verb, "", "secrets") == "Metadata", verb
        assert audit_level(policy, verb, "", "configmaps") == "Metadata", verb
    assert audit_level(policy, "create", "authentication.k8s.io", "tokenreviews") == "Metadata"
    assert not any(rule["level"] == "RequestResponse" for rule in policy["rules"])


def test_audit_policy_logs_writes_with_their_request():
    policy = yaml.safe_load(audit_policy())
    assert audit_level(policy, "create", "apps", "deployments") == "Request"
    assert audit_level(policy, "get", "", "pods") == "Metadata"
    assert audit_level(policy, "watch", "", "pods") == "None"


# -- encryption at rest ----------------------------------------------------------------------------------

def test_control_plane_files_go_in_before_each_init_and_join():
    run = run_program(base_config())
    for node, kubeadm in (("cp1", "cp1-init"), ("cp2", "cp2-join"), ("cp3", "cp3-join")):
        assert run.depends_on(kubeadm, f"{node}-control-plane-files")
        assert run.depends_on(f"{node}-control-plane-files", f"{node}-prepare")
    assert "w1-control-plane-files" not in run.names()


def test_encryption_configuration_leaves_the_first_control_plane_only_as_a_secret():
    run = run_program(base_config())
    first = run.named("cp1-control-plane-files")
    assert {"stdout", "stderr"} <= set(first.additional_secret_outputs)
    assert first.plain("logging") == "stderr"
    for node in ("cp2", "cp3"):
        step = run.named(f"{node}-control-plane-files")
        assert run.depends_on(f"{node}-control-plane-files", "cp1-control-plane-files")
        assert step.is_secret("stdin") and ENCRYPTION_KEY in step.plain("stdin")


# -- the script on a machine (in a private mount namespace, so this machine's /etc stays untouched) ------

needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare for a private /etc")


def run_in_private_etc(scripts: list[tuple[str, str]], after: str = "") -> subprocess.CompletedProcess:
    """Run each (script, stdin) in a private mount namespace, with /etc/kubernetes/ and /var/log/kubernetes/
    redirected to a fresh tmpfs at $W (stdout of script i in $W/out<i>), then the shell lines `after`."""
    with tempfile.TemporaryDirectory() as work:
        body = f"set -e\nW={work}\nmount -t tmpfs tmpfs $W\nmkdir $W/etc $W/log\n"
        for i, (script, stdin) in enumerate(scripts):
            script = script.replace("/etc/kubernetes/", f"{work}/etc/").replace("/var/log/kubernetes/", f"{work}/log/")
            body += f"cat <<'SCRIPT{i}' >$W/s{i}\n{script}SCRIPT{i}\n"
            body += f"printf %s {_quote(stdin)} | bash $W/s{i} >$W/out{i}\n"
        body += after
        return subprocess.run(["unshare", "--mount", "--fork", "bash", "-c", body], capture_output=True, text=True)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def files_script(first: bool) -> str:
    return render("control-plane-files.sh", {"FIRST": first, "ADMISSION_CONFIG": "a: 1\n", "AUDIT_POLICY": "b: 2\n"})


@needs_root
def test_first_control_plane_makes_one_key_keeps_it_and_prints_it_last():
    result = run_in_private_etc([(files_script(True), ""), (files_script(True), "")], after=(
        "cmp $W/out0 $W/out1\ncmp $W/out0 $W/etc/hardening/encryption.yaml\ncat $W/out0\n"))
    assert result.returncode == 0, result.stderr
    configuration = yaml.safe_load(result.stdout)
    providers = configuration["resources"][0]["providers"]
    assert configuration["resources"][0]["resources"] == ["secrets"]
    assert list(providers[0]) == ["secretbox"] and providers[-1] == {"identity": {}}
    assert len(base64.b64decode(providers[0]["secretbox"]["keys"][0]["secret"])) == 32
    assert configuration["apiVersion"] == "apiserver.config.k8s.io/v1"


@needs_root
def test_other_control_planes_write_the_configuration_from_stdin_privately():
    configuration = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\n"
    result = run_in_private_etc([(files_script(False), configuration)], after=(
        "cat $W/etc/hardening/encryption.yaml\n"
        "cd $W && stat -c '%n %a' etc/hardening etc/hardening/* log/audit\n"
        "test ! -s $W/out0\n"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(configuration)
    modes = dict(line.split() for line in result.stdout.splitlines() if line.startswith(("etc/", "log/")))
    assert modes == {"etc/hardening": "700", "etc/hardening/admission.yaml": "600",
                     "etc/hardening/audit-policy.yaml": "600", "etc/hardening/encryption.yaml": "600",
                     "log/audit": "700"}


@needs_root
def test_other_control_planes_refuse_a_stdin_without_an_encryption_configuration():
    result = run_in_private_etc([(files_script(False), "")])
    assert result.returncode != 0 and "no encryption configuration on stdin" in result.stderr


# -- protectKernelDefaults -------------------------------------------------------------------------------

# kubelet pkg/kubelet/cm/container_manager_linux.go setupKernelTunables, values from
# k8s.io/component-helpers/node/util/sysctl (read at kubernetes commit 001332b).
KUBELET_KERNEL_TUNABLES = {"vm.overcommit_memory": "1", "vm.panic_on_oom": "0", "kernel.panic": "10",
                           "kernel.panic_on_oops": "1", "kernel.keys.root_maxkeys": "1000000",
                           "kernel.keys.root_maxbytes": "25000000"}


def test_kubelet_protects_kernel_defaults_by_default():
    assert documents()["KubeletConfiguration"]["protectKernelDefaults"] is True
    assert documents(protectKernelDefaults=False)["KubeletConfiguration"]["protectKernelDefaults"] is False


def test_preparation_sets_the_kernel_settings_the_kubelet_requires():
    script = inner_script(run_program(base_config()).named("w1-prepare").plain("create"))
    settings = dict(re.findall(r"'([a-z_.]+) = (\d+)'", script))
    assert {key: settings.get(key) for key in KUBELET_KERNEL_TUNABLES} == KUBELET_KERNEL_TUNABLES


# -- package repositories ---------------------------------------------------------------------------------

def test_plain_http_mirrors_are_refused_naming_the_key():
    with pytest.raises(ConfigError) as error:
        parse_spec(base_config(packageRepositories={"containerd": "http://mirror.example/containerd/"}))
    assert error.value.problems == [
        "packageRepositories.containerd: 'http://mirror.example/containerd/' is not valid; expected an https:// "
        "URL: the repository key is fetched from this mirror; set packageRepositories.allowInsecureHttp: true "
        "to accept plain http"]


def test_plain_http_mirrors_are_accepted_when_allowed():
    repositories = {"containerd": "http://mirror.example/containerd/", "allowInsecureHttp": True}
    assert parse_spec(base_config(packageRepositories=repositories)).package_repositories == {
        "containerd": "http://mirror.example/containerd/"}


# -- validation --------------------------------------------------------------------------------------------

def test_security_settings_are_validated_all_at_once():
    with pytest.raises(ConfigError) as error:
        parse_spec(base_config(security={"podSecurity": "none", "auditLog": "yes", "profiling": 1,
                                         "encryptionAtRest": "off", "protectKernelDefaults": [], "tls": True}))
    assert [p.split(":")[0] for p in error.value.problems] == [
        "security.tls", "security.profiling", "security.podSecurity", "security.auditLog",
        "security.encryptionAtRest", "security.protectKernelDefaults"]
    assert "allowed: baseline, restricted, privileged" in error.value.problems[2]


# -- the lab ---------------------------------------------------------------------------------------------

def test_lab_host_start_script_parses():
    """The lab's per-host start script (with its private kernel settings) is valid sh, quotes included."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "lab"))
    from hosts import HOST_START

    script = HOST_START.format(root="/tmp/root", journal="/tmp/journal", name="cp1")
    assert subprocess.run(["sh", "-n", "-c", script], capture_output=True).returncode == 0
    assert "mount --bind $copy /proc/sys/$key" in script
