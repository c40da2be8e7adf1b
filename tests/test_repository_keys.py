"""Issue 14: package repository keys are pinned by fingerprint. A key whose fingerprint is not the
pinned one stops the run naming the repository and both fingerprints; a key already installed is not
replaced by another unless the config pins the new one; dnf never imports a key itself.

packages.sh's functions run for real as root in a private mount namespace (tmpfs over /etc/apt,
/etc/yum.repos.d, /etc/pki and rpm's database), with Debian's gpg and rpm, against keys made here and
served as file:// URLs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.config import ConfigError, parse_spec
from components.scripts import COMPONENTS_DIR
from harness import base_config, inner_script, run_program, script_param

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace needs root")
PKGS_K8S_IO = "DE15B14486CD377B9E876E1A234654DA9A296436"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Two signing keys, 'a' and 'b': (armored public key file, fingerprint)."""
    if shutil.which("gpg") is None:
        pytest.fail("gpg is not installed (.ci/setup installs Debian's gnupg)")
    base = tmp_path_factory.mktemp("keys")
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    found = {}
    try:
        for name in ("a", "b"):
            subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"repo {name} <{name}@invalid>",
                            "ed25519", "sign", "never"], env=env, check=True, capture_output=True)
            listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys", f"{name}@invalid"], env=env,
                                     check=True, capture_output=True, text=True).stdout
            fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
            exported = subprocess.run(["gpg", "--batch", "--armor", "--export", f"{name}@invalid"], env=env,
                                      check=True, capture_output=True, text=True).stdout
            (base / f"{name}.asc").write_text(exported)
            found[name] = (base / f"{name}.asc", fingerprint)
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)
    return found


def run(tmp_path: Path, commands: str, **params: str) -> subprocess.CompletedProcess:
    """common.sh and packages.sh with PARAMS, then COMMANDS, in a private mount namespace; prints
    'keyring: FINGERPRINTS' for the kubernetes keyring after."""
    values = {"K8S_VERSION": "1.36.4", "K8S_MINOR": "1.36", "K8S_REPO_URL": "", "RUNTIME": "containerd",
              "CRIO_REPO_URL": "", "K8S_KEY_FINGERPRINT": "", "CRIO_KEY_FINGERPRINT": "", **params}
    script = "\n".join([
        "set -euo pipefail",
        *(f"{key}='{value}'" for key, value in values.items()),
        (COMPONENTS_DIR / "common.sh").read_text(),
        (COMPONENTS_DIR / "packages.sh").read_text(),
        commands,
    ])
    (tmp_path / "script.sh").write_text(script)
    # rpm's database is where %_dbpath says (Debian's rpm: ~/.rpmdb)
    setup = ("set -e; for d in /etc/apt /etc/yum.repos.d /etc/pki \"$(rpm --eval %_dbpath 2>/dev/null || echo /var/lib/rpm)\"; "
             "do mkdir -p \"$d\"; mount -t tmpfs tmpfs \"$d\"; done; exec bash \"$0\"")
    return subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", setup, str(tmp_path / "script.sh")],
                          capture_output=True, text=True, timeout=120)


APT = 'apt_repository kubernetes "file://{dir}/" "{pinned}"; cat /etc/apt/sources.list.d/kubernetes.list; ' \
      'echo "keyring: $(key_fingerprints /etc/apt/keyrings/kubernetes-apt-keyring.gpg)"'


def serve(tmp_path: Path, key: Path) -> Path:
    """A repository directory whose Release.key is KEY."""
    directory = tmp_path / "repo"
    directory.mkdir(exist_ok=True)
    shutil.copy(key, directory / "Release.key")
    return directory


@needs_root
def test_a_key_with_the_pinned_fingerprint_is_installed(tmp_path, keys):
    key, fingerprint = keys["a"]
    result = run(tmp_path, APT.format(dir=serve(tmp_path, key), pinned=fingerprint))
    assert result.returncode == 0, result.stderr
    assert f"keyring: {fingerprint}" in result.stdout
    assert "signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg" in result.stdout


@needs_root
def test_a_key_with_another_fingerprint_stops_the_run_naming_both(tmp_path, keys):
    (key, served), (_, pinned) = keys["b"], keys["a"]
    result = run(tmp_path, APT.format(dir=serve(tmp_path, key), pinned=pinned))
    assert result.returncode != 0
    assert "repository kubernetes" in result.stderr and served in result.stderr and pinned in result.stderr
    assert "keyring:" not in result.stdout  # nothing installed, no source written


@needs_root
def test_an_installed_key_is_not_replaced_by_another_without_a_pin(tmp_path, keys):
    (first, installed), (second, served) = keys["a"], keys["b"]
    repo = tmp_path / "repo"
    result = run(tmp_path, f"""
{APT.format(dir=serve(tmp_path, first), pinned="")}
cp {second} {repo}/Release.key   # the repository (or whoever answers for it) now serves another key
({APT.format(dir=repo, pinned="")}) || echo "refused: $?"
echo "keyring: $(key_fingerprints /etc/apt/keyrings/kubernetes-apt-keyring.gpg)"
""")
    assert "trusting the key" in result.stderr and "refused:" in result.stdout, result.stderr
    assert installed in result.stderr.split("refused")[-1] and served in result.stderr
    assert result.stdout.splitlines()[-1] == f"keyring: {installed}"


