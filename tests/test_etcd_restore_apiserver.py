"""etcd.restore under the real control plane (issue 13): three stacked control planes (private machines,
tests/etcd_machines.py) run the real etcd v3.6.8, kube-apiserver, kube-controller-manager and
kube-scheduler v1.36.4 as the static pods the real kubeadm v1.36.4 writes from the program's rendered
InitConfiguration (the rendered init step's KUBEADM_CONFIG, as tests/real_control_plane.py takes it for its
one-host control plane; `kubeadm init phase certs all`, `kubeconfig all`, `control-plane all`, `etcd local`
on each, the second and third with the first's CA, service-account and front-proxy keys as a control
plane join copies them: phases/copycerts/copycerts.go certsToTransfer@v1.36.4), with the hardening
files the program's control-plane-files step writes.

Scenario: a ConfigMap `before` written through the real API, a snapshot taken by the program's backup
script (etcd-backup.sh), a ConfigMap `after`, every member's data directory destroyed, then the
program's rendered restore steps in the engine's order with the snapshot docs/recovery.md tells a person
to pick (the backups' status.json). Then through the real API: `before` is there, `after` is not.

What differs from kubeadm: the second and third etcd manifests list the three members at once (`kubeadm
join` writes the members so far and `--initial-cluster-state=existing`; etcd reads those flags only for
an empty data directory, and the restore's rejoin step rewrites them), and the kubelet is the double of
tests/static_pod_kubelet.py. One real control plane at a time: every test here shares one, and the
scenario runs once.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from components.backup import backup_script
from components.config import parse_spec
from harness import inner_script, run_program, script_param
from tests.etcd_machines import (RESTORE_ID, SNAPSHOT, STACKED, Cluster, Member, install_etcdutl, restore_steps,
                                 run_step, running)
from tests.etcd_tools import etcd_tool
from tests.kubernetes_tools import kubernetes_tool
from tests.recovery_page import DOCS_ID, DOCS_SNAPSHOT, bash_blocks, docs_section

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"),
                                reason="needs root, ip and nsenter for private namespaces")

LAYOUT = STACKED
KUBERNETES = ("kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# What a joining control plane gets from the first (copycerts.go certsToTransfer@v1.36.4, local etcd).
SHARED_PKI = ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key",
              "etcd/ca.crt", "etcd/ca.key")
BUMP = 1_000_000_000  # etcd-restore-snapshot.sh --bump-revision
RESTORING = LAYOUT.config({"id": RESTORE_ID, "snapshot": SNAPSHOT})  # the stack's config (keys without prefix)


def node_init_configuration(text: str, name: str, address: str) -> str:
    """The rendered InitConfiguration as the node NAME at ADDRESS has it (its own API endpoint and node
    name, as its join writes them); the ClusterConfiguration is the cluster's."""
    documents = list(yaml.safe_load_all(text))
    for document in documents:
        if document["kind"] == "InitConfiguration":
            document["localAPIEndpoint"]["advertiseAddress"] = address
            document["nodeRegistration"]["name"] = name
    return yaml.safe_dump_all(documents)


def provision_with_kubeadm(root: Path):
    """Each machine's image (the real binaries) and the kubeadm phases that make its files."""
    steps = {c.name: inner_script(c.plain("create")) for c in run_program(RESTORING).commands if c.plain("create")}
    init = script_param(steps[f"{LAYOUT.first}-init"], "KUBEADM_CONFIG")  # what init.sh hands to kubeadm
    image, shared = root / "image", root / "shared"
    image.mkdir()
    shared.mkdir()
    for name in KUBERNETES:
        (image / name).symlink_to(kubernetes_tool(name))
    for name in ("etcd", "etcdctl"):
        (image / name).symlink_to(etcd_tool(name))
    everyone = ",".join(f"{n}=https://{LAYOUT.ip(n)}:2380" for n in LAYOUT.etcd)

    def provision(member: Member) -> tuple[Path, str]:
        work = member.root
        work.mkdir(parents=True)
        (work / "kubeadm.yaml").write_text(node_init_configuration(init, member.name, member.ip))
        (work / "control-plane-files.sh").write_text(steps[f"{member.name}-control-plane-files"])
        first = member.name == LAYOUT.first
        copy_in = "".join(f"install -D -m 0600 {shared}/{f} /etc/kubernetes/pki/{f}\n" for f in SHARED_PKI)
        copy_out = "".join(f"install -D -m 0600 /etc/kubernetes/pki/{f} {shared}/{f}\n" for f in SHARED_PKI)
        phases = "".join(f"kubeadm init phase {phase} --config {work}/kubeadm.yaml\n"
                         for phase in ("certs all", "kubeconfig all", "control-plane all", "etcd local"))
        files = (f"bash {work}/control-plane-files.sh >{shared}/encryption.yaml\n" if first
                 else f"{copy_in}bash {work}/control-plane-files.sh <{shared}/encryption.yaml >/dev/null\n")
        return image, (f"{files}{phases}"
                       f"sed -i 's|^\\( *- --initial-cluster=\\).*|\\1{everyone}|' /etc/kubernetes/manifests/etcd.yaml\n"
                       + (copy_out if first else ""))

    return provision


