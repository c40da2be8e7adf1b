"""Prints the upstream tools this run built and how long each took (captured output would hide it)."""

from tests.upstream_tools import BUILDS


def pytest_terminal_summary(terminalreporter):
    if BUILDS:
        terminalreporter.section("upstream tools built")
        for line in BUILDS:
            terminalreporter.write_line(f"built {line}")
