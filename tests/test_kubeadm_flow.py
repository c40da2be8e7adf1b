"""Issue 11: the kubeadm flow read against upstream (kubernetes v1.36.4): what each script hands kubeadm."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import base_config, inner_script, plan, run_program, script_param

EXTERNAL = base_config(etcd={"topology": "external"}, nodes=base_config()["nodes"] + [
    {"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)])


@pytest.fixture(scope="module")
def external():
    return run_program(EXTERNAL)


@pytest.fixture(scope="module")
def stacked():
    return run_program(base_config())


def run_with_stubs(script: str, tmp_path: Path, stubs: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    """Runs a rendered script with the named commands replaced by bash stubs (each logs its argv)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in stubs.items():
        stub = bin_dir / name
        stub.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >>{tmp_path}/calls\n{body}\n')
        stub.chmod(0o755)
    return subprocess.run(["bash", "-c", script], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_DIR": str(tmp_path)})


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


# --- item 2: upload-certs gets the cluster's etcd topology -------------------------------------------

JOIN_MATERIAL_STUBS = {
    "kubectl": "exit 0",
    "openssl": "cat >/dev/null; echo pubkey",  # reads its stdin, as in the pipe
    "kubeadm": """case "$1 $2" in
  "version -o") echo v1.37.1 ;;
  "token create") echo abcdef.0123456789abcdef ;;
  "init phase")
    while [[ $# -gt 0 ]]; do if [[ $1 == --config ]]; then cp "$2" "$STUB_DIR/upload-certs.yaml"; fi; shift; done
    echo "[upload-certs] Using certificate key:"; printf 'f%.0s' {1..64}; echo ;;
esac""",
}


def upload_certs_config(run, tmp_path: Path) -> dict[str, dict]:
    result = run_with_stubs(inner_script(run.named("certificate-upload").plain("create")), tmp_path, JOIN_MATERIAL_STUBS)
    assert result.returncode == 0, result.stderr
    [upload] = [c for c in calls(tmp_path) if c.startswith("kubeadm init phase upload-certs")]
    assert "--upload-certs" in upload.split() and "--config" in upload.split()
    return {d["kind"]: d for d in yaml.safe_load_all((tmp_path / "upload-certs.yaml").read_text())}


def test_upload_certs_uploads_the_external_etcd_set(external, tmp_path):
    """Without --config kubeadm uploads the local-etcd set and joins fail on external-etcd-ca.crt."""
    cluster = upload_certs_config(external, tmp_path)["ClusterConfiguration"]
    assert cluster["etcd"]["external"] == {
        "endpoints": [f"https://10.0.0.3{i}:2379" for i in (1, 2, 3)], "caFile": "/etc/kubernetes/pki/etcd/ca.crt",
        "certFile": "/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "keyFile": "/etc/kubernetes/pki/apiserver-etcd-client.key"}


def test_upload_certs_config_names_kubeadms_own_version_not_stable_1(stacked, tmp_path):
    """A version is set (no online stable-1 lookup) and follows upgrades: kubeadm's own, not init's."""
    docs = upload_certs_config(stacked, tmp_path)
    assert docs["ClusterConfiguration"]["kubernetesVersion"] == "v1.37.1"
    assert "local" in docs["ClusterConfiguration"]["etcd"]
    assert docs["InitConfiguration"]["nodeRegistration"]["criSocket"] == "unix:///run/containerd/containerd.sock"


def test_upload_certs_config_does_not_change_with_the_version(stacked):
    """The join material is not re-minted by an upgrade: the version is filled on the node."""
    upgraded = run_program(base_config(kubernetesVersion="1.37.1"))
    for step in ("join-material", "certificate-upload"):
        assert upgraded.named(step).plain("create") == stacked.named(step).plain("create")


# --- a sandbox for scripts that work on fixed paths ----------------------------------------------------

SANDBOXED = ("/etc", "/var/lib")
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
                                reason="the sandbox needs root and unshare (a private mount namespace)")


def sandboxed(script: str, tmp_path: Path, stubs: dict[str, str], setup: str = "", stdin: str = "",
              after: str = "") -> subprocess.CompletedProcess:
    """Runs `script` in a private mount namespace where /etc and /var/lib are overlays whose writes
    land in tmp_path/upper (so the machine's own files are untouched), between `setup` and `after`
    (bash; the script's exit status is the result's)."""
    (tmp_path / "script.sh").write_text(script)
    mounts = ""
    for index, directory in enumerate(SANDBOXED):
        upper, work = tmp_path / "upper" / str(index), tmp_path / "work" / str(index)
        upper.mkdir(parents=True)
        work.mkdir(parents=True)
        mounts += f"mount -t overlay overlay -o lowerdir={directory},upperdir={upper},workdir={work} {directory}\n"
    wrapper = f"set -e\n{mounts}{setup}\nrc=0\nbash {tmp_path}/script.sh || rc=$?\n{after}\nexit $rc\n"
    return run_with_stubs(f"exec unshare --mount --propagation private bash -c {shlex_quote(wrapper)}",
                          tmp_path, stubs, stdin)


def shlex_quote(text: str) -> str:
    import shlex
    return shlex.quote(text)


# --- item 14: upgrade snapshots outside the etcd data directory -----------------------------------------

# The etcd pod sees of the machine only its hostPaths (/var/lib/etcd, /etc/kubernetes/pki/etcd):
# a snapshot saved anywhere else stays inside the container (phases/etcd/local.go@v1.36.4 volumes).
SNAPSHOT_STUBS = {"kubectl": """case "$*" in
  *"snapshot save"*) target=${*: -1}
    if [[ $target == /var/lib/etcd/* ]]; then echo "snapshot of the keyspace" >"$target"; fi ;;
esac"""}
APISERVER_MANIFEST = ("mkdir -p /etc/kubernetes/manifests /var/lib/etcd/member && echo '    image: "
                      "registry.k8s.io/kube-apiserver:v1.36.4' >/etc/kubernetes/manifests/kube-apiserver.yaml")


def preflight_script(version: str) -> str:
    return inner_script(run_program(base_config(kubernetesVersion=version)).named("upgrade-preflight").plain("update"))


@needs_root
def test_upgrade_snapshot_lands_outside_the_etcd_data_directory(tmp_path):
    result = sandboxed(preflight_script("1.37.1") + "ls -A /var/lib/etcd; stat -c %a /var/lib/etcd-snapshots; "
                       "cat /var/lib/etcd-snapshots/before-v1.37.1.db\n", tmp_path, SNAPSHOT_STUBS,
                       setup=APISERVER_MANIFEST)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["member", "700", "snapshot of the keyspace"]


@needs_root
def test_upgrade_snapshots_keep_the_three_newest_and_move_old_ones_out_of_the_data_directory(tmp_path):
    setup = APISERVER_MANIFEST + "\nmkdir -p /var/lib/etcd/kubeadm-cluster-snapshots /var/lib/etcd-snapshots\n" + "".join(
        f"echo {v} >{d}/before-v{v}.db; touch -d '{age} days ago' {d}/before-v{v}.db\n" for v, d, age in (
            ("1.35.8", "/var/lib/etcd/kubeadm-cluster-snapshots", 30), ("1.36.3", "/var/lib/etcd-snapshots", 20),
            ("1.36.4", "/var/lib/etcd-snapshots", 10)))
    result = sandboxed(preflight_script("1.37.1") + "ls -A /var/lib/etcd /var/lib/etcd-snapshots\n", tmp_path,
                       SNAPSHOT_STUBS, setup=setup)
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("\n\n")
    assert listing[0].split() == ["/var/lib/etcd:", "member"]
    assert listing[1].split() == ["/var/lib/etcd-snapshots:", "before-v1.36.3.db", "before-v1.36.4.db",
                                  "before-v1.37.1.db"]


# --- item 6: the kubeconfig output stays valid across an upgrade ---------------------------------------

def test_an_upgrade_keeps_the_exported_kubeconfig_and_runs_before_it(stacked):
    """`kubeadm upgrade apply` renews admin.conf's client certificate (phases/upgrade/staticpods.go@v1.36.4);
    the exported kubeconfig is a ServiceAccount token (components/kubeconfig.py), which stays valid."""
    upgraded = run_program(base_config(kubernetesVersion="1.37.1"))
    assert "kubeconfig" not in plan(stacked, upgraded).touched
    assert upgraded.outputs["kubeconfig"] == stacked.outputs["kubeconfig"]
    assert upgraded.depends_on("kubeconfig", "cp1-upgrade")


# --- item 3: a retried init or join keeps what earlier steps placed ------------------------------------

HA_EXTERNAL = dict(EXTERNAL, controlPlane={"endpoint": "10.0.0.100:8443",
                                           "loadBalancer": {"type": "haproxy-keepalived", "vip": "10.0.0.100"}},
                   keepalivedAuthPass="vrrp5ecr")
PLACED = {  # what the endpoint and external-etcd steps put on the first control plane before init
    "/etc/kubernetes/manifests/haproxy.yaml": "haproxy pod", "/etc/kubernetes/manifests/keepalived.yaml": "vrrp pod",
    "/etc/kubernetes/pki/etcd/ca.crt": "etcd CA", "/etc/kubernetes/pki/apiserver-etcd-client.crt": "client cert",
    "/etc/kubernetes/pki/apiserver-etcd-client.key": "client key"}
# kubeadm reset's cleanup-node: empties manifests/ and pki/, removes the kubeconfig files
# (cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go@v1.36.4); init/join fail without what the cluster's
# config names (external etcd files) and record the CA they find (certs.go uses an existing CA).
KUBEADM_RETRY_STUBS = {
    "kubectl": "exit 0",  # no Node registered: nothing to wait for
    "systemctl": "exit 0",
    "kubeadm": """K=/etc/kubernetes
case "$1" in
  reset) [[ " $* " == *" --cri-socket "* ]] || exit 3
    find $K/manifests $K/pki -mindepth 1 -delete 2>/dev/null || true; rm -f $K/*.conf ;;
  init|join)
    for f in "$K/pki/etcd/ca.crt" "$K/pki/apiserver-etcd-client.key"; do [[ -s $f ]] || { echo "missing $f" >&2; exit 1; }; done
    mkdir -p $K/pki $K/manifests; [[ -f $K/pki/ca.crt ]] || echo "a new CA" >$K/pki/ca.crt
    touch $K/manifests/kube-apiserver.yaml $K/kubelet.conf ;;
esac""",
}

# A join gets its certificates from the kubeadm-certs Secret again, so it needs none in place.
JOIN_RETRY_STUBS = {**KUBEADM_RETRY_STUBS, "kubeadm": KUBEADM_RETRY_STUBS["kubeadm"].replace(
    "for f in", "[[ $1 == init ]] || { mkdir -p $K/pki; touch $K/kubelet.conf; exit 0; }\n    for f in")}


def place(files: dict[str, str], root: str = "") -> str:
    return "".join(f"mkdir -p {root}{os.path.dirname(p)} && echo '{c}' >{root}{p}\n" for p, c in files.items())


def listing(files) -> str:
    return "".join(f"echo \"{p}=$(cat {p} 2>/dev/null)\"\n" for p in files)


def state(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def ha_external():
    return run_program(HA_EXTERNAL)


@needs_root
def test_a_retried_init_keeps_the_endpoint_pods_the_etcd_client_pair_and_the_cluster_ca(ha_external, tmp_path):
    """A half-finished init (manifests written, no marker) is reset and redone: reset's cleanup must not
    take the haproxy/keepalived pods or the external-etcd pair, and the CA stays the one that wrote to etcd."""
    half_done = place({**PLACED, "/etc/kubernetes/pki/ca.crt": "the first CA",
                       "/etc/kubernetes/manifests/kube-apiserver.yaml": "apiserver"})
    script = inner_script(ha_external.named("cp1-init").plain("create"))
    result = sandboxed(script + listing([*PLACED, "/etc/kubernetes/pki/ca.crt"]), tmp_path, KUBEADM_RETRY_STUBS,
                       setup=half_done)
    assert result.returncode == 0, result.stderr
    assert state(result.stdout) == {**PLACED, "/etc/kubernetes/pki/ca.crt": "the first CA"}
    assert "kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock" in calls(tmp_path)


@needs_root
def test_a_retry_after_an_interruption_right_after_reset_restores_the_kept_files(ha_external, tmp_path):
    """The run before stopped between reset and restore: the kept copy is what remains, and is put back."""
    kept = place(PLACED, root="/etc/kubernetes/kubeadm-cluster/kept-across-reset")
    script = inner_script(ha_external.named("cp1-init").plain("create"))
    result = sandboxed(script + listing(PLACED) + "ls -A /etc/kubernetes/kubeadm-cluster\n", tmp_path,
                       KUBEADM_RETRY_STUBS, setup=kept)
    assert result.returncode == 0, result.stderr
    assert state(result.stdout) == PLACED
    assert "kept-across-reset" not in result.stdout
    assert not [c for c in calls(tmp_path) if c.startswith("kubeadm reset")]  # nothing half-done was left


@needs_root
def test_a_retried_control_plane_join_keeps_its_endpoint_pods(ha_external, tmp_path):
    pods = {p: c for p, c in PLACED.items() if "/manifests/" in p}
    half_done = place({**pods, "/etc/kubernetes/kubelet.conf": "kubelet",
                       # what the first attempt downloaded from the kubeadm-certs Secret
                       "/etc/kubernetes/pki/etcd/ca.crt": "etcd CA", "/etc/kubernetes/pki/apiserver-etcd-client.key": "k"})
    script = inner_script(ha_external.named("cp2-join").plain("create"))
    result = sandboxed(script + listing(pods) + "ls /etc/kubernetes/pki\n", tmp_path,
                       JOIN_RETRY_STUBS,
                       setup=half_done, stdin="kind: JoinConfiguration\n")
    assert result.returncode == 0, result.stderr
    assert state(result.stdout) == pods
    assert "etcd" not in result.stdout.split("\n")[-2:]  # joins get their certificates from the Secret again


@needs_root
def test_a_retried_join_whose_kubelet_registered_the_node_waits_until_the_node_is_not_ready(ha_external, tmp_path):
    """kubeadm join refuses a name whose Node is Ready (cmd/kubeadm/app/cmd/phases/join/kubelet.go@v1.36.4): the retry
    stops the kubelet and reads the Node with the node's own kubeconfig until the controller marks it not ready,
    before the reset. Here the Node is Ready twice, then Unknown."""
    half_done = place({"/etc/kubernetes/kubelet.conf": "kubelet", "/etc/kubernetes/pki/etcd/ca.crt": "etcd CA",
                       "/etc/kubernetes/pki/apiserver-etcd-client.key": "k"})
    ready = ('n=$(grep -c "^kubectl .*get node" "$STUB_DIR/calls"); '
             '[[ $n -le 2 ]] && printf True || printf Unknown')
    script = inner_script(ha_external.named("cp2-join").plain("create"))
    result = sandboxed(script, tmp_path, {**JOIN_RETRY_STUBS, "kubectl": ready, "sleep": "exit 0"},
                       setup=half_done, stdin="kind: JoinConfiguration\n")
    assert result.returncode == 0, result.stderr
    assert "the unfinished join registered the Node cp2: waiting until it is marked not ready" in result.stderr
    made = calls(tmp_path)
    waits = [c for c in made if c.startswith("kubectl --kubeconfig /etc/kubernetes/kubelet.conf")]
    assert len(waits) == 3 and all(" get node cp2 " in c for c in waits), made
    assert made.index("systemctl stop kubelet") < made.index(waits[0])
    assert made.index(waits[-1]) < next(i for i, c in enumerate(made) if c.startswith("kubeadm reset"))


def test_what_a_retry_keeps_follows_the_topology(ha_external, stacked):
    def kept(run, name):
        return script_param(inner_script(run.named(name).plain("create")), "KEEP_ACROSS_RESET").split("\n")

    assert "/etc/kubernetes/pki/apiserver-etcd-client.key" in kept(ha_external, "cp1-init")
    assert "/etc/kubernetes/pki/etcd/ca.key" in kept(stacked, "cp1-init")
    assert kept(ha_external, "cp2-join") == ["/etc/kubernetes/manifests/haproxy.yaml",
                                              "/etc/kubernetes/manifests/keepalived.yaml"]
    assert kept(ha_external, "w1-join") == [""]


# --- item 8: a renewal waits for this node's own API server and etcd member, and restarts kube-vip -----

KUBE_VIP = base_config(controlPlane={"endpoint": "10.0.0.100:6443",
                                     "loadBalancer": {"type": "kube-vip", "vip": "10.0.0.100"}},
                       certificates={"renew": "2026-11-25"})
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kube-vip")
# The kubelet runs a static pod while its manifest is in /etc/kubernetes/manifests: the stubs for
# this node's own API server (--server) and etcd member (127.0.0.1:2381) answer only then; the
# endpoint (no --server) is answered by the other control planes all along.
RENEW_STUBS = {
    "kubeadm": "exit 0",
    "sleep": 'echo "parked: $(ls /etc/kubernetes/kubeadm-cluster/parked-manifests | tr "\\n" " ")" >>$STUB_DIR/calls',
    "kubectl": """if [[ " $* " == *" --server "* ]]; then [[ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]]; fi""",
    "curl": """[[ " $* " == *" http://127.0.0.1:2381/readyz "* && -f /etc/kubernetes/manifests/etcd.yaml ]]""",
}


def renew_script(name: str = "cp2-certs-renew") -> str:
    return inner_script(run_program(KUBE_VIP).named(name).plain("update"))


@needs_root
def test_renewal_restarts_kube_vip_with_the_control_plane_and_waits_for_this_node(tmp_path):
    setup = place({f"/etc/kubernetes/manifests/{pod}.yaml": pod for pod in STATIC_PODS})
    result = sandboxed(renew_script() + "ls /etc/kubernetes/manifests\n", tmp_path, RENEW_STUBS, setup=setup)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(f"{pod}.yaml" for pod in STATIC_PODS)
    log = calls(tmp_path)
    parked = next(i for i, line in enumerate(log) if line.startswith("parked:"))
    assert sorted(log[parked].split()[1:]) == sorted(f"{pod}.yaml" for pod in STATIC_PODS)
    after = log[parked + 1:]
    assert "curl -sf --max-time 5 http://127.0.0.1:2381/readyz" in after
    assert "kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://10.0.0.12:6443 get --raw=/readyz" in after


@needs_root
def test_renewal_does_not_finish_while_this_nodes_api_server_is_down(tmp_path):
    """The endpoint answers (other members), but this node's API server does not come back: no success."""
    setup = place({f"/etc/kubernetes/manifests/{pod}.yaml": pod for pod in STATIC_PODS})
    stubs = {**RENEW_STUBS, "kubectl": """[[ " $* " != *" --server "* ]]"""}
    script = renew_script().replace("retry 60 5 local_api_server_ready", "retry 2 0 local_api_server_ready")
    result = sandboxed(script, tmp_path, stubs, setup=setup)
    assert result.returncode == 1
    assert "the API server on cp2 (https://10.0.0.12:6443) did not become ready" in result.stderr


@needs_root
def test_a_renewal_stopped_while_manifests_were_parked_puts_them_back(tmp_path):
    parked = place({f"/etc/kubernetes/kubeadm-cluster/parked-manifests/{pod}.yaml": pod for pod in STATIC_PODS})
    setup = parked + "mkdir -p /etc/kubernetes/manifests && printf 2026-11-25 >/etc/kubernetes/kubeadm-cluster/certificates-renewal"
    result = sandboxed(renew_script(), tmp_path, RENEW_STUBS, setup=setup,
                       after="ls -A /etc/kubernetes/manifests; ls -A /etc/kubernetes/kubeadm-cluster")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [*sorted(f"{pod}.yaml" for pod in STATIC_PODS), "certificates-renewal"]


# --- item 5: external-etcd certificates are renewed and reported ---------------------------------------

RENEWED_PAIR = json.dumps({"clientCert": "-----BEGIN CERTIFICATE-----\ncmVuZXdlZA==\n-----END CERTIFICATE-----\n",
                           "clientKey": "-----BEGIN RSA PRIVATE KEY-----\nMIIrenewedclientkey\n-----END RSA PRIVATE KEY-----\n"})


@pytest.fixture(scope="module")
def external_renewal():
    return run_program(dict(EXTERNAL, certificates={"renew": "2026-11-25"}),
                       stdout={"etcd1-etcd-certs-renew": RENEWED_PAIR})


def test_renewal_renews_the_etcd_members_one_at_a_time_before_the_control_planes(external, external_renewal):
    result = plan(external, external_renewal)
    members = ["etcd1-etcd-certs-renew", "etcd2-etcd-certs-renew", "etcd3-etcd-certs-renew"]
    assert set(members) <= result.updated
    assert external_renewal.depends_on(members[1], members[0]) and external_renewal.depends_on(members[2], members[1])
    assert external_renewal.depends_on("cp1-certs-renew", members[2])
    for i, name in enumerate(members, start=1):
        assert external_renewal.named(name).host == f"10.0.0.3{i}"
        assert external_renewal.named(name).plain("create") is None  # a new cluster passes through


def test_control_planes_get_the_renewed_etcd_client_pair_as_secret_stdin(external_renewal):
    assert set(external_renewal.named("etcd1-etcd-certs-renew").additional_secret_outputs) >= {"stdout", "stderr"}
    for cp in ("cp1", "cp2", "cp3"):
        renewal = external_renewal.named(f"{cp}-certs-renew")
        assert renewal.is_secret("stdin")
        assert "# file: apiserver-etcd-client.key\n" in renewal.plain("stdin")
        assert "MIIrenewedclientkey" in renewal.plain("stdin")


def test_certificate_expiry_lists_the_external_etcd_certificates(external):
    expiry = {e["name"]: e for e in external.outputs["certificateExpiry"]}
    assert {"etcd-server (etcd1)", "etcd-server (etcd2)", "etcd-server (etcd3)", "apiserver-etcd-client",
            "etcd-ca", "admin.conf", "ca"} == set(expiry)  # what a member's kubeadm finds missing is left out
    assert expiry["etcd-server (etcd2)"] == {"name": "etcd-server (etcd2)", "expires": "2027-11-22T21:00:00Z",
                                             "authority": "etcd-ca"}
    assert expiry["admin.conf"]["authority"] == "ca"  # kubeadm's field is caName (output/v1alpha3/types.go)
    assert external.depends_on("etcd2-etcd-certs-expiry", "etcd3-etcd-certs-renew")


ETCD_RENEW_STUBS = {
    "kubeadm": "exit 0",
    "sleep": 'echo "parked: $(ls /etc/kubernetes/kubeadm-cluster/parked-manifests | tr "\\n" " ")" >>$STUB_DIR/calls',
    # a member answers /health while the kubelet runs its etcd, i.e. while the manifest is in place
    "curl": """[[ -f /etc/kubernetes/manifests/etcd.yaml ]] && echo '{"health":"true","reason":""}'""",
}
MEMBER_FILES = {"/etc/kubernetes/manifests/etcd.yaml": "etcd pod",
                "/etc/kubernetes/pki/apiserver-etcd-client.crt": "CLIENT CERT",
                "/etc/kubernetes/pki/apiserver-etcd-client.key": "CLIENT KEY"}


@needs_root
def test_a_member_renews_restarts_etcd_and_waits_for_a_healthy_cluster(external_renewal, tmp_path):
    script = inner_script(external_renewal.named("etcd1-etcd-certs-renew").plain("update"))
    result = sandboxed(script, tmp_path, ETCD_RENEW_STUBS, setup=place(MEMBER_FILES),
                       after="ls /etc/kubernetes/manifests; cat /etc/kubernetes/kubeadm-cluster/certificates-renewal")
    assert result.returncode == 0, result.stderr
    log = calls(tmp_path)
    renewed = [c.split()[3] for c in log if c.startswith("kubeadm certs renew")]
    assert renewed == ["etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client"]
    parked = log.index("parked: etcd.yaml ")
    health = [c for c in log[parked:] if c.startswith("curl")]
    assert [c.split()[-1] for c in health] == ["https://10.0.0.31:2379/health", "https://10.0.0.31:2379/health",
                                               "https://10.0.0.32:2379/health", "https://10.0.0.33:2379/health"]
    document, listing = result.stdout.split("\n", 1)
    assert json.loads(document) == {"clientCert": "CLIENT CERT\n", "clientKey": "CLIENT KEY\n"}
    assert listing.split() == ["etcd.yaml", "2026-11-25"]


@needs_root
def test_other_members_install_certificates_signed_on_the_first_and_print_nothing(external_renewal, tmp_path):
    # Issue 14: only the first member holds the etcd CA key, which kubeadm certs renew would need.
    renewal = external_renewal.named("etcd2-etcd-certs-renew")
    assert renewal.is_secret("stdin") and external_renewal.depends_on(renewal.name, "etcd2-etcd-member-certs")
    kept_key = {"/etc/kubernetes/pki/etcd/ca.key": "CA KEY FROM BEFORE ISSUE 14"}
    result = sandboxed(inner_script(renewal.plain("update")), tmp_path, ETCD_RENEW_STUBS,
                       setup=place(MEMBER_FILES | kept_key), stdin=renewal.plain("stdin"),
                       after="cd /etc/kubernetes/pki/etcd; stat -c '%n %a' *; cat server.key")
    assert result.returncode == 0, result.stderr
    assert not [c for c in calls(tmp_path) if c.startswith("kubeadm")]
    assert result.stdout.splitlines()[:6] == ["healthcheck-client.crt 644", "healthcheck-client.key 600", "peer.crt 644",
                                              "peer.key 600", "server.crt 644", "server.key 600"]  # and no ca.key
    assert "serverKeyetcd2" in result.stdout


@needs_root
def test_a_control_plane_installs_the_renewed_etcd_client_pair(external_renewal, tmp_path):
    renewal = external_renewal.named("cp2-certs-renew")
    pods = place({f"/etc/kubernetes/manifests/{pod}.yaml": pod for pod in STATIC_PODS[:3]}
                 | {"/etc/kubernetes/pki/apiserver-etcd-client.key": "old key"})
    result = sandboxed(inner_script(renewal.plain("update")), tmp_path, RENEW_STUBS, setup=pods,
                       stdin=renewal.plain("stdin"),
                       after="cat /etc/kubernetes/pki/apiserver-etcd-client.key; stat -c %a /etc/kubernetes/pki/apiserver-etcd-client.key")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == ["-----BEGIN RSA PRIVATE KEY-----", "MIIrenewedclientkey",
                                             "-----END RSA PRIVATE KEY-----", "600"]


# --- the lab's kubeadm stand-in models what was checked upstream ----------------------------------------

STANDIN = Path(__file__).resolve().parent / "lab" / "standins" / "standin.py"


def standin_tools(tmp_path: Path, version: str = "1.36.4") -> dict[str, str]:
    """The lab stand-in as kubeadm and kubectl (bash stubs exec it under its tool name)."""
    code = tmp_path / "standin-bin"
    code.mkdir()
    for tool in ("kubeadm", "kubectl"):
        (code / tool).write_text(STANDIN.read_text().replace("@VERSION@", version))
    return {tool: f'exec python3 {code / tool} "$@"' for tool in ("kubeadm", "kubectl")}


EXTERNAL_INIT = """
mkdir -p /etc/kubernetes/pki/etcd /run/containerd && touch /run/containerd/containerd.sock
for f in etcd/ca.crt apiserver-etcd-client.crt apiserver-etcd-client.key; do echo pem >/etc/kubernetes/pki/$f; done
cat >/tmp/init.yaml <<'Y'
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.36.4
controlPlaneEndpoint: 10.0.0.11:6443
etcd: {external: {endpoints: ["https://10.0.0.31:2379"], caFile: /etc/kubernetes/pki/etcd/ca.crt,
       certFile: /etc/kubernetes/pki/apiserver-etcd-client.crt, keyFile: /etc/kubernetes/pki/apiserver-etcd-client.key}}
Y
kubeadm init --config /tmp/init.yaml --upload-certs --ignore-preflight-errors=all >/dev/null
"""
JOIN_AS_CONTROL_PLANE = """
hash=$(kubeadm init phase upload-certs --upload-certs {config} | tail -n1)
ca=$(python3 -c 'import json; print(json.load(open("/var/lib/kclab/journal.json"))["cluster"]["caHash"])')
token=$(kubeadm token create)
printf 'apiVersion: kubeadm.k8s.io/v1beta4\\nkind: JoinConfiguration\\ndiscovery: {{bootstrapToken: {{token: %s, apiServerEndpoint: "10.0.0.11:6443", caCertHashes: ["%s"]}}}}\\ncontrolPlane: {{certificateKey: %s}}\\n' "$token" "$ca" "$hash" >/tmp/join.yaml
rm -f /etc/kubernetes/kubelet.conf
kubeadm join --config /tmp/join.yaml --ignore-preflight-errors=all
"""


@needs_root
@pytest.mark.parametrize("config,joins", [("", False), ("--config /tmp/init.yaml", True)])
def test_standin_upload_certs_uploads_the_set_of_the_config_it_is_given(tmp_path, config, joins):
    """copycerts.go certsToTransfer@v1.36.4: without --config the local-etcd set replaces the external one."""
    result = sandboxed(EXTERNAL_INIT + JOIN_AS_CONTROL_PLANE.format(config=config), tmp_path, standin_tools(tmp_path))
    assert (result.returncode == 0) == joins, result.stderr
    if not joins:
        assert "the Secret does not include the required certificate or key - name: external-etcd-ca.crt" in result.stderr


@needs_root
def test_standin_renews_one_etcd_certificate_and_reports_a_members_expiry(tmp_path):
    member = EXTERNAL["nodes"][-1]
    config = inner_script(run_program(EXTERNAL).named("etcd3-etcd-member").plain("create"))
    config = script_param(config, "KUBEADM_CONFIG")
    (tmp_path / "etcd.yaml").write_text(config)
    script = f"""
mkdir -p /run/containerd && touch /run/containerd/containerd.sock
kubeadm init phase certs etcd-ca >/dev/null
kubeadm init phase certs etcd-server --config {tmp_path}/etcd.yaml >/dev/null
before=$(openssl x509 -noout -serial -in /etc/kubernetes/pki/etcd/server.crt)
kubeadm certs renew etcd-server --config {tmp_path}/etcd.yaml >/dev/null
after=$(openssl x509 -noout -serial -in /etc/kubernetes/pki/etcd/server.crt)
[[ $before != "$after" ]]
openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/etcd/server.crt | tail -n1
kubeadm certs check-expiration --config {tmp_path}/etcd.yaml -o json
"""
    result = sandboxed(script, tmp_path, standin_tools(tmp_path))
    assert result.returncode == 0, result.stderr
    sans, report = result.stdout.strip().split("\n")
    assert member["address"] in sans
    entries = {e["name"]: e for e in json.loads(report)["certificates"]}
    assert entries["etcd-server"]["caName"] == "etcd-ca" and not entries["etcd-server"]["missing"]
    assert entries["etcd-peer"]["missing"] and entries["apiserver"]["missing"]
