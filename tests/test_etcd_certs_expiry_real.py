"""etcd-certs-expiry.sh with the real kubeadm v1.36.4 on an external etcd member's certificates (the real lab found
it: on every member but the first, which alone keeps the etcd CA key, `kubeadm certs check-expiration` refused with
"Error checking external CA condition for etcd/ca certificate authority: failure loading key for
apiserver-etcd-client", so the first `up` of an external-etcd stack failed). A member's report without the CA key
must be what kubeadm reports for the same certificates with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.config import parse_spec
from components.etcd import etcd_expiry, member_configuration
from harness import base_config, inner_script, run_program
from tests.kubernetes_tools import kubernetes_tool

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("openssl"),
                                reason="needs root and unshare for a private mount namespace, and openssl")

CONFIG = base_config(etcd={"topology": "external"},
                     nodes=base_config()["nodes"] + [{"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]}
                                                     for i in (1, 2, 3)])
MEMBER = "etcd2"


def reports(tmp_path: Path) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """The rendered etcd-certs-expiry.sh of MEMBER, run on the member's certificates made by the real kubeadm (in a
    private mount namespace, /etc an overlay on a tmpfs), first with the etcd CA key, then without it."""
    spec = parse_spec(CONFIG)
    member = next(n for n in spec.etcd_nodes if n.name == MEMBER)
    step = next(c for c in run_program(CONFIG).commands if c.name == f"{MEMBER}-etcd-certs-expiry")
    (tmp_path / "expiry.sh").write_text(inner_script(step.plain("create")))
    (tmp_path / "etcd.yaml").write_text(member_configuration(spec, member))
    kubeadm = kubernetes_tool("kubeadm")
    work = tmp_path / "etc"
    work.mkdir()
    config = "/etc/kubernetes/kubeadm-cluster/etcd.yaml"
    script = f"""set -euo pipefail
mount -t tmpfs tmpfs {work} && mkdir {work}/upper {work}/work
mount -t overlay overlay -o lowerdir=/etc,upperdir={work}/upper,workdir={work}/work /etc
install -D -m 0600 {tmp_path}/etcd.yaml {config}
for phase in etcd-ca etcd-server etcd-peer etcd-healthcheck-client; do
  {kubeadm} init phase certs "$phase" --config {config} >/dev/null
done
export PATH={kubeadm.parent}:$PATH
bash {tmp_path}/expiry.sh > {tmp_path}/with-key.json 2>{tmp_path}/with-key.err || echo "with the key: exit $?" >&2
rm /etc/kubernetes/pki/etcd/ca.key  # as on every member but the first (etcd-member.sh)
bash {tmp_path}/expiry.sh > {tmp_path}/without-key.json 2>{tmp_path}/without-key.err || echo "without: exit $?" >&2
"""
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", script],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return tuple(subprocess.CompletedProcess([], 1 if f"{which}" in done.stderr else 0,
                                             (tmp_path / f"{name}.json").read_text(), (tmp_path / f"{name}.err").read_text())
                 for which, name in (("with the key", "with-key"), ("without", "without-key")))


@pytest.fixture(scope="module")
def expiry(tmp_path_factory):
    return reports(tmp_path_factory.mktemp("etcd-certs-expiry"))


def test_a_member_without_the_etcd_ca_key_reports_its_certificates(expiry):
    _, without = expiry
    assert without.returncode == 0, without.stderr
    assert {e["name"] for e in etcd_expiry(without.stdout, MEMBER, False)} == {
        f"{name} ({MEMBER})" for name in ("etcd-server", "etcd-peer", "etcd-healthcheck-client")}


def test_the_report_without_the_key_is_what_kubeadm_reports_with_it(expiry):
    with_key, without = expiry
    assert with_key.returncode == 0, with_key.stderr
    json.loads(with_key.stdout)  # kubeadm's own JSON
    def entries(report: str) -> list[dict[str, str]]:
        return sorted(etcd_expiry(report, MEMBER, False), key=lambda e: e["name"])
    assert entries(without.stdout) == entries(with_key.stdout)
