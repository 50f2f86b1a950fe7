"""The component as a Pulumi package (pool/package.py, served by package/): its schema is the
declarations of pool/settings.py and pool/outputs.py, and its construct, under the mocks,
builds from a program's inputs the pool a Python stack builds from the same stack config,
and refuses bad input with stack config's one line, naming the input."""

import json

import pulumi
import pytest
import yaml
from pulumi.errors import InputPropertiesError

from pool import package
from pool.outputs import OUTPUTS
from pool.settings import ARG_SETTINGS, BY_KEY
from tests.render import REPO, render, render_program
from tests.test_bad_input import CASES

SCHEMA = package.schema()
POOL = SCHEMA["resources"][package.POOL]
EXAMPLE_FILE = REPO / "examples" / "yaml" / "Pulumi.yaml"
EXAMPLE = yaml.safe_load(EXAMPLE_FILE.read_text())


def as_the_engine_sends(value):
    """A program's value as the engine hands it to construct: every number a float."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {k: as_the_engine_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_the_engine_sends(v) for v in value]
    return value


def construct(inputs: dict, name: str = "htcondor"):
    """The package's construct of htcondor:index:Pool under the mocks, its outputs exported
    as the stack's: what it registers and gives back."""
    def program():
        result = package.PoolProvider().construct(name, package.POOL, as_the_engine_sends(inputs),
                                                  pulumi.ResourceOptions())
        for key, value in result.state.items():
            pulumi.export(key, value)
    return render_program(program)


def as_stack_config(inputs: dict) -> dict[str, str]:
    """The same values as stack config: text, JSON for objects and arrays."""
    return {key: json.dumps(value) if isinstance(value, (dict, list)) else str(value).lower()
            if isinstance(value, bool) else str(value) for key, value in inputs.items()}


def example_inputs() -> dict:
    """examples/yaml's properties, its config at their defaults."""
    config = {key: spec["default"] for key, spec in EXAMPLE["config"].items()}
    properties = EXAMPLE["resources"]["htcondor"]["properties"]
    return {key: config[value[2:-1]] if isinstance(value, str) and value.startswith("${") else value
            for key, value in properties.items()}


def named(urn: str) -> tuple[str, str]:
    """(type, name) of the resource a URN names; the stack as ("stack", "")."""
    qualified_type, name = urn.split("::")[2:4]
    resource_type = qualified_type.rsplit("$", 1)[-1]
    return ("stack", "") if resource_type == "pulumi:pulumi:Stack" else (resource_type, name)


def python_tree(inputs: dict) -> set[tuple]:
    """What a Python stack with `inputs` as its stack config holds, as (object, its parent),
    each as `named` gives it: the tree a stack of the package must hold too."""
    return {(named(r.urn), named(r.parent)) for r in render(as_stack_config(inputs), stack=None).resources}


def tree(rendered) -> list[tuple]:
    """Every object registered, with its parent, dependencies, inputs, secrets and aliases,
    in a stable order (registrations interleave as their inputs resolve)."""
    return sorted(((r.type, r.name, r.parent, sorted(r.dependencies), r.inputs, r.secret_paths, r.aliases)
                   for r in rendered.resources), key=lambda entry: (entry[0], entry[1]))


# ---- the schema ----------------------------------------------------------------------------
def test_the_inputs_are_the_stack_config_keys_in_their_order_and_spelling_but_the_name():
    assert list(POOL["inputProperties"]) == [s.key for s in ARG_SETTINGS]
    assert "name" not in POOL["inputProperties"]  # the program names the resource


@pytest.mark.parametrize("setting", ARG_SETTINGS, ids=[s.key for s in ARG_SETTINGS])
def test_each_input_has_its_keys_type_description_allowed_values_and_default(setting):
    prop = POOL["inputProperties"][setting.key]
    assert {k: v for k, v in prop.items() if k not in ("description", "default")} == package.TYPES[setting.type]
    description, allowed, default = prop["description"].split("\n\n")
    assert description == setting.description  # the declaration's words, described once
    assert allowed == f"Allowed: {package.allowed(setting)}."
    assert default == f"Default: {package.shown_default(setting)}."
    if setting.default is not None and setting.type in ("string", "integer", "boolean"):
        assert prop["default"] == setting.default
    else:
        assert "default" not in prop  # the schema's defaults are plain values only


def test_the_allowed_values_are_the_words_of_the_rules_refusal():
    workers = POOL["inputProperties"]["workers"]["description"]
    assert workers.endswith("\n\nAllowed: a whole number >= 0.\n\nDefault: `1`.")
    assert "Allowed: one of ReadWriteOncePod, ReadWriteOnce." in POOL["inputProperties"]["scheddSpoolAccessMode"][
        "description"]
    images = POOL["inputProperties"]["images"]["description"]
    assert images.endswith(f"Default: `{json.dumps(BY_KEY['images'].default)}`.")  # README's "see below", spelled out


def test_every_input_is_optional_as_each_has_a_default():
    assert POOL["requiredInputs"] == []
    assert tree(construct({})) == tree(render(stack=None))


