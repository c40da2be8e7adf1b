"""Prints the upstream tools this run built and how long each took (captured output would hide it); the lab's
kubelet stand-in as a module for the tests of its functions."""

import importlib.util
from pathlib import Path

import pytest

from tests.upstream_tools import BUILDS

KUBELET_STANDIN = Path(__file__).resolve().parent / "lab" / "standins" / "kubelet.py"


def pytest_terminal_summary(terminalreporter):
    if BUILDS:
        terminalreporter.section("upstream tools built")
        for line in BUILDS:
            terminalreporter.write_line(f"built {line}")


@pytest.fixture
def kubelet_standin(tmp_path, monkeypatch):
    """tests/lab/standins/kubelet.py loaded afresh (its caches empty), keeping its state under tmp_path."""
    spec = importlib.util.spec_from_file_location("kubelet_standin_under_test", KUBELET_STANDIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "STATE", tmp_path)
    return module
