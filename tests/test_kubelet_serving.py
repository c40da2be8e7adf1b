"""The kubelet serving-certificate approver (kubelet-serving-approve.sh) in bash, against a kubectl double.

The kubelet cannot run here, so the CSRs are made with openssl as the kubelet makes them
(pkg/kubelet/certificate/kubelet.go newGetTemplateFn@v1.36.4: subject O=system:nodes,
CN=system:node:NAME — Go's pkix.Name puts O before CN — and the node's addresses as DNS names and IP
addresses; an ECDSA P-256 key, client-go util/certificate/certificate_manager.go@v0.36.2) and held
as the API returns them (k8s.io/api certificates/v1 types.go@v0.36.2: spec.request is the PEM in
base64, spec.username the authenticated requester, status.conditions of type Approved or Denied).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, parse_spec
from components.kubeadm_config import init_configuration
from components.kubelet_serving import approver_script
from harness import base_config, run_program

SERVING = "kubernetes.io/kubelet-serving"

# The double answers the one query the approver makes, printing what kubectl's jsonpath printer prints
# for it, and records approve/deny as the API server would set the condition.
KUBECTL_DOUBLE = r'''#!/usr/bin/env python3
import json, os, sys
QUERY = ('jsonpath={range .items[*]}{.metadata.name}{" "}{.spec.signerName}{" "}{.spec.username}{" "}'
         '{.spec.request}{" "}{.status.conditions[*].type}{"\\n"}{end}')
state = os.environ["CSR_STATE"]
csrs = json.load(open(state))
args = [a for a in sys.argv[1:] if a not in ("--kubeconfig", "/etc/kubernetes/admin.conf")]
if args == ["get", "csr", "-o", QUERY]:
    for c in csrs:
        kinds = " ".join(x["type"] for x in c.get("status", {}).get("conditions", []))
        print(f'{c["metadata"]["name"]} {c["spec"]["signerName"]} {c["spec"]["username"]} {c["spec"]["request"]} {kinds}')
elif args[:2] == ["certificate", "approve"] or args[:2] == ["certificate", "deny"]:
    kind = "Approved" if args[1] == "approve" else "Denied"
    for c in csrs:
        if c["metadata"]["name"] == args[2]:
            c.setdefault("status", {}).setdefault("conditions", []).append({"type": kind})
            print(f"certificatesigningrequest.certificates.k8s.io/{args[2]} {kind.lower()}")
    json.dump(csrs, open(state, "w"))
else:
    sys.exit(f"kubectl double: unexpected {args}")
'''


def kubelet_request(tmp_path: Path, cn: str, sans: str, organization: str = "system:nodes") -> str:
    key = tmp_path / "key.pem"
    pem = subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-subj", f"/O={organization}/CN={cn}", "-addext", f"subjectAltName={sans}"],
        capture_output=True, check=True).stdout
    return base64.b64encode(pem).decode()


def csr(name: str, user: str, request: str, signer: str = SERVING, conditions: tuple[str, ...] = ()) -> dict:
    return {"metadata": {"name": name},
            "spec": {"signerName": signer, "username": user, "groups": ["system:nodes", "system:authenticated"],
                     "request": request, "usages": ["digital signature", "server auth"]},
            "status": {"conditions": [{"type": t} for t in conditions]} if conditions else {}}


@pytest.fixture
def approve(tmp_path):
    """Runs the approver for the base config (w1 at 10.0.0.21, ...) over `csrs`; returns their conditions."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(KUBECTL_DOUBLE)
    (bin_dir / "kubectl").chmod(0o755)
    spec = parse_spec({k: v for k, v in base_config().items() if k != "sshPrivateKey"}, "dev")
    script = tmp_path / "approve.sh"
    script.write_text(approver_script(spec))
    state = tmp_path / "csrs.json"

    def run(csrs: list[dict]) -> tuple[dict[str, list[str]], str]:
        state.write_text(json.dumps(csrs))
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CSR_STATE": str(state)}
        result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        after = json.loads(state.read_text())
        return ({c["metadata"]["name"]: [x["type"] for x in c.get("status", {}).get("conditions", [])] for c in after},
                result.stderr)

    return run


def test_the_kubelets_own_request_is_approved(approve, tmp_path):
    conditions, _ = approve([csr("csr-a", "system:node:w1", kubelet_request(tmp_path, "system:node:w1",
                                                                           "DNS:w1,IP:10.0.0.21"))])
    assert conditions == {"csr-a": ["Approved"]}


