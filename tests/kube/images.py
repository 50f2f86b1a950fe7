"""Container images for the cluster, made locally and imported into containerd under a
local name: no registry is reachable, and none is needed.

- The HTCondor image is the emulator's Debian root filesystem (tests/podsim/rootfs.py,
  HTCONDOR_POOL_SUITE picks trixie or sid) as one layer.
- The pod sandbox ("pause") image is the pause binary built from Kubernetes' sources.

Each is an OCI image archive (oci-layout, index.json, blobs), cached by content.
"""

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.podsim.rootfs import cache_dir, ensure_rootfs, suite

# Bump when the archive layout changes.
RECIPE_VERSION = 1
REPOSITORY = "htcondor-pool.local/htcondor"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Image:
    name: str  # e.g. htcondor-pool.local/htcondor:trixie-23.9.6-0a1b2c3d
    archive: Path


def _digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return f"sha256:{sha.hexdigest()}", path.stat().st_size


def _blob(blobs: Path, data: bytes) -> dict:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    (blobs / digest.split(":")[1]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def write_archive(archive: Path, name: str, layer_tar: Path, config: dict) -> None:
    """An OCI image archive of one uncompressed layer, named `name` for containerd."""
    with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
        root = Path(tmp)
        blobs = root / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        layer_digest, layer_size = _digest(layer_tar)
        shutil.move(layer_tar, blobs / layer_digest.split(":")[1])
        image_config = {"architecture": "amd64", "os": "linux", "config": config,
                        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
        config_blob = _blob(blobs, json.dumps(image_config).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_blob},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                "digest": layer_digest, "size": layer_size}]}
        manifest_blob = _blob(blobs, json.dumps(manifest).encode())
        tag = name.rsplit(":", 1)[1]
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_blob,
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}}]}
        (root / "index.json").write_text(json.dumps(index))
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        partial = archive.with_suffix(".partial")
        with tarfile.open(partial, "w") as out:
            for entry in ("oci-layout", "index.json", "blobs"):
                out.add(root / entry, arcname=entry)
        partial.rename(archive)


def htcondor_image() -> Image:
    """The HTCondor image of the selected suite, built once per root filesystem."""
    rootfs = ensure_rootfs()
    stamp = (rootfs / ".complete").read_text()
    version = stamp.split()[1] if stamp.startswith("$CondorVersion:") else "unknown"
    # The root filesystem's directory names its recipe's version: a new recipe, a new image.
    content = hashlib.sha256(f"{RECIPE_VERSION}\n{rootfs.name}\n{stamp}".encode()).hexdigest()[:8]
    name = f"{REPOSITORY}:{suite()}-{version}-{content}"
    archive = cache_dir() / "images" / f"htcondor-{suite()}-{version}-{content}.oci.tar"
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        layer = archive.with_suffix(".layer.tar")
        # --one-file-system: never follow a mount into the copy (the root filesystem is
        # not mounted while unused, but be safe).
        subprocess.run(["tar", "--one-file-system", "--numeric-owner", "--xattrs", "--exclude=./.complete",
                        "-C", str(rootfs), "-cf", str(layer), "."], check=True)
        write_archive(archive, name, layer, {"Env": [f"PATH={PATH}"], "WorkingDir": "/"})
    return Image(name, archive)


def pause_image(pause_binary: str, name: str) -> Image:
    archive = cache_dir() / "images" / f"pause-{name.rsplit(':', 1)[1]}-r{RECIPE_VERSION}.oci.tar"
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        layer = archive.with_suffix(".layer.tar")
        with tarfile.open(layer, "w") as tar:
            info = tar.gettarinfo(pause_binary, arcname="pause")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(pause_binary, "rb") as f:
                tar.addfile(info, f)
        write_archive(archive, name, layer, {"Entrypoint": ["/pause"], "User": "65535:65535"})
    return Image(name, archive)
