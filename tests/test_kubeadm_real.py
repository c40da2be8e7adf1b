"""Issue 12 (first piece): every kubeadm configuration the program renders, read by the real kubeadm.

The fixture builds kubeadm v1.36.4 (the default kubernetesVersion) from the Go module proxy, stamped as
the release is (tests/kubernetes_tools.py). The documents come from the functions the phases call
(kubeadm_config.py: init, upload-certs, control-plane and worker joins; etcd.py: the external etcd
members' config, also with the scratch certificatesDir of etcd-member-certs.sh), for the three main
topologies with the security defaults on and images from a mirror. They must pass
`kubeadm config validate` (cmd/kubeadm/app/cmd/config.go@v1.36.4 newCmdConfigValidate →
util/config/common.go ValidateConfig: strict decoding, unknown fields are errors, then the
Init/Cluster/Join validation), `kubeadm config images list` must name the mirror and the etcd
3.6.8-0 the backup and restore code assumes (constants/constants.go@v1.36.4 DefaultEtcdVersion), and
the API server manifest kubeadm writes from our ClusterConfiguration must carry the hardening flags.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.config import ClusterSpec, parse_spec
from components.control_plane_files import (ADMISSION_CONFIG, AUDIT_LOG_DIR, AUDIT_POLICY, CLUSTER_CA,
                                            ENCRYPTION_CONFIG, HARDENING_DIR)
from components.etcd import member_configuration
from components.scripts import COMPONENTS_DIR
from components.kubeadm_config import (UPLOAD_CERTS_VERSION, init_configuration, join_configuration,
                                       upload_certs_configuration)
from harness import base_config
from tests.kubernetes_tools import VERSION, kubernetes_tool

MIRROR = "registry.lab.internal/k8s"
ETCD_IMAGE = f"{MIRROR}/etcd:3.6.8-0"
VIP = "10.0.0.100"
# The shapes join-material.sh checks (token, `sha256:` CA hash, 64 hex certificate key), not real ones.
MATERIAL = {"token": "abcdef.0123456789abcdef", "caCertHash": "sha256:" + "a" * 64, "certificateKey": "b" * 64}
TOPOLOGIES = {
    "stacked-kube-vip": parse_spec(base_config(
        imageRepository=MIRROR,
        controlPlane={"endpoint": f"{VIP}:6443", "loadBalancer": {"type": "kube-vip", "vip": VIP}})),
    "haproxy-keepalived": parse_spec(base_config(
        imageRepository=MIRROR,
        controlPlane={"endpoint": f"{VIP}:8443", "loadBalancer": {"type": "haproxy-keepalived", "vip": VIP}})),
    "external-etcd": parse_spec(base_config(
        imageRepository=MIRROR, etcd={"topology": "external"},
        controlPlane={"endpoint": f"{VIP}:6443", "loadBalancer": {"type": "kube-vip", "vip": VIP}},
        nodes=base_config()["nodes"] + [{"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]}
                                        for i in (1, 2, 3)])),
}


def rendered(spec: ClusterSpec) -> dict[str, str]:
    """Every kubeadm config the phases render for SPEC, by what it is for."""
    documents = {
        "init": init_configuration(spec),
        # certificate-upload.sh fills in the version of the node's kubeadm.
        "upload-certs": upload_certs_configuration(spec).replace(UPLOAD_CERTS_VERSION, VERSION),
        "join-control-plane": join_configuration(spec, spec.control_planes[1], MATERIAL),
        "join-worker": join_configuration(spec, spec.workers[0], MATERIAL),
    }
    for node in spec.etcd_nodes if spec.etcd_topology == "external" else ():
        documents[f"etcd-member-{node.name}"] = member_configuration(spec, node)
        documents[f"etcd-member-certs-{node.name}"] = member_configuration(spec, node, "/tmp/etcd-member-certs")
    return documents


CASES = [(topology, purpose, text) for topology, spec in TOPOLOGIES.items()
         for purpose, text in rendered(spec).items()]


@pytest.fixture(scope="session")
def kubeadm() -> Path:
    """The real kubeadm, built once per version (cold: see tests/kubernetes_tools.py)."""
    return kubernetes_tool("kubeadm")


def run(kubeadm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(kubeadm), *args], capture_output=True, text=True, timeout=120)


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kubeadm.yaml"
    path.write_text(text)
    return path


def test_the_build_is_stamped_with_the_release_version(kubeadm):
    # Unstamped builds say v0.0.0-master, which kubeadm's own version checks refuse.
    assert run(kubeadm, "version", "-o", "short").stdout.strip() == VERSION


@pytest.mark.parametrize("topology,purpose,text", CASES, ids=[f"{t}-{p}" for t, p, _ in CASES])
def test_real_kubeadm_accepts_the_rendered_config(kubeadm, tmp_path, topology, purpose, text):
    result = run(kubeadm, "config", "validate", "--config", str(config_file(tmp_path, text)))
    assert result.returncode == 0, f"kubeadm {VERSION} refuses the {purpose} config of {topology}:\n" \
                                   f"{result.stderr}\n--- config ---\n{text}"


def images(kubeadm: Path, tmp_path: Path, text: str) -> list[str]:
    result = run(kubeadm, "config", "images", "list", "--config", str(config_file(tmp_path, text)))
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_init_images_come_from_the_configured_repository(kubeadm, tmp_path, topology):
    listed = images(kubeadm, tmp_path, init_configuration(TOPOLOGIES[topology]))
    assert listed and [i for i in listed if not i.startswith(f"{MIRROR}/")] == []


def test_stacked_etcd_runs_the_etcd_the_backup_code_assumes(kubeadm, tmp_path):
    assert ETCD_IMAGE in images(kubeadm, tmp_path, init_configuration(TOPOLOGIES["stacked-kube-vip"]))


def test_external_etcd_members_run_the_etcd_the_backup_code_assumes(kubeadm, tmp_path):
    spec = TOPOLOGIES["external-etcd"]
    assert ETCD_IMAGE in images(kubeadm, tmp_path, member_configuration(spec, spec.etcd_nodes[0]))


def test_the_sandbox_image_prepare_configures_is_the_pause_image_of_init(kubeadm, tmp_path):
    """prepare.sh's pause_image (containerd's and CRI-O's sandbox image) with the real kubeadm first on PATH."""
    spec = TOPOLOGIES["stacked-kube-vip"]
    function = re.search(r"^pause_image\(\) \{\n.*?^\}\n", (COMPONENTS_DIR / "prepare.sh").read_text(),
                         re.M | re.S).group(0)
    result = subprocess.run(["bash", "-c", f"set -euo pipefail\n{function}pause_image\n"], capture_output=True,
                            text=True, env={**os.environ, "PATH": f"{kubeadm.parent}:{os.environ['PATH']}",
                                            "K8S_VERSION": spec.kubernetes_version,
                                            "IMAGE_REPOSITORY": spec.image_repository})
    assert result.returncode == 0, result.stderr
    assert [result.stdout.strip()] == [i for i in images(kubeadm, tmp_path, init_configuration(spec))
                                       if i.startswith(f"{MIRROR}/pause:")]


