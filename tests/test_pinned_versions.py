"""The real cluster (tests/kube) is built from exact, pinned releases, in step with the
program's own pins and with the schema tests, and its recipes follow each project's go.mod."""

import re

from packaging.requirements import Requirement

from tests.kube import build
from tests.render import REPO
from tests.test_schema import KUBERNETES_VERSIONS


def pip_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{line}: pin an exact version"  # the program's too
            pins[requirement.name] = spec.version
    return pins


def test_the_pulumi_builds_are_the_pip_pins():
    """The CLI, its language host and the providers the real cluster's tests run are the
    releases of the pip packages the program runs with."""
    pins, built = pip_pins(), build.versions()
    assert {name: pins[name] for name in ("pulumi", "pulumi-kubernetes", "pulumi-random")} == {
        name: built[name]["version"] for name in ("pulumi", "pulumi-kubernetes", "pulumi-random")}
    assert built["pulumi-language-python"]["version"] == built["pulumi"]["version"]
    assert built["pulumi-language-nodejs"]["version"] == built["pulumi"]["version"]
    for name in ("pulumi-language-python", "pulumi-language-nodejs", "pulumi-random"):  # built from the release's git tag
        assert built[name]["tag"] == f"v{built[name]['version']}", name


def test_every_component_is_pinned_to_one_release():
    for name, pins in build.versions().items():
        for key, value in pins.items():
            if key == "module-version":  # a pseudo-version: one commit
                assert re.fullmatch(r"v\d+\.\d+\.\d+-\d{14}-[0-9a-f]{12}", value), (name, key, value)
            elif key == "version" and "debian-package" in pins:  # Debian: upstream and revision
                assert re.fullmatch(r"\d+(\.\d+)+([+~][\w.+~]*)?-[\w.+~]+", value), (name, key, value)
            elif "version" in key:
                assert re.fullmatch(r"\d+\.\d+\.\d+(\+[\w.+~-]+)?", value), (name, key, value)


def test_the_clusters_kubernetes_minor_is_one_the_schema_tests_cover():
    minor = ".".join(build.versions()["kubernetes"]["version"].split(".")[:2])
    assert minor in KUBERNETES_VERSIONS


KUBERNETES_GO_MOD = """\
module k8s.io/kubernetes

go 1.25.0

require (
\tk8s.io/api v0.0.0
\tsigs.k8s.io/yaml v1.6.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/kubelet => ./staging/src/k8s.io/kubelet
)
"""
ETCD_SERVER_GO_MOD = """\
module go.etcd.io/etcd/server/v3

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/v3 => ../client/v3
)

// Bad imports are sometimes causing attempts to pull that code.
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY

replace go.etcd.io/tests/v3 => ./FORBIDDEN_DEPENDENCY
"""


def test_local_replaces_are_read_from_a_go_mod():
    assert build.local_replaces(KUBERNETES_GO_MOD) == ["k8s.io/api", "k8s.io/kubelet"]
    assert build.local_replaces(ETCD_SERVER_GO_MOD) == [
        "go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/client/v3", "go.etcd.io/etcd", "go.etcd.io/tests/v3"]


def test_the_throwaway_module_requires_the_release_and_replaces_siblings_with_theirs():
    component = build.GoComponent("kubernetes", "k8s.io/kubernetes", "1.35.4", [],
                                  {"k8s.io/api": "0.35.4", "k8s.io/kubelet": "0.35.4"})
    go_mod = build.throwaway_go_mod(component)
    assert "require k8s.io/kubernetes v1.35.4\n" in go_mod
    assert "replace k8s.io/api => k8s.io/api v0.35.4\n" in go_mod
    assert "replace k8s.io/kubelet => k8s.io/kubelet v0.35.4\n" in go_mod
    assert "./staging" not in go_mod


def test_a_local_clone_stands_in_for_a_git_url_through_its_variable():
    assert build.git_env_var("https://github.com/pulumi/pulumi") == "HTCONDOR_POOL_GIT_PULUMI_PULUMI"
    assert build.git_env_var("https://github.com/pulumi/pulumi-random.git") == "HTCONDOR_POOL_GIT_PULUMI_PULUMI_RANDOM"


def test_providers_go_to_pulumi_home_and_the_cli_to_path():
    binaries = build.Binaries({name: build.bin_root() / name for name in (
        "kubernetes", "pulumi", "pulumi-language-python", "pulumi-kubernetes", "pulumi-random")})
    path = binaries.path.split(":")
    assert str(build.bin_root() / "pulumi") in path and str(build.bin_root() / "pulumi-language-python") in path
    assert not [entry for entry in path if "pulumi-kubernetes" in entry or "pulumi-random" in entry]
    pins = build.versions()
    assert [(name, version) for name, version, _ in binaries.providers()] == [
        ("kubernetes", pins["pulumi-kubernetes"]["version"]), ("random", pins["pulumi-random"]["version"])]


def test_the_language_host_builds_against_the_clis_release_not_the_repositorys_directories():
    pins = build.versions()
    host = build.tree_recipes(pins)["pulumi-language-python"]
    for module in ("github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"):
        assert f"-dropreplace={module}" in host.go_mod_edits
        assert f"-require={module}@v{pins['pulumi']['version']}" in host.go_mod_edits
    assert host.companions == ("../pulumi-language-python-exec",)


def test_the_yaml_language_host_is_stamped_with_its_release_and_shipped_beside_the_cli():
    pins = build.versions()
    host = build.pulumi_language_yaml(pins["pulumi-language-yaml"])
    (target,) = host.targets
    assert target.package == "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml" and not target.cgo
    assert f"-X github.com/pulumi/pulumi-yaml/pkg/version.Version=v{pins['pulumi-language-yaml']['version']}" in (
        target.ldflags)
    assert not host.siblings and not host.replaces  # its go.mod has no replace lines
    # The distribution is named by every host in it, so adding one assembles it anew.
    key = build.distribution_key(pins)
    for name in build.LANGUAGE_HOSTS:
        assert f"{name.removeprefix('pulumi-language-')}-{pins[name]['version']}" in key


def test_the_nodejs_language_host_builds_as_the_python_one_with_its_script_beside_it():
    pins = build.versions()
    host = build.tree_recipes(pins)["pulumi-language-nodejs"]
    python = build.tree_recipes(pins)["pulumi-language-python"]
    assert host.go_mod_edits == python.go_mod_edits
    assert host.companions == ("../../dist/pulumi-resource-pulumi-nodejs",)
    assert "pulumi-language-nodejs" in build.LANGUAGE_HOSTS