def test_an_address_of_another_node_is_denied(approve, tmp_path):
    conditions, log = approve([csr("csr-a", "system:node:w1", kubelet_request(tmp_path, "system:node:w1",
                                                                             "DNS:w1,IP:10.0.0.21,IP:10.0.0.11"))])
    assert conditions == {"csr-a": ["Denied"]}
    assert "it asks for IP Address:10.0.0.11" in log


def test_another_nodes_name_is_denied(approve, tmp_path):
    conditions, _ = approve([csr("csr-a", "system:node:w1", kubelet_request(tmp_path, "system:node:w1",
                                                                           "DNS:w1,DNS:cp1,IP:10.0.0.21"))])
    assert conditions == {"csr-a": ["Denied"]}


def test_a_subject_naming_another_node_than_the_requester_is_denied(approve, tmp_path):
    conditions, log = approve([csr("csr-a", "system:node:w1", kubelet_request(tmp_path, "system:node:cp1",
                                                                             "DNS:w1,IP:10.0.0.21"))])
    assert conditions == {"csr-a": ["Denied"]}
    assert "not CN=system:node:w1,O=system:nodes" in log


def test_a_requester_outside_the_config_is_left_pending(approve, tmp_path):
    conditions, log = approve([csr("csr-a", "system:node:w9", kubelet_request(tmp_path, "system:node:w9",
                                                                             "DNS:w9,IP:10.0.0.29"))])
    assert conditions == {"csr-a": []}
    assert "not a node of this cluster's config: left pending" in log


def test_other_signers_and_decided_requests_are_left_alone(approve, tmp_path):
    request = kubelet_request(tmp_path, "system:node:w1", "DNS:w1,IP:10.0.0.21")
    conditions, _ = approve([csr("client", "system:node:w1", request, signer="kubernetes.io/kube-apiserver-client-kubelet"),
                             csr("denied", "system:node:w1", request, conditions=("Denied",))])
    assert conditions == {"client": [], "denied": ["Denied"]}


def test_a_second_run_changes_nothing(approve, tmp_path):
    request = kubelet_request(tmp_path, "system:node:w1", "DNS:w1,IP:10.0.0.21")
    first, _ = approve([csr("csr-a", "system:node:w1", request)])
    again, _ = approve([csr("csr-a", "system:node:w1", request, conditions=tuple(first["csr-a"]))])
    assert again == {"csr-a": ["Approved"]}


def kubeadm_documents(**overrides) -> dict:
    spec = parse_spec({k: v for k, v in base_config(**overrides).items() if k != "sshPrivateKey"}, "dev")
    return {d["kind"]: d for d in yaml.safe_load_all(init_configuration(spec))}


def test_kubelets_request_serving_certificates_the_api_server_verifies():
    documents = kubeadm_documents()
    assert documents["KubeletConfiguration"]["serverTLSBootstrap"] is True
    assert {"name": "kubelet-certificate-authority", "value": "/etc/kubernetes/pki/ca.crt"} in \
        documents["ClusterConfiguration"]["apiServer"]["extraArgs"]


def test_the_approver_runs_on_the_first_control_plane_after_init():
    run = run_program(base_config())
    approver = run.named("kubelet-serving-approver")
    assert approver.host == "10.0.0.11"
    assert run.depends_on("kubelet-serving-approver", "cp1-init")
    assert "w2 10.0.0.22" in approver.plain("create") and approver.plain("update") == approver.plain("create")


def test_opting_out_keeps_self_signed_unverified_serving_certificates():
    documents = kubeadm_documents(security={"kubeletServingCertificates": False})
    assert documents["KubeletConfiguration"]["serverTLSBootstrap"] is False
    assert not [a for a in documents["ClusterConfiguration"]["apiServer"]["extraArgs"]
                if a["name"] == "kubelet-certificate-authority"]
    assert "kubelet-serving-approver" not in run_program(base_config(security={"kubeletServingCertificates": False})).names()


def test_a_non_boolean_setting_is_rejected_naming_the_key():
    with pytest.raises(ConfigError, match=r"security\.kubeletServingCertificates"):
        parse_spec({k: v for k, v in base_config(security={"kubeletServingCertificates": "yes"}).items()
                    if k != "sshPrivateKey"}, "dev")
