"""The programs pods run (pool/files), loaded as a pod runs them: from one directory, so
that their imports of each other (pod_token) resolve as they do in the pod."""

import importlib.util
import sys
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
