"""What the lab's kubelet stand-in (tests/lab/standins/kubelet.py) does every second costs little: its loops read
kubelet.conf, check certificates, talk to the API server and read the static pod manifests each second on every node,
and when each of those was an openssl process, a TLS context with the system's roots, a TLS handshake and a YAML
parse, the stand-ins took about half the lab's CPU. Each behaviour here is also the kubelet's (cited in kubelet.py).
"""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import yaml


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed (one day each)."""
    directory = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-days", "1", "-subj", "/CN=kubernetes", "-keyout", "ca.key", "-out", "ca.crt",
            cwd=directory)
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-new", *ec, "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                cwd=directory)
        (directory / f"{name}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "1",
                "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=directory)
    return directory


class ApiServer(http.server.ThreadingHTTPServer):
    """HTTPS that answers every request with {"method": ..., "path": ...}, keeps connections alive (HTTP/1.1),
    counts the connections it accepted and, when told, closes a connection after answering without saying so (as
    a server's idle timeout or a restart does)."""
    daemon_threads = True

    def __init__(self, pki: Path):
        super().__init__(("127.0.0.1", 0), Handler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki / "server.crt", pki / "server.key")
        self.connections, self.requests, self.drop_next = 0, [], False

    def get_request(self):
        connection, address = self.socket.accept()
        self.connections += 1
        return self.context.wrap_socket(connection, server_side=True), address


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append(self.command)
        body = json.dumps({"method": self.command, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.drop_next:
            self.server.drop_next = False
            self.close_connection = True

    do_GET = do_POST = answer

    def log_message(self, *_) -> None:
        pass


@pytest.fixture
def server(pki):
    server = ApiServer(pki)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def kubeconfig(path: Path, pki: Path, port: int) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "default",
        "clusters": [{"name": "default", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                     "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "default", "user": {"client-certificate": str(pki / "client.crt"),
                                               "client-key": str(pki / "client.key")}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}]}))
    return path


def test_the_client_trusts_the_kubeconfigs_ca_and_not_the_systems_roots(kubelet_standin, pki, server, tmp_path):
    client = kubelet_standin.Client(kubeconfig(tmp_path / "kubelet.conf", pki, server.server_port))
    assert client.context.cert_store_stats()["x509_ca"] == 1
    assert client.request("GET", "/api/v1/nodes/n1") == {"method": "GET", "path": "/api/v1/nodes/n1"}


def test_requests_share_one_kept_alive_connection(kubelet_standin, pki, server, tmp_path):
    client = kubelet_standin.Client(kubeconfig(tmp_path / "kubelet.conf", pki, server.server_port))
    for _ in range(3):
        client.request("GET", "/api/v1/pods")
    client.request("POST", "/api/v1/nodes", {"kind": "Node"})
    assert (server.connections, server.requests) == (1, ["GET", "GET", "GET", "POST"])


def test_a_get_goes_again_on_a_new_connection_when_the_server_closed_the_kept_alive_one(
        kubelet_standin, pki, server, tmp_path):
    client = kubelet_standin.Client(kubeconfig(tmp_path / "kubelet.conf", pki, server.server_port))
    server.drop_next = True
    client.request("GET", "/api/v1/pods")
    assert client.request("GET", "/api/v1/pods") == {"method": "GET", "path": "/api/v1/pods"}
    assert server.connections == 2


def test_a_post_on_a_connection_the_server_closed_fails_and_is_not_sent_twice(kubelet_standin, pki, server, tmp_path):
    """A request that is not replayable is not sent again (net/http/transport.go@go1.26.8
    persistConn.shouldRetryRequest): the kubelet's loops try again a second later, on a new connection."""
    client = kubelet_standin.Client(kubeconfig(tmp_path / "kubelet.conf", pki, server.server_port))
    server.drop_next = True
    client.request("GET", "/api/v1/pods")
    with pytest.raises(OSError):
        client.request("POST", "/api/v1/nodes", {"kind": "Node"})
    client.request("POST", "/api/v1/nodes", {"kind": "Node"})
    assert server.requests == ["GET", "POST"]
    assert server.connections == 2


def test_client_for_keeps_a_client_until_a_file_it_was_made_from_changes(kubelet_standin, pki, server, tmp_path):
    config = kubeconfig(tmp_path / "kubelet.conf", pki, server.server_port)
    pem = tmp_path / "kubelet-client-current.pem"
    pem.write_bytes((pki / "client.crt").read_bytes() + (pki / "client.key").read_bytes())
    first = kubelet_standin.client_for(config, pem)
    first.request("GET", "/healthz")
    assert kubelet_standin.client_for(config, pem) is first
    pem.write_bytes(pem.read_bytes() + b"\n")  # a rotated certificate behind the same path
    rotated = kubelet_standin.client_for(config, pem)
    assert rotated is not first and first.connection is None
    config.write_text(config.read_text() + "preferences: {}\n")  # kubeadm's kubelet-finalize rewrites kubelet.conf
    assert kubelet_standin.client_for(config, pem) is not rotated


def test_a_certificate_is_read_once_and_valid_until_its_not_after(kubelet_standin, pki, monkeypatch):
    pem = (pki / "client.crt").read_bytes()
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601"], input=pem,
                         capture_output=True, check=True).stdout.decode().strip().removeprefix("notAfter=")
    not_after = kubelet_standin.datetime.datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp()
    runs = []
    real_run = subprocess.run
    monkeypatch.setattr(kubelet_standin.subprocess, "run", lambda *a, **k: runs.append(a[0]) or real_run(*a, **k))
    assert kubelet_standin.not_after(pem) == not_after
    for now, valid in ((not_after - 3600, True), (not_after, True), (not_after + 1, False)):
        monkeypatch.setattr(kubelet_standin.time, "time", lambda: now)
        assert kubelet_standin.cert_valid(pem) is valid
    assert len(runs) == 1
    assert kubelet_standin.cert_valid(b"not a certificate") is False and len(runs) == 2


MANIFEST = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd", "namespace": "kube-system"},
            "spec": {"hostNetwork": True, "containers": [{"name": "etcd", "image": "registry.lab/etcd:3.6.8-0"}]}}


def test_a_static_pod_manifest_is_parsed_again_only_when_its_text_changes(kubelet_standin, tmp_path, monkeypatch):
    parses = []
    real_load = kubelet_standin.yaml.safe_load
    monkeypatch.setattr(kubelet_standin.yaml, "safe_load", lambda text: parses.append(1) or real_load(text))
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "etcd.yaml").write_text(yaml.safe_dump(MANIFEST))
    pods = kubelet_standin.StaticPods(manifests, "c1", "198.18.0.11", "unix:///dev/null")
    first = pods.read()
    assert pods.read() == first and len(parses) == 1
    changed = {**MANIFEST, "spec": {**MANIFEST["spec"], "priorityClassName": "system-node-critical"}}
    (manifests / "etcd.yaml").write_text(yaml.safe_dump(changed))
    second = pods.read()
    assert len(parses) == 2
    source = str(manifests / "etcd.yaml")
    assert second[source][0] == changed and second[source][1] != first[source][1]
