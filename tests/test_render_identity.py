"""No change for running pools: for four stack configs, every object the program registers
(its type, logical name, inputs, options and dependencies) and every stack output are as
the golden files in tests/golden/ have them, byte for byte. Only the parents of objects and
the `htcondor:index:` components may differ from the commit the files were written at.

The files come from the program before the component tree (issue 30), commit 1939359. To
write them again deliberately, e.g. from the last commit before a refactoring merges:

    .venv/bin/python -m tests.golden write --from COMMIT

(`--from` left out: the working tree's program; then review the diff before committing.)
"""

import difflib

import pytest

from tests import golden


@pytest.mark.parametrize("config", list(golden.CONFIGS))
def test_every_object_and_output_is_as_the_golden_file_has_it(config):
    want, got = golden.dumps(golden.load(config)), golden.dumps(golden.snapshot(config))
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            f"tests/golden/{config}.json", "rendered now", n=4))
        pytest.fail(f"the render of {config!r} differs from its golden file:\n{diff[:20000]}")