needs_root_namespaces = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                           reason="needs root and unshare for a private mount namespace")


def static_pod(kubeadm: Path, work: Path, phase: str, config: str, manifest: str) -> dict:
    """The static pod `kubeadm init phase PHASE` writes into /etc/kubernetes/manifests/MANIFEST from CONFIG;
    /etc is an overlay on a tmpfs in a private mount namespace, so the host's /etc is untouched."""
    script = (f"mount -t tmpfs tmpfs {work} && mkdir {work}/upper {work}/work && "
              f"mount -t overlay overlay -o lowerdir=/etc,upperdir={work}/upper,workdir={work}/work /etc && "
              f"{kubeadm} init phase {phase} --config /dev/stdin >&2 && cat /etc/kubernetes/manifests/{manifest}")
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", script],
                            input=config, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def api_server_manifest(kubeadm, tmp_path_factory) -> dict:
    return static_pod(kubeadm, tmp_path_factory.mktemp("apiserver"), "control-plane apiserver",
                      init_configuration(TOPOLOGIES["stacked-kube-vip"]), "kube-apiserver.yaml")


@pytest.fixture(scope="module")
def etcd_member_command(kubeadm, tmp_path_factory) -> list[str]:
    """etcd-member.sh's `kubeadm init phase etcd local` on the first external etcd host."""
    spec = TOPOLOGIES["external-etcd"]
    return static_pod(kubeadm, tmp_path_factory.mktemp("etcd"), "etcd local",
                      member_configuration(spec, spec.etcd_nodes[0]), "etcd.yaml")["spec"]["containers"][0]["command"]


@needs_root_namespaces
@pytest.mark.parametrize("flag", [
    "--profiling=false", f"--admission-control-config-file={ADMISSION_CONFIG}", f"--audit-policy-file={AUDIT_POLICY}",
    f"--encryption-provider-config={ENCRYPTION_CONFIG}", f"--kubelet-certificate-authority={CLUSTER_CA}"])
def test_api_server_manifest_carries_the_hardening_flag(api_server_manifest, flag):
    assert flag in api_server_manifest["spec"]["containers"][0]["command"]


