"""Real time passing for the lab's real programs: the machine's clock stepped forward, then back.

kubeadm's join material expires by the wall clock of the real kube-apiserver (its bootstrap-token authenticator
rejects a token whose `expiration` has passed: plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go
@v1.36.4). The lab's hosts are namespaces of this machine and share its CLOCK_REALTIME. A time namespace offsets
only CLOCK_MONOTONIC and CLOCK_BOOTTIME (time_namespaces(7)), and libfaketime's LD_PRELOAD never reaches the real
kubeadm, kube-apiserver and kube-controller-manager: they are static Go binaries that read the clock through the
vDSO. So a scenario that needs hours to pass steps the machine's clock (clock_settime, CAP_SYS_TIME) and steps
it back when it ends, to the wall time it left plus the monotonic time spent: the machine's clock ends where it
would have been. Only with KCLAB_MOVE_CLOCK=1 (.ci/run sets it on its own machine): on a workstation, a clock
that jumps for a minute is not the lab's to decide. And only with no other lab stream beside (pytest-xdist's `-n`):
its API servers would see the day pass too, its tokens expire and its nodes' leases lapse. The modules that move the
clock are marked `moves_clock`; .ci/run runs them alone, after the streams.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

import pytest

if os.environ.get("KCLAB_MOVE_CLOCK") != "1":
    WHY_NOT = ("steps this machine's clock forward (2 h, a day) for some minutes: set KCLAB_MOVE_CLOCK=1 to allow it "
               "(.ci/run does)")
elif int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    WHY_NOT = ("steps this machine's clock, which the other lab streams of this run (pytest -n) share: run the "
               "modules marked moves_clock alone (.ci/run does)")
else:
    WHY_NOT = None
ALLOWED = WHY_NOT is None


def require_permission() -> None:
    if WHY_NOT:
        pytest.skip(WHY_NOT)


@contextlib.contextmanager
def moved_forward(seconds: float) -> Iterator[None]:
    """The machine's wall clock SECONDS ahead inside the block, exactly back (plus the time spent) after it."""
    require_permission()
    left_wall, left_monotonic = time.time(), time.monotonic()
    time.clock_settime(time.CLOCK_REALTIME, left_wall + seconds)
    try:
        yield
    finally:
        time.clock_settime(time.CLOCK_REALTIME, left_wall + (time.monotonic() - left_monotonic))
