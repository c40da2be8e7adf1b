"""kubeconfig.sh run for real with bash against a kubectl test double.

The double answers as kubectl does for the calls the script makes: `apply -f -` prints one line per object,
`get secret … -o jsonpath={.data.token}` prints the Secret's base64 token — empty until the token
controller has issued it (pkg/controller/serviceaccount/tokens_controller.go@v1.36.4) —, `auth can-i --quiet`
answers only with its exit status (kubectl pkg/cmd/auth/cani.go@v0.36.4), here "no" until the RBAC authorizer
has caught up, and `delete … -l` prints what it deleted.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

from components.config import parse_spec
from components.kubeconfig import CREDENTIAL_LABEL, credentials, grants, manifest
from components.scripts import render
from harness import base_config

SPEC = parse_spec(base_config(kubeconfig={"scoped": [{"name": "ci", "namespaces": ["apps"]}]}))
IDS = [c.id for c in credentials(SPEC)]


def run_script(tmp_path: Path, issued_after: int, authorized_after: int = 1) -> subprocess.CompletedProcess:
    """kubeconfig.sh with a kubectl whose token Secrets hold a token from the `issued_after`-th read on, and
    whose API server authorizes each credential from the `authorized_after`-th question about it on."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nlab\n-----END CERTIFICATE-----\n")
    (bin_dir / "kubectl").write_text(f"""#!/usr/bin/env bash
printf '%s\\n' "$*" >>{tmp_path}/calls
case " $* " in
  *" --raw=/readyz "*) echo ok ;;
  *" apply -f - "*) cat >{tmp_path}/applied; echo "serviceaccount/x created" ;;
  *" get secret "*)
    reads=$(( $(cat {tmp_path}/reads 2>/dev/null || echo 0) + 1 )); echo "$reads" >{tmp_path}/reads
    secret=$(tr ' ' '\\n' <<<"$*" | grep -- '-token$')
    if (( reads >= {issued_after} )); then printf '%s' "$(printf 'token-of-%s' "${{secret%-token}}" | base64 -w0)"; fi ;;
  *" auth can-i --quiet "*)
    asked={tmp_path}/asked-$(tr ' ' '\\n' <<<"$*" | grep '^system:serviceaccount:' | tr : _)
    asks=$(( $(cat "$asked" 2>/dev/null || echo 0) + 1 )); echo "$asks" >"$asked"
    (( asks >= {authorized_after} )) ;;
  *" delete "*) echo 'serviceaccount "old" deleted' ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac
""")
    (bin_dir / "sleep").write_text("#!/bin/sh\n")
    for tool in ("kubectl", "sleep"):
        (bin_dir / tool).chmod(0o755)
    script = render("kubeconfig.sh", {"MANIFEST": manifest(SPEC), "CREDENTIAL_IDS": "\n".join(IDS),
                                      "GRANTS": grants(SPEC), "NAMESPACE": "kubeadm-cluster", "LABEL": CREDENTIAL_LABEL,
                                      "CA_CERT": str(tmp_path / "ca.crt")})
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_the_rendered_manifest_is_applied_with_the_nodes_admin_conf(tmp_path):
    assert run_script(tmp_path, 1).returncode == 0
    assert (tmp_path / "applied").read_text().strip() == manifest(SPEC).strip()
    assert "--kubeconfig /etc/kubernetes/admin.conf apply -f -" in calls(tmp_path)


def test_old_credentials_are_deleted_only_after_every_new_token_is_issued(tmp_path):
    assert run_script(tmp_path, 3).returncode == 0
    made = calls(tmp_path)
    delete = next(i for i, call in enumerate(made) if " delete " in call)
    reads = [i for i, call in enumerate(made) if " get secret " in call]
    assert len(reads) > len(IDS) and max(reads) < delete
    assert made[delete] == ("--kubeconfig /etc/kubernetes/admin.conf delete clusterrolebindings,rolebindings,secrets,"
                            f"serviceaccounts --all-namespaces -l {CREDENTIAL_LABEL},{CREDENTIAL_LABEL} notin "
                            f"({','.join(IDS)})")


def test_prints_the_ca_and_each_token_as_one_json_document(tmp_path):
    result = run_script(tmp_path, 1)
    assert result.stdout.count("\n") == 1
    document = json.loads(result.stdout)
    assert base64.b64decode(document["ca"]) == (tmp_path / "ca.crt").read_bytes()
    assert {i: base64.b64decode(t).decode() for i, t in document["tokens"].items()} == {
        i: f"token-of-{i}" for i in IDS}
    assert "token-of-" not in result.stderr


def test_a_token_never_issued_fails_naming_it_and_revokes_nothing(tmp_path):
    result = run_script(tmp_path, 1000)
    assert result.returncode == 1
    assert f"the token of credential {IDS[0]} was not issued within a minute" in result.stderr
    assert not any(" delete " in call for call in calls(tmp_path))
    assert result.stdout == ""


def test_old_credentials_are_deleted_only_once_the_api_server_authorizes_each_new_one_where_it_is_bound(tmp_path):
    assert run_script(tmp_path, 1, authorized_after=3).returncode == 0
    made = calls(tmp_path)
    delete = next(i for i, call in enumerate(made) if " delete " in call)
    asked = [call.split(" auth can-i --quiet ", 1)[1] for call in made[:delete] if " auth can-i " in call]
    assert asked == [f"get configmaps -n {namespace} --as system:serviceaccount:kubeadm-cluster:{id}"
                     for id, namespace in ((IDS[0], "kubeadm-cluster"), (IDS[1], "apps")) for _ in range(3)]


def test_a_credential_never_authorized_fails_naming_it_and_revokes_nothing(tmp_path):
    result = run_script(tmp_path, 1, authorized_after=1000)
    assert result.returncode == 1
    assert (f"the API server did not authorize credential {IDS[0]} in namespace kubeadm-cluster within a minute"
            in result.stderr)
    assert not any(" delete " in call for call in calls(tmp_path))
    assert result.stdout == ""