@needs_root_namespaces
@pytest.mark.parametrize("directory", [HARDENING_DIR, AUDIT_LOG_DIR])
def test_api_server_manifest_mounts_the_hardening_directory(api_server_manifest, directory):
    mounts = {m["mountPath"] for m in api_server_manifest["spec"]["containers"][0]["volumeMounts"]}
    host_paths = {v["hostPath"]["path"] for v in api_server_manifest["spec"]["volumes"] if "hostPath" in v}
    assert directory in mounts and directory in host_paths


@needs_root_namespaces
@pytest.mark.parametrize("name", ["initial-cluster", "initial-cluster-state", "name", "listen-peer-urls",
                                  "listen-client-urls", "advertise-client-urls", "initial-advertise-peer-urls"])
def test_external_etcd_manifest_takes_our_member_flag_once(etcd_member_command, name):
    """Our extraArgs replace kubeadm's default of the same name rather than adding a second flag
    (phases/etcd/local.go → util/arguments.go ArgumentsToCommand@v1.36.4); kubeadm's own default of
    listen-client-urls also has https://127.0.0.1:2379, which no script uses on an external etcd host."""
    spec = TOPOLOGIES["external-etcd"]
    ours = yaml.safe_load_all(member_configuration(spec, spec.etcd_nodes[0]))
    value = {a["name"]: a["value"] for d in ours if d["kind"] == "ClusterConfiguration"
             for a in d["etcd"]["local"]["extraArgs"]}[name]
    assert [f for f in etcd_member_command if f.startswith(f"--{name}=")] == [f"--{name}={value}"]


@pytest.mark.parametrize("cert,file", [("etcd-server", "server.crt"), ("etcd-peer", "peer.crt")])
def test_member_certificates_signed_on_the_first_member_name_the_member(kubeadm, tmp_path, cert, file):
    """etcd-member-certs.sh: the first member signs another member's certificates from that member's config
    with a scratch certificatesDir; they must be valid for the member's address, not the signer's."""
    spec = TOPOLOGIES["external-etcd"]
    member = spec.etcd_nodes[1]
    config = config_file(tmp_path, member_configuration(spec, member, str(tmp_path / "pki")))
    for phase in ("etcd-ca", cert):
        result = run(kubeadm, "init", "phase", "certs", phase, "--config", str(config))
        assert result.returncode == 0, result.stderr
    certificate = tmp_path / "pki" / "etcd" / file
    names = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(certificate)],
                           capture_output=True, text=True, check=True).stdout
    signer = spec.etcd_nodes[0]
    assert f"IP Address:{member.internal_address}" in names and f"IP Address:{signer.internal_address}" not in names


# `kubeadm SUBCOMMAND... FLAGS` as the scripts run it (a line's command, `$(`, `if !` or `then`), up to the
# first argument that is not a literal subcommand; messages inside log/die strings do not match.
INVOCATION = re.compile(r"(?:^\s*|\$\(|if !\s+|then\s+)kubeadm((?: [a-z][\w-]*)+)([^|>;)]*)", re.M)
INVOCATIONS = sorted({(path.name, m.group(1).strip(), tuple(re.findall(r"(?<=\s)(--?[a-z][\w-]*)", m.group(2))))
                      for path in COMPONENTS_DIR.glob("*.sh") for m in INVOCATION.finditer(path.read_text())})


def help_text(kubeadm: Path, command: list[str]) -> str:
    result = run(kubeadm, *command, "--help")
    assert result.returncode == 0, f"kubeadm {VERSION} has no command 'kubeadm {' '.join(command)}':\n{result.stderr}"
    return result.stdout


def test_the_scripts_run_kubeadm():
    assert len(INVOCATIONS) > 10 and ("init.sh", "init", ("--config", "--skip-token-print")) in INVOCATIONS


@pytest.mark.parametrize("script,command,flags", INVOCATIONS, ids=[f"{s}:{c}" for s, c, _ in INVOCATIONS])
def test_real_kubeadm_has_the_command_and_flags_the_scripts_use(kubeadm, script, command, flags):
    """Where the script names the next word with a variable (`certs renew "$cert"`) and the command is a
    group, every subcommand of the group must take the flags."""
    text = help_text(kubeadm, command.split())
    group = re.search(r"^Available Commands:\n((?:  .*\n)+)", text, re.M)
    variable = re.search(rf"kubeadm {command} \"\$", (COMPONENTS_DIR / script).read_text())
    leaves = ([command.split() + [line.split()[0]] for line in group.group(1).splitlines()]
              if group and variable else [command.split()])
    for leaf in leaves:
        text = help_text(kubeadm, leaf)
        missing = [f for f in flags if not re.search(rf"(^|[\s,]){re.escape(f)}[\s,=]", text, re.M)]
        assert missing == [], f"{script}: kubeadm {VERSION} '{' '.join(leaf)}' has no {missing}"