@needs_root
def test_the_same_key_fetched_again_is_kept(tmp_path, keys):
    key, fingerprint = keys["a"]
    repo = serve(tmp_path, key)
    result = run(tmp_path, APT.format(dir=repo, pinned="") + "\n" + APT.format(dir=repo, pinned=""))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(f"keyring: {fingerprint}") == 2


@needs_root
def test_a_newly_pinned_key_replaces_the_installed_one(tmp_path, keys):
    (first, _), (second, pinned) = keys["a"], keys["b"]
    repo = tmp_path / "repo"
    result = run(tmp_path, f"""
{APT.format(dir=serve(tmp_path, first), pinned="")}
cp {second} {repo}/Release.key
{APT.format(dir=repo, pinned=pinned)}
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"keyring: {pinned}"


@needs_root
@pytest.mark.parametrize("repo_url,configured,expected", [
    ("", "", PKGS_K8S_IO),                                   # pkgs.k8s.io itself: its key
    ("https://mirror.example/k8s/", "", ""),                 # a mirror: pinned only when configured
    ("https://mirror.example/k8s/", "AB" * 20, "AB" * 20),
    ("", "CD" * 20, "CD" * 20),                              # a rotated upstream key, pinned by the config
])
def test_which_fingerprint_the_kubernetes_repository_is_held_to(tmp_path, repo_url, configured, expected):
    result = run(tmp_path, 'echo "pinned: $(kubernetes_key_fingerprint)"', K8S_REPO_URL=repo_url,
                 K8S_KEY_FINGERPRINT=configured)
    assert result.stdout == f"pinned: {expected}\n", result.stderr


DNF = 'dnf_repository kubernetes Kubernetes "file://{dir}/" "file://{dir}/Release.key" "{pinned}" "exclude=kubeadm"'


@needs_root
def test_dnf_gets_an_imported_verified_key_never_a_url(tmp_path, keys):
    if shutil.which("rpm") is None:
        pytest.fail("rpm is not installed (.ci/setup installs Debian's)")
    key, fingerprint = keys["a"]
    step = DNF.format(dir=serve(tmp_path, key), pinned=fingerprint)
    result = run(tmp_path, f"{step}\n{step}  # a retry converges\n"
                           "cat /etc/yum.repos.d/kubernetes.repo; rpm -q gpg-pubkey --qf '%{SUMMARY}\\n'")
    assert result.returncode == 0, result.stderr
    repo = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert repo["gpgkey"] == "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-kubeadm-cluster-kubernetes"
    assert repo["gpgcheck"] == "1" and repo["exclude"] == "kubeadm"
    assert "repo a <a@invalid> public key" in result.stdout


@needs_root
def test_dnf_refuses_a_key_with_another_fingerprint_before_importing_it(tmp_path, keys):
    if shutil.which("rpm") is None:
        pytest.fail("rpm is not installed (.ci/setup installs Debian's)")
    (key, served), (_, pinned) = keys["b"], keys["a"]
    result = run(tmp_path, f"({DNF.format(dir=serve(tmp_path, key), pinned=pinned)}) "
                            "|| { rpm -q gpg-pubkey || true; ls /etc/yum.repos.d; }")
    assert served in result.stderr and pinned in result.stderr
    assert result.stdout == "package gpg-pubkey is not installed\n"  # and no repository file


def test_the_configured_fingerprints_reach_the_preparation():
    config = base_config(containerRuntime={"type": "cri-o"}, packageRepositories={
        "kubernetes": {"keyFingerprint": "de15 b144 86cd 377b 9e87 6e1a 2346 54da 9a29 6436"},
        "cri-o": {"url": "https://mirror.example/cri-o/", "keyFingerprint": "AB" * 20}})
    script = inner_script(run_program(config).named("cp1-prepare").plain("create"))
    assert script_param(script, "K8S_KEY_FINGERPRINT") == PKGS_K8S_IO
    assert script_param(script, "K8S_REPO_URL") == ""  # no url: the default repository
    assert script_param(script, "CRIO_KEY_FINGERPRINT") == "AB" * 20
    assert script_param(script, "CRIO_REPO_URL") == "https://mirror.example/cri-o/"


@pytest.mark.parametrize("value", ["DE15B144", "G" * 40, 42])
def test_a_malformed_fingerprint_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"packageRepositories\.kubernetes\.keyFingerprint"):
        parse_spec(base_config(packageRepositories={"kubernetes": {"keyFingerprint": value}}))


def test_a_plain_url_still_configures_a_mirror():
    spec = parse_spec(base_config(packageRepositories={"kubernetes": "https://mirror.example/k8s/v{minor}/deb/"}))
    assert spec.package_repository("kubernetes", "") == "https://mirror.example/k8s/v1.36/deb/"
    assert spec.package_key_fingerprint("kubernetes") == ""
