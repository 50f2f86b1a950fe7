"""Every stack-config key is declared once (pool/settings.py), and everything else follows
from that declaration: the loader reads exactly those keys, HTCondorPoolArgs has one field
per key with its default, and Pulumi.yaml and README show each as declared."""

import dataclasses
import json

import pytest
import yaml

from pool.args import HTCondorPoolArgs
from pool.errors import PoolConfigError
from pool.settings import ARG_SETTINGS, SETTINGS, markdown_table
from pool.stack_config import KEYS
from tests.render import REPO, render

PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())


def as_stack_config(value) -> str:
    """A default as `pulumi config set` would give it: text, JSON for objects and arrays."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def test_the_loader_accepts_every_declared_key_and_refuses_any_other():
    declared = {s.key: as_stack_config(s.default) for s in SETTINGS if s.default is not None}
    assert render(declared, stack=None).resources  # every declared key read, none refused
    for key in KEYS:
        with pytest.raises(PoolConfigError, match=rf"^htcondor-pool:{key}x: '1' is not allowed; expected a known key"):
            render({f"{key}x": "1"}, stack=None)


def test_the_arguments_have_one_field_per_key_with_its_default():
    fields = dataclasses.fields(HTCondorPoolArgs)
    assert [f.name for f in fields] == [s.field for s in ARG_SETTINGS]
    defaults = HTCondorPoolArgs()
    for setting in ARG_SETTINGS:
        assert getattr(defaults, setting.field) == setting.rule(setting.key, setting.default), setting.key


def test_pulumi_yaml_declares_every_key_it_can_as_declared():
    declared = PROJECT["config"]
    expected = {}
    for s in SETTINGS:
        if not declarable(s):
            continue  # named in the block's comment instead
        spec = {"type": s.type, "default": "" if s.default is None else
                (list(s.default) if isinstance(s.default, tuple) else s.default), "description": s.description}
        if s.type == "array":
            spec["items"] = {"type": "string"}
        expected[s.key] = spec
    assert declared == expected
    text = (REPO / "Pulumi.yaml").read_text()
    for s in SETTINGS:
        if not declarable(s):
            assert f"#   {s.key}: " in text, s.key


def declarable(setting) -> bool:
    """Pulumi.yaml has no object type, and a key it declares without a default is one Pulumi
    requires of every stack ("Stack 'dev' is missing configuration value"); a string's unset is
    the empty string, but an integer that follows another key (maxWorkers: workers) has none."""
    return setting.type != "object" and (setting.default is not None or setting.type == "string")


def test_every_key_pulumi_yaml_declares_has_a_default_so_an_empty_stack_deploys():
    missing = [key for key, spec in PROJECT["config"].items() if "default" not in spec]
    assert missing == []


def test_readme_config_table_is_the_declarations():
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- config-table -->\n", 1)[1].split("<!-- /config-table -->", 1)[0]
    assert table == markdown_table(), "regenerate it with `python -m pool.settings`"


def test_a_stack_with_no_config_renders_the_declared_defaults():
    rendered = render(stack=None)
    by_key = {s.key: s for s in SETTINGS}
    assert rendered.outputs["workers"] == by_key["workers"].default
    assert rendered.outputs["namespace"] == by_key["namespace"].default
