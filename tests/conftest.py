import pytest

from tests.render import render


@pytest.fixture(scope="module")
def dev():
    """The dev stack as Pulumi.dev.yaml configures it."""
    return render()