def test_the_outputs_are_readmes_in_camel_case_the_secrets_secret():
    assert list(POOL["properties"]) == [o.property for o in OUTPUTS]
    assert POOL["properties"]["centralManagerAddress"] == {
        "type": "string", "description": "`NAME-central-manager.NAMESPACE.svc.cluster.local:9618`"}
    assert {name for name, prop in POOL["properties"].items() if prop.get("secret")} == {
        "poolPassword", "submitToken", "workerToken"}
    assert POOL["required"] == [o.property for o in OUTPUTS if o.property != "metricsAddress"]


def test_the_package_and_its_one_resource_type_are_the_python_stacks():
    assert SCHEMA["name"] == "htcondor" and list(SCHEMA["resources"]) == ["htcondor:index:Pool"]
    (pool,) = [r for r in render().resources if r.name == "htcondor"]
    assert pool.type == package.POOL
    assert POOL["isComponent"] is True
    json.dumps(SCHEMA)  # as the plugin serves it


# ---- construct -----------------------------------------------------------------------------
def test_the_examples_inputs_build_the_pool_a_python_stack_builds_from_the_same_config():
    inputs = example_inputs()
    assert inputs["workerPools"] and inputs["resources"] and inputs["workers"] == 1  # what it shows
    constructed, python = construct(inputs), render(as_stack_config(inputs), stack=None)
    assert tree(constructed) == tree(python)
    assert {"htcondor-worker-small", "htcondor-worker"} <= {r.name for r in constructed.of_type("kubernetes:apps/v1:Deployment")}


def test_the_outputs_are_the_python_stacks_in_camel_case_with_the_same_secrets():
    inputs = {"workers": 2, "metrics": False}
    constructed, python = construct(inputs), render(as_stack_config(inputs), stack=None)
    by_property = {o.property: o.name for o in OUTPUTS}
    assert {by_property[k]: v for k, v in constructed.outputs.items()} == python.outputs
    assert {by_property[k] for k in constructed.secret_outputs} == python.secret_outputs == {
        "pool_password", "submit_token", "worker_token"}


def test_whole_numbers_the_engine_sends_as_floats_are_whole_numbers_again():
    rendered = construct({"workers": 3, "resources": {"worker": {"cpu": 2}}, "workerPools": {"gpu": {"gpus": 1}}})
    (worker,) = [d.inputs for d in rendered.of_type("kubernetes:apps/v1:Deployment") if d.name == "htcondor-worker"]
    assert worker["spec"]["replicas"] == 3 and rendered.outputs["workers"] == 3
    assert worker["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"


# ---- bad input -----------------------------------------------------------------------------
def program_value(key: str, text: str):
    """What a program writes for stack config's text: JSON where the key's type is not a
    string and the text is JSON, else the text."""
    if key in BY_KEY and BY_KEY[key].type == "string":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


PACKAGE_CASES = [(config, message) for config, message in CASES if set(config) <= set(BY_KEY)]


@pytest.mark.parametrize("config,message", PACKAGE_CASES,
                         ids=[next(iter(c)) + ":" + str(next(iter(c.values())))[:20] for c, _ in PACKAGE_CASES])
def test_bad_input_fails_construct_with_stack_configs_line_naming_the_input(config, message):
    values = {key: program_value(key, text) for key, text in config.items()}
    name = values.pop("name", "htcondor")
    with pytest.raises(InputPropertiesError) as error:
        construct(values, name)
    expected = message.replace("htcondor-pool:", "")
    for key, text in config.items():  # stack config's text '1.5' is the number 1.5 in a program
        expected = expected.replace(repr(text), repr(package._as_json(program_value(key, text))))
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)
    assert error.value.errors == []  # the engine shows the message alone, one line
    assert error.value.registered == []


def test_an_unknown_input_is_refused_naming_the_known_ones():
    with pytest.raises(InputPropertiesError, match=r"^worker: 3 is not allowed; expected a known input: one of "
                                                   r"namespace, createNamespace, workers, ") as error:
        construct({"worker": 3})
    assert error.value.registered == []


@pytest.mark.parametrize("value", [pulumi.Output.from_input("batch"), pulumi.Output.secret("batch")],
                         ids=["output", "secret"])
def test_an_output_is_refused_as_the_pool_derives_its_names_from_its_inputs(value):
    with pytest.raises(InputPropertiesError, match=r"^namespace: an Output \(another resource's output, or a "
                                                   r"secret\) is not allowed; expected a value written in the "
                                                   r"program \(to wait for another resource, give the pool "
                                                   r"`dependsOn` it\)$"):
        construct({"namespace": value})
    with pytest.raises(InputPropertiesError, match=r"^images: an Output"):
        construct({"images": {"worker": value}})


def test_a_bad_resource_name_is_refused_as_stack_configs_name_key():
    with pytest.raises(InputPropertiesError, match=r"^name: 'My.Pool' is not allowed; expected a DNS-1123 label"):
        construct({}, name="My.Pool")


def test_an_unknown_type_is_refused():
    with pytest.raises(ValueError, match="unknown resource type htcondor:index:Schedd"):
        package.PoolProvider().construct("x", "htcondor:index:Schedd", {}, pulumi.ResourceOptions())


# ---- README --------------------------------------------------------------------------------
def test_readme_shows_the_yaml_example_verbatim():
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Using the component from another language\n", 1)[1].split("\n## ", 1)[0]
    shown = section.split("<!-- examples/yaml/Pulumi.yaml -->\n```yaml\n", 1)[1].split("```\n", 1)[0]
    assert shown == EXAMPLE_FILE.read_text()
