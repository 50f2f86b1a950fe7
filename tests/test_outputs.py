"""Every output is declared once (pool/outputs.py): the component's attributes, the Python
stack's outputs and their secrecy, README's Outputs table and the package's outputs
(tests/test_package.py) follow from that declaration."""

from pool import HTCondorPool
from pool.outputs import OUTPUTS, markdown_table
from tests.render import REPO


def test_the_components_attributes_are_the_declared_outputs_in_order():
    assert list(HTCondorPool.__annotations__) == [o.name for o in OUTPUTS]


def test_the_stack_exports_every_declared_output_secret_as_declared(dev):
    assert list(dev.outputs) == [o.name for o in OUTPUTS]
    assert dev.secret_outputs == {o.name for o in OUTPUTS if o.secret}
    assert {name for name, value in dev.outputs.items() if value is None} <= {o.name for o in OUTPUTS if not o.always}


def test_readme_outputs_table_is_the_declarations():
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- outputs-table -->\n", 1)[1].split("<!-- /outputs-table -->", 1)[0]
    assert table == markdown_table(), "regenerate it with `python -m pool.outputs`"


def test_the_package_names_each_output_in_camel_case():
    assert [o.property for o in OUTPUTS][:3] == ["centralManagerAddress", "namespace", "workers"]
    assert {o.property for o in OUTPUTS if o.secret} == {"poolPassword", "submitToken", "workerToken"}
