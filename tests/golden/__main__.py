"""`python -m tests.golden write [--from COMMIT]`: render the four stack configs and write
their golden files (tests/golden/*.json), from COMMIT's program (taken with `git archive`,
rendered by that commit's own tests/render.py) or the working tree's. See
tests/golden/__init__.py and tests/test_render_identity.py."""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.golden import CONFIGS, HERE, dumps, path, snapshot

REPO = HERE.parents[1]
# What rendering a commit's program needs of it: the project, its stack files, the program
# and the render harness.
RENDERED_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.gpu-example.yaml", "__main__.py", "pool",
                  "tests/__init__.py", "tests/render.py")


def write(out: Path) -> None:
    for config in CONFIGS:
        target = out / path(config).name
        target.write_text(dumps(snapshot(config)))
        print(f"wrote {target}")


def write_from(commit: str) -> None:
    """The commit's program in a temporary directory, with this snapshot code beside its
    tests/render.py, run there in a process of its own (its `pool`, not this tree's)."""
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, *RENDERED_FILES],
                                 capture_output=True)
        if archive.returncode != 0:
            sys.exit(f"git archive {commit} failed: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        shutil.copytree(HERE, Path(tmp) / "tests" / "golden", ignore=shutil.ignore_patterns("*.json", "__pycache__"))
        subprocess.run([sys.executable, "-m", "tests.golden", "write", "--out", str(HERE)], cwd=tmp, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__.split(":", 1)[1])
    parser.add_argument("command", choices=["write"])
    parser.add_argument("--from", dest="commit", help="the commit whose program to render (default: the working tree)")
    parser.add_argument("--out", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.commit:
        write_from(args.commit)
    else:
        write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
