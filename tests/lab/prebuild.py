"""tests/lab/prebuild.py — build every upstream program the real lab configs need, before the lab needs them.

.ci/run starts it beside tier 1, which leaves most of the CPU idle (waiting on real API servers, etcd, keepalived),
so that the lab tier finds its binaries built instead of building each on first use in some module's setup. It
asks for them through the code the lab itself uses — each real config's versions as LabCluster gives them, the
packages' files (hosts.real_kubernetes_packages, real_runtime_packages, crictl of each minor) and each image's
files (images.images_for, image_spec) — so it builds what the lab would, and nothing it would not. A build that
fails here is reported and left to the lab, whose test then fails naming it. Tools are cached by version
(tests/upstream_tools.py), and a build another process already runs is waited for, not repeated.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent), str(HERE)]

import images  # noqa: E402
from cluster import LabCluster  # noqa: E402
from components.config import DEFAULT_KUBERNETES_VERSION  # noqa: E402
from hosts import real_kubernetes_packages, real_runtime_packages  # noqa: E402
from tests.containerd_tools import build_crictl  # noqa: E402
from tests.upstream_tools import BUILDS  # noqa: E402


def lab_builds() -> list[tuple[str, object]]:
    """(what, how to build it) for every real config under configs/, versions other than tier 1's first."""
    versions: list[str] = []
    image_configs: list[tuple[str, dict]] = []
    for path in sorted((HERE / "configs").glob("*.yaml")):
        lab = LabCluster(path).lab
        if lab.real:
            versions += [v for v in lab.versions if v not in versions]
            image_configs += [(f"{path.name} at {v}", {**lab.config, "kubernetesVersion": v}) for v in lab.versions]
    # Tier 1 builds the default version's programs meanwhile: the others first.
    versions.sort(key=lambda v: v == DEFAULT_KUBERNETES_VERSION)
    image_configs.sort(key=lambda item: item[1]["kubernetesVersion"] == DEFAULT_KUBERNETES_VERSION)
    builds: list[tuple[str, object]] = [(f"kubeadm, kubectl {v}", lambda v=v: real_kubernetes_packages(v))
                                        for v in versions]
    builds += [(f"crictl {m}", lambda m=m: build_crictl(f"v{m}.0"))
               for m in dict.fromkeys(".".join(v.split(".")[:2]) for v in versions)]
    builds += [("containerd", real_runtime_packages), ("crane", images.build_crane)]
    builds += [(f"the images of {name}",
                lambda config=config: [images.image_spec(image) for image in images.images_for(config)])
               for name, config in image_configs]
    return builds


def main() -> int:
    started = time.monotonic()
    failed = 0
    for what, build in lab_builds():
        try:
            build()
        except (Exception, pytest.fail.Exception):  # go_tool reports a failed build with pytest.fail
            failed += 1
            print(f"prebuild: {what} failed (the lab builds it again on first use):\n{traceback.format_exc()}",
                  file=sys.stderr)
    for line in BUILDS:
        print(f"prebuild: built {line}", file=sys.stderr)
    print(f"prebuild: {len(BUILDS)} built, {failed} failed, in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