def kubectl(member: Member, args: str, timeout: float = 120) -> str:
    """The real kubectl with kubeadm's admin.conf, against MEMBER's own API server."""
    return member.sh(f"kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://{member.ip}:6443 {args}",
                     timeout)


def until(seconds: float, check, message: str):
    """CHECK's first truthy result within SECONDS."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, message
        time.sleep(2)


def api_ready(member: Member) -> bool:
    return member.run(f"kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://{member.ip}:6443 "
                      "get --raw=/readyz", 30).returncode == 0


def leader(member: Member, lease: str) -> str:
    """LEASE's holder, or "" while it has none: the lease exists only once a leader took it, which a loaded
    machine takes longer to reach than the API server's readiness."""
    result = member.run(f"kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://{member.ip}:6443 "
                        f"-n kube-system get lease {lease} -o jsonpath={{.spec.holderIdentity}}", 120)
    return result.stdout.strip() if result.returncode == 0 else ""


def resource_version(member: Member, what: str) -> int:
    return int(kubectl(member, f"get {what} -o jsonpath={{.metadata.resourceVersion}}"))


def list_resource_version(member: Member) -> int:
    """The resourceVersion of a list of the default namespace's ConfigMaps, where an informer starts watching."""
    return int(json.loads(kubectl(member, "get --raw /api/v1/namespaces/default/configmaps"))["metadata"]["resourceVersion"])


def issue_credentials(member: Member, revision: str) -> str:
    """The program's rendered `kubeconfig` step (kubeconfig.sh) for kubeconfig.revision REVISION, run on the
    first control plane: the admin token the `kubeconfig` output holds."""
    step = next(c for c in run_program({**RESTORING, "kubeconfig": {"revision": revision}}).commands
                if c.name == "kubeconfig")
    document = json.loads(member.sh(inner_script(step.plain("create"))).strip().splitlines()[-1])
    (token,) = document["tokens"].values()
    return base64.b64decode(token).decode()


def accepted(member: Member, token: str) -> bool:
    return member.run(f"kubectl --kubeconfig /dev/null --server https://{member.ip}:6443 --certificate-authority "
                      f"/etc/kubernetes/pki/ca.crt --token {token} get --raw /api", 60).returncode == 0


@dataclass
class Restored:
    cluster: Cluster
    snapshot: str           # what status.json named
    snapshot_revision: int  # and the revision it says the snapshot holds
    before_rv: int          # ConfigMap `before`'s resourceVersion
    after_rv: int           # ConfigMap `after`'s: newer than the snapshot
    leaders: dict[str, str]  # lease -> holder before the restore
    outputs: dict[str, str]  # restore step -> its stdout
    credentials: dict[str, bool]  # what the API server accepts after the restore (see the fixture)


@pytest.fixture(scope="module")
def restored(tmp_path_factory) -> Restored:
    root = tmp_path_factory.mktemp("restore-apiserver")
    with running(LAYOUT, root, f"kca{os.getpid() % 100000}", provision_with_kubeadm(root)) as cluster:
        first = cluster.first
        for member in cluster.values():
            until(300, lambda: api_ready(member), f"the API server on {member.name} is not ready")
        # As `kubeadm init` goes on once the API answers: its client binds kubeadm:cluster-admins (admin.conf's
        # group) to cluster-admin (EnsureAdminClusterRoleBinding, cmd/kubeadm/app/cmd/init.go@v1.36.4), and the
        # cluster's configuration is uploaded.
        first.sh(f"kubeadm init phase upload-config all --config {first.root}/kubeadm.yaml")
        leaders = {lease: until(120, lambda: leader(first, lease), f"no {lease} leader")
                   for lease in ("kube-controller-manager", "kube-scheduler")}

        revoked = issue_credentials(first, "1")  # the kubeconfig output of then
        kubectl(first, "create configmap before --from-literal=state=in-the-snapshot")
        before_rv = resource_version(first, "configmap before")
        install_etcdutl(first)  # as a backup with etcd.backup.etcdutlSha256 set downloads it
        spec = parse_spec(RESTORING)
        first.sh(backup_script(spec, spec.control_planes[0]))  # what the etcd backup timer runs
        status = json.loads(first.sh("cat /var/lib/etcd-backups/status.json"))
        assert status["result"] == "ok", status
        issued = issue_credentials(first, "2")  # kubeconfig.revision changed after the snapshot: 1 revoked
        assert accepted(first, issued) and not accepted(first, revoked)
        kubectl(first, "create configmap after --from-literal=state=after-the-snapshot")
        after_rv = resource_version(first, "configmap after")

        # The disaster: every member's data directory gone, every etcd killed (the kubelet double restarts them).
        for member in cluster.values():
            member.sh("rm -rf /var/lib/etcd/member && pkill -9 -x etcd || true")

        steps = restore_steps(LAYOUT, status["path"])
        outputs = {}
        for name in LAYOUT.order():
            result = run_step(cluster, steps, name)
            assert result.returncode == 0, f"{name}:\n{result.stderr}"
            outputs[name] = result.stdout
        credentials = {"issued after the snapshot": accepted(first, issued),
                       "revoked after the snapshot": accepted(first, revoked)}
        # What the engine runs next: the kubeconfig step, replaced by the new etcd.restore.id (kubeconfig.py).
        reissued = issue_credentials(first, "2")
        credentials |= {"issued again": accepted(first, reissued), "revoked, once issued again": accepted(first, revoked)}
        yield Restored(cluster, status["path"], status["revision"], before_rv, after_rv, leaders, outputs,
                       credentials)


