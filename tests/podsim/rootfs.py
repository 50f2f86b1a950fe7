"""The HTCondor root filesystem the emulated pods run in: Debian with the `condor` package,
built with debootstrap on first use and cached outside the repository.

HTCONDOR_POOL_SUITE picks the HTCondor: `trixie` (HTCondor 23.9, the default) or `sid`
(HTCondor 25.x). HTCONDOR_POOL_CACHE moves the cache (default ~/.cache/htcondor-pool).
"""

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

SUITES = ("trixie", "sid")
# The HTCondor each suite's `condor` package is, as the README's Versions names them: each
# test pass checks its pods run this one, so that one image cannot pass as the other.
HTCONDOR_SERIES = {"trixie": "23.9.", "sid": "25."}
# Bump when the build recipe changes, so stale caches are not reused.
RECIPE_VERSION = 2
SUBMITTER = "submitter"
# The official images' condor user and group (build/docker/services/base/
# container-install-htcondor.sh), made before the package would pick its own: pods that
# run as the condor user name it by number (pool/security.py).
CONDOR_ID = 64
HOST_PACKAGES = {"debootstrap": "debootstrap", "ip": "iproute2", "nft": "nftables",
                 "unshare": "util-linux", "nsenter": "util-linux"}


class PrerequisiteError(RuntimeError):
    pass


def suite() -> str:
    chosen = os.environ.get("HTCONDOR_POOL_SUITE", "trixie")
    if chosen not in SUITES:
        raise PrerequisiteError(f"HTCONDOR_POOL_SUITE={chosen!r} is not allowed; expected one of {SUITES}")
    return chosen


def cache_dir() -> Path:
    return Path(os.environ.get("HTCONDOR_POOL_CACHE", Path.home() / ".cache" / "htcondor-pool"))


def debian_mirror() -> str:
    """The Debian mirror apt on this host already uses."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = source.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and words[1].rstrip("/").endswith("/debian"):
                return words[1]
            if words[:1] == ["deb"]:
                uri = next((w for w in words[1:] if "://" in w), "")
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    return "http://deb.debian.org/debian"


def ensure_host_tools() -> None:
    """As root, install what the emulator needs on the host; otherwise say what is missing."""
    missing = sorted({pkg for tool, pkg in HOST_PACKAGES.items() if not shutil.which(tool)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise PrerequisiteError(f"the pod emulator needs root and these packages: {' '.join(missing)}")
    _log(f"installing host packages: {' '.join(missing)}")
    apt_get_install(missing)


# How long apt-get waits for dpkg's lock before it gives up: the emulator's root filesystem and
# the cluster's build each install host packages, and a person may start both at once.
APT_LOCK_TIMEOUT_SECONDS = 600


def apt_get_install(packages: list[str]) -> None:
    """Install Debian packages on the host (as root), waiting for dpkg's lock if another
    install holds it instead of failing at once."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-o", f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT_SECONDS}"]
    subprocess.run([*apt, "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([*apt, "install", "-y", "-qq", *packages], check=True, env=env, stdout=subprocess.DEVNULL)


def ensure_rootfs(chosen: str | None = None) -> Path:
    """The cached root filesystem for a suite, built if missing. Safe to call concurrently."""
    chosen = chosen or suite()
    ensure_host_tools()
    root = cache_dir() / f"rootfs-{chosen}-v{RECIPE_VERSION}"
    if (root / ".complete").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".lock-{chosen}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".complete").exists():
            _build(chosen, root)
    return root


def _build(chosen: str, root: Path) -> None:
    work = root.with_name(root.name + ".building")
    _remove_tree(work)
    mirror = debian_mirror()
    _log(f"building the {chosen} HTCondor root filesystem in {root} (a few minutes, once)")
    subprocess.run(["debootstrap", "--variant=minbase", "trixie", str(work), mirror], check=True,
                   stdout=subprocess.DEVNULL)
    apt = ["apt-get", "-o", "Acquire::Check-Valid-Until=false", "-o", "Dpkg::Use-Pty=0"]
    if chosen == "sid":
        # sid on this mirror is a frozen snapshot whose Release file has expired.
        (work / "etc/apt/sources.list").write_text(f"deb {mirror} sid main\n")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LANG": "C.UTF-8", "HOME": "/root"}
    subprocess.run(["mount", "-t", "proc", "proc", str(work / "proc")], check=True)
    try:
        subprocess.run(["chroot", str(work), *apt, "update", "-qq"], check=True, env=env)
        subprocess.run(["chroot", str(work), "groupadd", "-g", str(CONDOR_ID), "-r", "condor"], check=True, env=env)
        subprocess.run(["chroot", str(work), "useradd", "-r", "-g", "condor", "-u", str(CONDOR_ID),
                        "-d", "/var/lib/condor", "-s", "/usr/sbin/nologin", "condor"], check=True, env=env)
        installed = subprocess.run(
            ["chroot", str(work), *apt, "install", "-y", "-qq", "--no-install-recommends",
             "condor", "procps"], env=env, stdout=subprocess.DEVNULL)
        # From sid, an unrelated package (cryptsetup) can stay unconfigured while HTCondor is
        # fine: accept the install when HTCondor itself runs.
        version = subprocess.run(["chroot", str(work), "condor_version"], env=env,
                                 capture_output=True, text=True)
        if version.returncode != 0 or (installed.returncode != 0 and chosen != "sid"):
            raise PrerequisiteError(f"installing condor into {work} failed: {version.stderr}")
        subprocess.run(["chroot", str(work), "useradd", "--create-home", "--shell", "/bin/sh",
                        SUBMITTER], check=True, env=env)
        subprocess.run(["chroot", str(work), "apt-get", "clean"], check=True, env=env)
    finally:
        subprocess.run(["umount", "-l", str(work / "proc")], check=False)
    (work / ".complete").write_text(version.stdout)
    _remove_tree(root)
    work.rename(root)
    _log(version.stdout.strip().splitlines()[0])


def _remove_tree(path: Path) -> None:
    """Remove a tree that has nothing mounted inside it (refuses otherwise)."""
    if not path.exists():
        return
    mounts = Path("/proc/self/mounts").read_text().split("\n")
    inside = [m for m in mounts if len(m.split()) > 1 and m.split()[1].startswith(str(path) + "/")]
    if inside:
        raise PrerequisiteError(f"refusing to remove {path}: mounted inside: {inside}")
    shutil.rmtree(path)


def _log(message: str) -> None:
    print(f"[podsim] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    print(ensure_rootfs(sys.argv[1] if len(sys.argv) > 1 else None))
