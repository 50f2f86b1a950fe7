"""The programs pods run (pool/files), loaded as a pod runs them: from one directory, so
that their imports of each other (pod_token) resolve as they do in the pod."""

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from tests.render import REPO

FILES = REPO / "pool" / "files"


def load(name: str) -> ModuleType:
    if str(FILES) not in sys.path:
        sys.path.append(str(FILES))  # after everything else: a pod program shadows nothing
    spec = importlib.util.spec_from_file_location(name, FILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def with_stand_ins(directory: Path, script: str, stand_ins: dict[str, str], **env: str) -> tuple[Path, dict]:
    """One of the pod scripts (pool/files) copied into `directory`, and the environment to
    run it in: `stand_ins` (command name: its text) first on PATH, STATE naming `directory`
    (where stand-ins note what they were asked), and `env`."""
    from pool.roles.shared import pod_script
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    for name, text in stand_ins.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    copy = directory / script
    copy.write_text(pod_script(script))
    return copy, {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(directory), **env}
