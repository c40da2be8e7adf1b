"""The lab's two streams (.ci/run: pytest-xdist workers side by side): nothing one stream makes is another's."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import images

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "tests" / "lab"


def lab_module_names(module: str, names: str, **env: str) -> dict:
    """NAMES (comma-separated) of tests/lab/MODULE as a fresh process with ENV sees them."""
    program = (f"import json, sys; sys.path.insert(0, {str(LAB)!r}); import {module}; "
               f"print(json.dumps({{n: str(getattr({module}, n)) for n in {names!r}.split(',')}}))")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "KCLAB_"))}
    done = subprocess.run([sys.executable, "-c", program], env={**environment, **env}, capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return json.loads(done.stdout)


def test_each_xdist_worker_is_a_lab_stream_with_namespaces_and_a_work_directory_of_its_own():
    names = "PREFIX,WORK,SWITCH_NS,CLIENT_NS"
    alone = lab_module_names("hosts", names)
    streams = [lab_module_names("hosts", names, PYTEST_XDIST_WORKER=worker) for worker in ("gw0", "gw1")]
    assert alone["PREFIX"] == "kclab" and alone["CLIENT_NS"] == "kclab-client"
    assert [s["PREFIX"] for s in streams] == ["kclab0", "kclab1"]
    for name in names.split(","):
        assert len({alone[name], *(s[name] for s in streams)}) == 3, name


def test_the_clock_moves_only_with_permission_and_no_other_stream_beside():
    assert lab_module_names("clock", "ALLOWED") == {"ALLOWED": "False"}
    assert lab_module_names("clock", "ALLOWED", KCLAB_MOVE_CLOCK="1") == {"ALLOWED": "True"}
    assert lab_module_names("clock", "ALLOWED", KCLAB_MOVE_CLOCK="1", PYTEST_XDIST_WORKER="gw0",
                            PYTEST_XDIST_WORKER_COUNT="1") == {"ALLOWED": "True"}
    beside = lab_module_names("clock", "ALLOWED,WHY_NOT", KCLAB_MOVE_CLOCK="1", PYTEST_XDIST_WORKER="gw1",
                              PYTEST_XDIST_WORKER_COUNT="2")
    assert beside["ALLOWED"] == "False" and "moves_clock" in beside["WHY_NOT"]


def marked_moves_clock(module: Path) -> bool:
    return re.search(r"^pytestmark = .*pytest\.mark\.moves_clock", module.read_text(), re.M) is not None


def test_every_module_that_moves_the_clock_is_marked_and_ci_runs_those_alone_after_the_streams():
    for module in LAB.glob("test_*.py"):
        assert marked_moves_clock(module) == ("clock.moved_forward(" in module.read_text()), module.name
    tiers = [line for line in (ROOT / ".ci/run").read_text().replace("\\\n", " ").splitlines()
             if line.strip().startswith("tier ")]
    streams, alone = [t for t in tiers if "moves_clock" in t]
    assert "-n 2" in streams and '-m "not moves_clock"' in streams
    assert "-n " not in alone and re.search(r"-m moves_clock\b", alone)


def test_every_lab_module_has_its_place_in_the_order_the_streams_take_them():
    from tests.lab.conftest import LONGEST_FIRST
    modules = {m.name for m in LAB.glob("test_*.py") if not marked_moves_clock(m)}
    assert sorted(LONGEST_FIRST) == sorted(modules)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs (root)")
def test_removing_a_stream_leaves_the_mounts_of_a_stream_whose_name_it_begins(tmp_path):
    from tests.lab.hosts import remove_stream
    mine, other = tmp_path / ".work-kclabtest", tmp_path / ".work-kclabtest0"
    for work in (mine, other):
        (work / "disk").mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(work / "disk")], check=True)
    try:
        remove_stream("kclabtest", mine)
        assert not mine.exists()
        assert subprocess.run(["mountpoint", "-q", str(other / "disk")]).returncode == 0
    finally:
        for work in (mine, other):
            subprocess.run(["umount", "-l", str(work / "disk")], capture_output=True)


def test_an_image_another_stream_built_meanwhile_is_taken_as_built(tmp_path, monkeypatch):
    """Both streams may build the same image at once; the second to finish finds the layout in place."""
    monkeypatch.setattr(images, "IMAGE_CACHE", tmp_path)
    monkeypatch.setattr(images, "build_crane", lambda: Path("/nonexistent/crane"))
    monkeypatch.setattr(images, "_layer", lambda spec, out: out.write_bytes(b""))
    monkeypatch.setattr(images, "_BuildRegistry", lambda crane, work: type("R", (), {"address": "127.0.0.1:1",
                                                                                     "close": lambda self: None})())
    image = "registry.k8s.io/coredns/coredns:v1.13.1"  # a placeholder: nothing to build for its spec
    layout = tmp_path / f"coredns-v1.13.1-{images._cache_key(image, images.image_spec(image))}"

    def crane(_, *args):
        if args[0] == "pull":  # this build's layout is ready; the other stream's was renamed into place first
            (Path(args[-1]) / "index.json").parent.mkdir(parents=True)
            (Path(args[-1]) / "index.json").write_text("mine")
            layout.mkdir()
            (layout / "index.json").write_text("theirs")
        return ""
    monkeypatch.setattr(images, "_crane", crane)
    assert images.build_image(image) == layout
    assert (layout / "index.json").read_text() == "theirs"


def test_a_port_refused_for_a_test_stays_refused_whoever_else_binds_ports_meanwhile():
    from tests.lab.test_command_provider import refused_port
    with refused_port() as port:
        for _ in range(2):  # the second after another bind attempt
            with socket.socket() as client:
                assert client.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED
            with socket.socket() as other, pytest.raises(OSError) as taken:
                other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                other.bind(("127.0.0.1", port))
            assert taken.value.errno == errno.EADDRINUSE


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists() or os.geteuid() != 0, reason="needs root and OpenSSH's sshd")
def test_a_private_sshd_whose_port_was_taken_meanwhile_listens_on_another(tmp_path, monkeypatch):
    from tests.lab import test_command_provider
    with socket.socket() as other_stream:
        other_stream.bind(("127.0.0.1", 0))
        other_stream.listen()
        taken = other_stream.getsockname()[1]
        found_free = iter([taken])
        free_port = test_command_provider.free_port
        monkeypatch.setattr(test_command_provider, "free_port", lambda: next(found_free, None) or free_port())
        sshd = test_command_provider.Sshd(tmp_path)
        try:
            assert sshd.port != taken and sshd.process.poll() is None
            scan = subprocess.run(["ssh-keyscan", "-p", str(sshd.port), "-t", "ed25519", "127.0.0.1"],
                                  capture_output=True, text=True, timeout=30).stdout
            assert sshd.host_key in scan  # our sshd answers there
        finally:
            sshd.stop()
