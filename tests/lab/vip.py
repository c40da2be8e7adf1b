"""The control-plane VIP as the lab's real-HA scenarios observe it: who holds it (each host's own `ip -o addr`) and
whether the real API server answers through it (the real curl on a worker: any HTTP answer, even 401/403, is the API
server answering)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


def holders(cluster, vip: str, hosts) -> dict[str, str]:
    """Host → the interface VIP is on."""
    found = {}
    for host in hosts:
        for line in cluster.lab.ssh(host, "ip -o -4 addr show").stdout.splitlines():
            fields = line.split()
            if fields[3].split("/")[0] == vip:
                found[host] = fields[1]
    return found


def api_check(vip: str, port: int) -> str:
    return f"curl -sk --max-time 1 -o /dev/null -w '%{{http_code}}' https://{vip}:{port}/readyz"


def api_answers(cluster, client: str, vip: str, port: int) -> bool:
    return cluster.lab.ssh(client, api_check(vip, port), check=False).stdout.strip() not in ("", "000")


@dataclass
class Failover:
    stopped: float            # when the holder was stopped (epoch seconds)
    answered: list[float]     # when the API answered through the VIP
    polls: int

    @property
    def longest_outage(self) -> float:
        return max(b - a for a, b in zip(self.answered, self.answered[1:]))

    @property
    def answered_before_and_after(self) -> bool:
        return bool(self.answered) and self.answered[0] < self.stopped < self.answered[-1]


def stop_holder_while_polling(cluster, client: str, vip: str, port: int, holder: str, seconds: int) -> Failover:
    """Poll the API through VIP from CLIENT every 0.2 s for SECONDS; 5 s in, stop HOLDER's machine."""
    script = (f"end=$((SECONDS + {seconds})); while [ $SECONDS -lt $end ]; do "
              f"c=$({api_check(vip, port)}); echo \"$(date +%s.%N) $c\"; sleep 0.2; done")
    out: list[str] = []
    poller = threading.Thread(target=lambda: out.append(cluster.lab.ssh(client, script, check=False).stdout))
    poller.start()
    time.sleep(5)
    stopped = time.time()
    cluster.lab.stop_host(holder)
    poller.join()
    samples = [line.split(" ", 1) if " " in line else (line, "") for line in out[0].splitlines()]
    return Failover(stopped, [float(t) for t, code in samples if code not in ("", "000")], len(samples))
