"""The package's plugin: Pulumi runs `python` on this folder with the engine's address, and
it serves htcondor:index:Pool (pool/package.py) from the checkout it sits in."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, which holds `pool`

from pool.package import serve  # noqa: E402 (once the checkout is on the path)

serve()