def test_every_api_server_is_ready_after_the_restore(restored):
    for member in restored.cluster.values():
        assert kubectl(member, "get --raw=/readyz").strip() == "ok"


def test_the_objects_of_the_snapshot_are_back(restored):
    for member in restored.cluster.values():
        assert kubectl(member, "get configmap before -o jsonpath={.data.state}") == "in-the-snapshot"


def test_objects_written_after_the_snapshot_are_gone(restored):
    for member in restored.cluster.values():
        result = member.run(f"kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://{member.ip}:6443 "
                            "get configmap after")
        assert result.returncode != 0 and 'configmaps "after" not found' in result.stderr


def test_resource_versions_continue_above_every_one_seen_before(restored):
    """--bump-revision: a client's resourceVersion from before the restore never names a later state."""
    listed = list_resource_version(restored.cluster.first)
    assert listed > restored.after_rv + BUMP - 1_000


def watch(member: Member, resource_version: int, seconds: int = 5) -> str:
    return kubectl(member, f"get --raw '/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={resource_version}"
                           f"&timeoutSeconds={seconds}'", timeout=60)


@pytest.mark.parametrize("which", ["before_rv", "after_rv"])
def test_a_watch_from_before_the_restore_is_told_to_list_again(restored, which):
    """An informer watching from a resourceVersion it saw before the restore gets 410 Gone ("too old
    resource version", watch_cache.go getAllEventsSinceLocked, k8s.io/apiserver@v0.36.4) and lists again,
    rather than waiting for, or being sent, a history that is not the one it saw."""
    events = watch(restored.cluster.first, getattr(restored, which)).splitlines()
    assert events, "the watch ended without an error: the client keeps a history that is not the one it saw"
    event = json.loads(events[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410, event


def test_a_watch_from_a_list_after_the_restore_sees_new_objects(restored):
    first = restored.cluster.first
    listed = list_resource_version(first)
    out = first.sh(f"(kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://{first.ip}:6443 get --raw "
                   f"'/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={listed}&timeoutSeconds=8' >/tmp/w.json &"
                   f" sleep 2; kubectl --kubeconfig /etc/kubernetes/admin.conf create configmap new >&2; wait); cat /tmp/w.json")
    events = [json.loads(line) for line in out.splitlines()]
    # Only what changed after the list (the controller manager may publish kube-root-ca.crt meanwhile).
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert ("ADDED", "new") in seen and not [name for _, name in seen if name == "before"], seen


@pytest.mark.parametrize("lease", ["kube-controller-manager", "kube-scheduler"])
def test_the_controller_manager_and_scheduler_run_again_as_new_processes(restored, lease):
    """docs/recovery.md step 6: they start again after the API server, nothing cached from before; the
    lease from the snapshot names the holder of then, a new process acquires it (a new identity per start:
    hostname_UUID, cmd/kube-controller-manager/app/controllermanager.go@v1.36.4)."""
    first = restored.cluster.first
    old = restored.leaders[lease]
    new = until(180, lambda: (lambda h: h if h and h != old else "")(leader(first, lease)),
                f"{lease} is still led by {old} from before the restore")
    assert re.fullmatch(r"cp[123]_[0-9a-f-]{36}", new)


def test_the_verify_step_reports_the_new_cluster(restored):
    report = json.loads(restored.outputs["etcd-restore-verify"].strip().splitlines()[-1])
    assert report["restore"] == RESTORE_ID and report["members"] == list(LAYOUT.etcd)
    assert report["clusterId"] != report["previousClusterId"]



# The exported credentials are ServiceAccount tokens checked against their Secret and ServiceAccount in etcd
# (pkg/serviceaccount/legacy.go@v1.36.4, --service-account-lookup): the snapshot holds those of its time.

def test_a_credential_issued_after_the_snapshot_is_refused_after_the_restore(restored):
    assert restored.credentials["issued after the snapshot"] is False


def test_a_credential_revoked_after_the_snapshot_is_accepted_again_after_the_restore(restored):
    assert restored.credentials["revoked after the snapshot"] is True


def test_the_kubeconfig_step_run_again_after_the_restore_exports_a_working_credential(restored):
    assert restored.credentials["issued again"] is True


def test_the_kubeconfig_step_run_again_after_the_restore_revokes_the_credentials_the_snapshot_brought_back(restored):
    assert restored.credentials["revoked, once issued again"] is False

# --- docs/recovery.md, as a person runs it ----------------------------------------------------------------


def test_the_snapshot_check_of_the_docs_runs_as_written(restored):
    """"Picking a snapshot": its commands (a block, or inline `… snapshot status …`), with the snapshot the
    backups' status.json names, on the first control plane (no etcdutl on PATH there, as on a kubeadm host)."""
    section = docs_section("Picking a snapshot")
    scripts = bash_blocks(section) + [c for c in re.findall(r"`([^`\n]+)`", section) if "snapshot status" in c]
    assert any("snapshot status" in script for script in scripts)
    for script in scripts:
        out = restored.cluster.first.sh(script.replace(DOCS_SNAPSHOT, restored.snapshot).replace("FILE", restored.snapshot))
        if "snapshot status" in script:  # its table: HASH | REVISION | …, the revision status.json reported
            assert re.search(rf"^\|[^|]+\|\s+{restored.snapshot_revision}\s+\|", out, re.M), out


@dataclass
class WentBack:
    cluster: Cluster
    restore_credential: bool  # the kubeconfig the second restore issued, accepted after going back
    new_credential: bool      # the one of a new kubeconfig.revision, accepted


@pytest.fixture(scope="module")
def went_back(restored) -> WentBack:
    """After the first restore: ConfigMap `precious` written, a snapshot by the backup script, then a bad
    change (`precious` deleted, `later` written, credentials rotated); a second restore (id r2) from that
    snapshot, the data directories whole, and its credentials step; then docs/recovery.md "Going back",
    block by block on the nodes it names, ending with a new kubeconfig.revision (its rendered step)."""
    cluster, first = restored.cluster, restored.cluster.first
    kubectl(first, "create configmap precious")
    spec = parse_spec(RESTORING)
    first.sh(backup_script(spec, spec.control_planes[0]))
    snapshot = json.loads(first.sh("cat /var/lib/etcd-backups/status.json"))["path"]
    kubectl(first, "delete configmap precious")
    kubectl(first, "create configmap later")
    issue_credentials(first, "3")  # credentials rotated after the snapshot
    steps = restore_steps(LAYOUT, snapshot, id="r2")
    for name in LAYOUT.order():
        result = run_step(cluster, steps, name)
        assert result.returncode == 0, f"{name}:\n{result.stderr}"
    reissued = issue_credentials(first, "3")  # the restore's step 7
    for member in cluster.values():
        assert kubectl(member, "get configmaps precious -o name") == "configmap/precious\n"

    section = docs_section("Going back")
    stop, swap, start = bash_blocks(section)
    for block, members in ((stop, cluster.values()), (swap, [m for m in cluster.values() if m.etcd]),
                           (start, cluster.values())):
        for member in members:
            member.sh(block.replace(DOCS_ID, "r2"), timeout=300)
    for member in cluster.values():
        until(300, lambda: api_ready(member), f"the API server on {member.name} is not ready after going back")
    restore_credential = accepted(first, reissued)
    # The section's last instruction, `pulumi up` of a new kubeconfig.revision: its rendered kubeconfig step.
    told = "change `kubeconfig.revision` and run `pulumi up`" in " ".join(section.split())
    return WentBack(cluster, restore_credential, told and accepted(first, issue_credentials(first, "4")))


def test_going_back_as_the_docs_say_brings_back_the_state_before_the_restore(went_back):
    for member in went_back.cluster.values():
        assert kubectl(member, "get configmaps later precious --ignore-not-found -o name") == "configmap/later\n"


def test_after_going_back_the_credentials_the_restore_issued_are_refused(went_back):
    """Why "Going back" ends with a new kubeconfig.revision: the old data has the credentials of before."""
    assert went_back.restore_credential is False


def test_after_going_back_a_new_kubeconfig_revision_gives_working_credentials(went_back):
    assert went_back.new_credential is True
