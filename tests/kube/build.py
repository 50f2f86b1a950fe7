"""The real cluster's binaries, built from their projects' own sources through the Go
module proxy with their own build flags, and cached by version.

Versions come from versions.toml. `go install module@version` refuses modules whose
go.mod has `replace` lines (Kubernetes and etcd point theirs at sibling directories), so
each component builds in a throwaway module that requires it at the pinned version and
replaces each sibling with the same release from the proxy: the build the project's own
scripts do, from the same sources. Go's module and build caches live in the cache
directory too, so a second build of anything is quick.

    python -m tests.kube build     # builds what is missing, prints where it is
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.podsim.rootfs import PrerequisiteError, apt_get_install, cache_dir, debian_mirror

VERSIONS_FILE = Path(__file__).with_name("versions.toml")
# Bump when a recipe below changes, so binaries built by an older recipe are not reused.
RECIPE_VERSION = 1
# What building needs on the host (Debian packages): runc's seccomp support is C.
BUILD_PACKAGES = {"gcc": "gcc", "pkg-config": "pkg-config", "/usr/include/seccomp.h": "libseccomp-dev",
                  "/usr/lib/x86_64-linux-gnu/libc.a": "libc6-dev"}


def versions() -> dict:
    return tomllib.loads(VERSIONS_FILE.read_text())


@dataclass
class Target:
    """One binary: a package of the component's module, and how its project builds it."""
    binary: str
    package: str
    cgo: bool = False
    tags: tuple[str, ...] = ()
    ldflags: str = ""
    extra: tuple[str, ...] = ()  # more `go build` flags, e.g. -buildmode=pie


@dataclass
class GoComponent:
    name: str
    module: str
    version: str  # without the leading v
    targets: list[Target]
    # Sibling modules the component's go.mod replaces with local directories, mapped to
    # the release of each to use instead (filled in from that go.mod).
    siblings: dict[str, str] = field(default_factory=dict)
    go_directive: str = "1.25.0"
    # Replaces the component's go.mod makes with another module ("module version"): `go
    # build` honours only the main module's replaces, so the throwaway module repeats them.
    replaces: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}-r{RECIPE_VERSION}"


def go_env() -> dict[str, str]:
    go = cache_dir() / "go"
    return {**os.environ, "GOMODCACHE": str(go / "mod"), "GOCACHE": str(go / "build"),
            "GOPATH": str(go / "path"), "GOFLAGS": "-modcacherw", "GOTOOLCHAIN": "local"}


def _go(args: list[str], cwd: Path | None = None, env: dict | None = None) -> str:
    result = subprocess.run(["go", *args], cwd=cwd, env=env or go_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise PrerequisiteError(f"`go {' '.join(args)}` failed (in {cwd or os.getcwd()}):\n"
                                f"{result.stderr.strip()[-4000:]}")
    return result.stdout


def download(module: str, version: str) -> dict:
    """`go mod download` of one module version: its directory, go.mod path and publication time."""
    info = json.loads(_go(["mod", "download", "-json", f"{module}@v{version}"], cwd=Path("/")))
    if "Error" in info:
        raise PrerequisiteError(f"the Go module proxy has no {module}@v{version}: {info['Error']}")
    info["Time"] = json.loads(Path(info["Info"]).read_text())["Time"]
    return info


def local_replaces(go_mod: str) -> list[str]:
    """Modules a go.mod replaces with a local directory (`X => ./dir` or `X => ../dir`)."""
    return re.findall(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+\.{1,2}/\S+\s*$", go_mod, re.MULTILINE)


def throwaway_go_mod(component: GoComponent) -> str:
    lines = [f"module htcondor-pool.local/build/{component.name}", "",
             f"go {component.go_directive}", "", f"require {component.module} v{component.version}", ""]
    lines += [f"replace {m} => {m} v{v}" for m, v in sorted(component.siblings.items())]
    lines += [f"replace {m} => {target}" for m, target in sorted(component.replaces.items())]
    return "\n".join(lines) + "\n"


# ---- recipes: each as the project's own build scripts do it ------------------------------
def kubernetes(pins: dict) -> GoComponent:
    """hack/lib/golang.sh: -trimpath, tags selinux,notest,grpcnotrace, `-s -w`, every binary
    but the kubelet static (CGO_ENABLED=0); hack/lib/version.sh: the version in both
    client-go's and component-base's version packages (without it the API server says 0.0
    and clients such as pulumi-kubernetes refuse it)."""
    version = pins["version"]
    major, minor, _ = version.split(".")
    info = download(pins["module"], version)
    flags = []
    for package in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        for key, value in (("gitVersion", f"v{version}"), ("gitMajor", major), ("gitMinor", minor),
                           ("buildDate", info["Time"][:19] + "Z")):
            flags.append(f"-X '{package}.{key}={value}'")
    ldflags = f"all={' '.join(flags)} -s -w"
    targets = [Target(b, f"k8s.io/kubernetes/cmd/{b}", cgo=(b == "kubelet"),
                      tags=("selinux", "notest", "grpcnotrace"), ldflags=ldflags)
               for b in pins["binaries"]]
    staging = local_replaces(Path(info["GoMod"]).read_text())
    # Staging modules are published as v0.MINOR.PATCH of the same release.
    siblings = {m: f"0.{minor}.{version.split('.')[2]}" for m in staging}
    return GoComponent("kubernetes", pins["module"], version, targets, siblings)


def etcd(pins: dict) -> GoComponent:
    """scripts/build-lib.sh: CGO_ENABLED=0 go build -trimpath of the server module's main."""
    version = pins["version"]
    info = download(pins["module"], version)
    # Its siblings (api, client, pkg) are released together; the FORBIDDEN_DEPENDENCY
    # replaces only guard against modules it must never use.
    siblings = {m: version for m in local_replaces(Path(info["GoMod"]).read_text())
                if m.startswith("go.etcd.io/etcd/")}
    return GoComponent("etcd", pins["module"], version, [Target("etcd", pins["module"])], siblings,
                       go_directive="1.26.0")


def containerd(pins: dict) -> GoComponent:
    """Its Makefile: tag urfave_cli_no_docs, the version in version.Version/Package; the shim
    static (CGO_ENABLED=0, no_grpc, -extldflags -static)."""
    version, module = pins["version"], pins["module"]
    stamp = f"-X {module}/version.Version=v{version} -X {module}/version.Package={module}"
    return GoComponent("containerd", module, version, [
        Target("containerd", f"{module}/cmd/containerd", cgo=True, tags=("urfave_cli_no_docs",), ldflags=stamp),
        Target("ctr", f"{module}/cmd/ctr", cgo=True, tags=("urfave_cli_no_docs",), ldflags=stamp),
        Target("containerd-shim-runc-v2", f"{module}/cmd/containerd-shim-runc-v2",
               tags=("urfave_cli_no_docs", "no_grpc"), ldflags=f"{stamp} -extldflags \"-static\""),
    ])


def runc(pins: dict) -> GoComponent:
    """Its Makefile: cgo with libseccomp, tags seccomp urfave_cli_no_docs, -buildmode=pie
    (its version comes from the VERSION file it embeds)."""
    return GoComponent("runc", pins["module"], pins["version"], [
        Target("runc", pins["module"], cgo=True, tags=("seccomp", "urfave_cli_no_docs"),
               extra=("-buildmode=pie",))], go_directive="1.23.0")


def coredns(pins: dict) -> GoComponent:
    """Its Makefile: CGO_ENABLED=0, `-s -w`."""
    return GoComponent("coredns", pins["module"], pins["version"], [
        Target("coredns", pins["module"], ldflags="-s -w")])


def pulumi_cli(pins: dict) -> GoComponent:
    """The CLI as pulumi's Makefile and goreleaser build it: CGO_ENABLED=0, the version in
    sdk/v3's version package. pkg/v3's sibling sdk/v3 is the same release."""
    version, module = pins["version"], pins["module"]
    info = download(module, version)
    siblings = {m: version for m in local_replaces(Path(info["GoMod"]).read_text())}
    return GoComponent("pulumi", module, version, [
        Target("pulumi", f"{module}/cmd/pulumi",
               ldflags=f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{version}")],
        siblings, replaces=dict(pins.get("replace", {})))


def kube_router(pins: dict) -> GoComponent:
    """Its Makefile: CGO_ENABLED=0, the version and build date in its version package."""
    version, module = pins["version"], pins["module"]
    info = download(module, version)
    stamp = (f"-X {module}/pkg/version.Version=v{version} "
             f"-X {module}/pkg/version.BuildDate={info['Time'][:19]}Z")
    return GoComponent("kube-router", module, version, [
        Target("kube-router", f"{module}/cmd/kube-router", ldflags=stamp)], go_directive="1.21")


def pulumi_language_yaml(pins: dict) -> GoComponent:
    """Its .goreleaser.yml: CGO_ENABLED=0, `-s -w`, the release tag in its version package.
    Its go.mod has no replace lines, so the throwaway module resolves what its own build does."""
    version, module = pins["version"], pins["module"]
    info = download(module, version)
    go_directive = re.search(r"^go\s+(\S+)", Path(info["GoMod"]).read_text(), re.MULTILINE).group(1)
    return GoComponent("pulumi-language-yaml", module, version, [
        Target("pulumi-language-yaml", f"{module}/cmd/pulumi-language-yaml",
               ldflags=f"-s -w -X {module}/pkg/version.Version=v{version}")], go_directive=go_directive)


GO_RECIPES = {"kubernetes": kubernetes, "etcd": etcd, "containerd": containerd, "runc": runc,
              "coredns": coredns, "pulumi": pulumi_cli, "kube-router": kube_router,
              "pulumi-language-yaml": pulumi_language_yaml}


# ---- components built in their own source tree -----------------------------------------
# Some releases are not served as a module that `go build` can require (the Python language
# host, the random provider), or need `go generate` first (both providers embed their
# schema). Those build in a copy of their own source tree, as their Makefiles do.
@dataclass
class TreeComponent:
    name: str
    version: str
    fetch: Callable[[Path], Path]  # writes the source under a directory; returns the module's
    targets: list[Target]
    # `go mod edit` flags: a sibling directory outside the tree becomes its published release.
    go_mod_edits: tuple[str, ...] = ()
    generate: tuple[str, ...] = ()  # packages to `go generate` (with VERSION set), in order
    companions: tuple[str, ...] = ()  # files of the tree that must sit beside the binaries

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}-r{RECIPE_VERSION}"


def git_env_var(url: str) -> str:
    """The variable naming a local clone to use instead of `url`:
    https://github.com/pulumi/pulumi-random -> HTCONDOR_POOL_GIT_PULUMI_PULUMI_RANDOM."""
    owner_name = "/".join(url.rstrip("/").removesuffix(".git").split("/")[-2:])
    return "HTCONDOR_POOL_GIT_" + re.sub(r"[^A-Z0-9]", "_", owner_name.upper())


def git_repository(url: str, tag: str) -> Path:
    """A git directory holding `tag`: the local clone the environment names for `url`, or a
    shallow clone of `url` at that tag, kept in the cache."""
    variable = git_env_var(url)
    if os.environ.get(variable):
        local = Path(os.environ[variable])
        for git_dir in (local / ".git", local):
            if subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "--verify", "-q", f"{tag}^{{commit}}"],
                              capture_output=True).returncode == 0:
                return git_dir
        raise PrerequisiteError(f"{variable}={local} is not a clone of {url} holding tag {tag}")
    clone = cache_dir() / "git" / f"{variable.removeprefix('HTCONDOR_POOL_GIT_').lower()}-{tag}.git"
    if not (clone / "complete").exists():
        shutil.rmtree(clone, ignore_errors=True)
        result = subprocess.run(["git", "clone", "--bare", "--depth", "1", "--branch", tag, url, str(clone)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise PrerequisiteError(
                f"cannot clone {url} at {tag}: {result.stderr.strip()[-600:]}\n"
                f"Where that host is out of reach, clone the repository elsewhere and name the clone "
                f"in {variable}=/path/to/clone (see docs/real-cluster.md).")
        (clone / "complete").touch()
    return clone


def git_source(url: str, tag: str, paths: tuple[str, ...], module_dir: str):
    """A fetch step: `git archive` of `paths` at `tag` (only what the build needs, so large
    blobs elsewhere in the repository need not be present)."""
    def fetch(into: Path) -> Path:
        git_dir = git_repository(url, tag)
        archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "--format=tar", tag, *paths],
                                 capture_output=True)
        if archive.returncode != 0:
            raise PrerequisiteError(f"`git archive {tag}` of {url} failed: {archive.stderr.decode()[-600:]}")
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
        return into / module_dir
    return fetch


def module_source(module: str, module_version: str):
    """A fetch step: a writable copy of a module from the proxy."""
    def fetch(into: Path) -> Path:
        info = json.loads(_go(["mod", "download", "-json", f"{module}@{module_version}"], cwd=Path("/")))
        if "Error" in info:
            raise PrerequisiteError(f"the Go module proxy has no {module}@{module_version}: {info['Error']}")
        target = into / "module"
        shutil.copytree(info["Dir"], target)
        subprocess.run(["chmod", "-R", "u+w", str(target)], check=True)
        return target
    return fetch


def pulumi_language_host(language: str, pins: dict, cli_pins: dict, companions: tuple[str, ...]) -> TreeComponent:
    """sdk/<language>'s Makefile: `go build` of cmd/pulumi-language-<language> with the
    version ldflag; the scripts the release ships beside it (`companions`, paths in the
    repository). Its go.mod points pkg/v3 and sdk/v3 at the repository's own directories:
    those become the CLI's release from the proxy."""
    version = pins["version"]
    command = f"sdk/{language}/cmd/pulumi-language-{language}"
    edits = []
    for module in ("github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"):
        edits += [f"-dropreplace={module}", f"-require={module}@v{cli_pins['version']}"]
    return TreeComponent(
        f"pulumi-language-{language}", version,
        git_source(pins["git"], pins["tag"], (command, *companions), command),
        [Target(f"pulumi-language-{language}", ".",
                ldflags=f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{version}")],
        go_mod_edits=tuple(edits), companions=tuple(os.path.relpath(c, command) for c in companions))


def pulumi_language_python(pins: dict, cli_pins: dict) -> TreeComponent:
    """The Python language host, with its exec script."""
    return pulumi_language_host("python", pins, cli_pins, ("sdk/python/cmd/pulumi-language-python-exec",))


def pulumi_language_nodejs(pins: dict, cli_pins: dict) -> TreeComponent:
    """The Node.js language host, with the dynamic providers' script its Makefile copies
    beside it (dist/pulumi-resource-pulumi-nodejs)."""
    return pulumi_language_host("nodejs", pins, cli_pins, ("sdk/nodejs/dist/pulumi-resource-pulumi-nodejs",))


def pulumi_kubernetes(pins: dict) -> TreeComponent:
    """Its Makefile: `VERSION=... go generate cmd/pulumi-resource-kubernetes` (the versioned
    schema it embeds), then a static build with the version ldflag. The sibling sdk/v4 it
    replaces with ../sdk is the same release from the proxy."""
    version = pins["version"]
    sdk = "github.com/pulumi/pulumi-kubernetes/sdk/v4"
    return TreeComponent(
        "pulumi-kubernetes", version, module_source(pins["module"], pins["module-version"]),
        [Target("pulumi-resource-kubernetes", "./cmd/pulumi-resource-kubernetes",
                ldflags=f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={version}")],
        go_mod_edits=(f"-dropreplace={sdk}", f"-require={sdk}@v{version}"),
        generate=("./cmd/pulumi-resource-kubernetes",))


def pulumi_random(pins: dict) -> TreeComponent:
    """Its Makefile (ci-mgmt's bridged-provider recipe): `VERSION=... go generate` of the
    provider command, then a static build with the version ldflag, `-s -w`."""
    version = pins["version"]
    return TreeComponent(
        "pulumi-random", version, git_source(pins["git"], pins["tag"], ("provider",), "provider"),
        [Target("pulumi-resource-random", "./cmd/pulumi-resource-random",
                ldflags=f"-X github.com/pulumi/pulumi-random/provider/v4/pkg/version.Version={version} -s -w")],
        generate=("./cmd/pulumi-resource-random",))


def tree_recipes(pins: dict) -> dict[str, TreeComponent]:
    return {"pulumi-language-python": pulumi_language_python(pins["pulumi-language-python"], pins["pulumi"]),
            "pulumi-language-nodejs": pulumi_language_nodejs(pins["pulumi-language-nodejs"], pins["pulumi"]),
            "pulumi-kubernetes": pulumi_kubernetes(pins["pulumi-kubernetes"]),
            "pulumi-random": pulumi_random(pins["pulumi-random"])}


# ---- building ------------------------------------------------------------------------------
def _log(message: str) -> None:
    print(f"[kube build] {message}", file=sys.stderr, flush=True)


def ensure_build_tools() -> None:
    missing = sorted({pkg for probe, pkg in BUILD_PACKAGES.items()
                      if not (Path(probe).exists() if probe.startswith("/") else shutil.which(probe))})
    if not shutil.which("go"):
        raise PrerequisiteError("building the cluster needs Go (https://go.dev/dl/) on PATH")
    if missing:
        apt_install(missing)


def apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError(f"these Debian packages are missing: {' '.join(packages)} (install them as root)")
    _log(f"installing host packages: {' '.join(packages)}")
    apt_get_install(packages)


def bin_root() -> Path:
    return cache_dir() / "bin"


def _locked_build(key: str, build) -> Path:
    """The directory `build(work_dir)` fills, once: built under a lock, then renamed into place."""
    final = bin_root() / key
    if (final / ".complete").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".lock-{key}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / ".complete").exists():
            work = final.with_name(final.name + ".building")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            started = time.monotonic()
            build(work)
            (work / ".complete").write_text(f"built in {time.monotonic() - started:.0f} s\n")
            shutil.rmtree(final, ignore_errors=True)
            work.rename(final)
    return final


def build_go(component: GoComponent) -> Path:
    def build(out: Path) -> None:
        ensure_build_tools()
        module_dir = cache_dir() / "go" / "modules" / component.key
        module_dir.mkdir(parents=True, exist_ok=True)
        (module_dir / "go.mod").write_text(throwaway_go_mod(component))
        (module_dir / "go.sum").touch()
        for target in component.targets:
            _log(f"{component.name} {component.version}: building {target.binary}")
            started = time.monotonic()
            env = {**go_env(), "CGO_ENABLED": "1" if target.cgo else "0"}
            args = ["build", "-mod=mod", "-trimpath", *target.extra]
            if target.tags:
                args += ["-tags", ",".join(target.tags)]
            if target.ldflags:
                args += ["-ldflags", target.ldflags]
            _go([*args, "-o", str(out / target.binary), target.package], cwd=module_dir, env=env)
            _log(f"{target.binary} built in {time.monotonic() - started:.0f} s")
    return _locked_build(component.key, build)


def build_tree(component: TreeComponent) -> Path:
    def build(out: Path) -> None:
        ensure_build_tools()
        source = out.parent / f"{out.name}.source"
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir()
        try:
            module_dir = component.fetch(source)
            env = {**go_env(), "CGO_ENABLED": "0", "VERSION": component.version}
            if component.go_mod_edits:
                _go(["mod", "edit", *component.go_mod_edits], cwd=module_dir, env=env)
                _go(["mod", "tidy"], cwd=module_dir, env=env)
            for package in component.generate:
                _log(f"{component.name} {component.version}: go generate {package}")
                _go(["generate", package], cwd=module_dir, env=env)
            for target in component.targets:
                _log(f"{component.name} {component.version}: building {target.binary}")
                started = time.monotonic()
                args = ["build", "-trimpath"]
                if target.ldflags:
                    args += ["-ldflags", target.ldflags]
                _go([*args, "-o", str(out / target.binary), target.package], cwd=module_dir, env=env)
                _log(f"{target.binary} built in {time.monotonic() - started:.0f} s")
            for companion in component.companions:
                shutil.copy2(module_dir / companion, out / Path(companion).name)
        finally:
            subprocess.run(["rm", "-rf", "--one-file-system", str(source)], check=True)
    return _locked_build(component.key, build)


def build_pause(pins: dict, kubernetes_pins: dict) -> Path:
    """build/pause/Makefile: `gcc -Os -Wall -Werror -static -DVERSION=...` of pause.c."""
    def build(out: Path) -> None:
        ensure_build_tools()
        info = download(kubernetes_pins["module"], kubernetes_pins["version"])
        source = Path(info["Dir"]) / "build" / "pause" / "linux" / "pause.c"
        subprocess.run(["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{pins['version']}",
                        "-o", str(out / "pause"), str(source)], check=True)
    return _locked_build(f"pause-{pins['version']}-r{RECIPE_VERSION}", build)


DEBIAN_PACKAGES = ("cni-plugins", "ipset")


# Programs taken from a Debian package without installing it: name -> the path inside it.
DEBIAN_PROGRAMS = {"prometheus": "usr/bin/prometheus"}


def debian_program_key(name: str, pins: dict) -> str:
    return f"{name}-{re.sub(r'[^A-Za-z0-9.-]', '_', pins['version'])}-r{RECIPE_VERSION}"


def extract_debian_program(name: str, pins: dict) -> Path:
    """The package's program, alone in a directory of the cache: the pinned package file from
    the Debian mirror apt uses, checked against its hash, and `dpkg-deb -x`, so nothing lands
    on the host."""
    def build(out: Path) -> None:
        url = f"{debian_mirror().rstrip('/')}/{pins['debian-file']}"
        _log(f"{name} {pins['version']}: taking {DEBIAN_PROGRAMS[name]} from {url}")
        package = out / Path(pins["debian-file"]).name
        with urllib.request.urlopen(url, timeout=300) as reply:
            package.write_bytes(reply.read())
        digest = hashlib.sha256(package.read_bytes()).hexdigest()
        if digest != pins["sha256"]:
            raise PrerequisiteError(f"{url}: sha256 {digest}, but versions.toml pins {pins['sha256']}")
        subprocess.run(["dpkg-deb", "-x", str(package), str(out / "package")], check=True)
        (out / "package" / DEBIAN_PROGRAMS[name]).rename(out / name)
        shutil.rmtree(out / "package")
        package.unlink()
    return _locked_build(debian_program_key(name, pins), build)


def ensure_debian_package(pins: dict) -> None:
    package, wanted = pins["debian-package"], pins["version"]
    installed = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                               capture_output=True, text=True).stdout
    if installed != wanted:
        apt_install([f"{package}={wanted}"])


# Resource providers are installed into a PULUMI_HOME (`pulumi plugin install --file`), never
# put on PATH: the CLI warns about providers it finds there. Build name -> plugin name.
PROVIDERS = {"pulumi-kubernetes": "kubernetes", "pulumi-random": "random"}


@dataclass
class Binaries:
    """Where each built program is."""
    dirs: dict[str, Path]
    cni_bin_dir: Path = Path("/usr/lib/cni")

    def __getitem__(self, program: str) -> str:
        for directory in self.dirs.values():
            if (directory / program).exists():
                return str(directory / program)
        raise KeyError(program)

    @property
    def path(self) -> str:
        """PATH entries holding every built program but the Pulumi providers."""
        return os.pathsep.join(str(d) for name, d in self.dirs.items() if name not in PROVIDERS)

    def providers(self) -> list[tuple[str, str, Path]]:
        """(plugin name, version, binary) of each built Pulumi resource provider."""
        pins = versions()
        return [(plugin, pins[name]["version"], self.dirs[name] / f"pulumi-resource-{plugin}")
                for name, plugin in PROVIDERS.items()]


TREE_NAMES = ("pulumi-language-python", "pulumi-language-nodejs", "pulumi-kubernetes", "pulumi-random")


# The language hosts shipped beside the CLI, as Pulumi's release archives bundle them: Python
# runs the program and the component package (package/), YAML and Node.js the programs that
# use the package (examples/yaml, examples/typescript).
LANGUAGE_HOSTS = ("pulumi-language-python", "pulumi-language-yaml", "pulumi-language-nodejs")


def distribution_key(pins: dict) -> str:
    """Named by everything in it, so a distribution with other hosts is assembled anew."""
    hosts = "".join(f"+{name.removeprefix('pulumi-language-')}-{pins[name]['version']}" for name in LANGUAGE_HOSTS)
    return f"pulumi-dist-{pins['pulumi']['version']}{hosts}-r{RECIPE_VERSION}"


def assemble_pulumi_distribution(cli: Path, language_hosts: list[Path], key: str) -> Path:
    """The CLI with its language hosts beside it, as Pulumi's own release archives ship
    them: the CLI then takes each host as bundled (from PATH it would warn on every run).
    Hard links, not copies."""
    def assemble(out: Path) -> None:
        for directory in (cli, *language_hosts):
            for binary in directory.iterdir():
                if not binary.name.startswith("."):
                    os.link(binary, out / binary.name)
    return _locked_build(key, assemble)


def _dirs(built: dict[str, Path], pins: dict, assemble: bool) -> dict[str, Path]:
    """Where each program is, with the CLI and its language hosts as one distribution."""
    dirs = dict(built)
    cli, hosts = dirs.pop("pulumi", None), [dirs.pop(name, None) for name in LANGUAGE_HOSTS]
    if cli and all(hosts):
        key = distribution_key(pins)
        dirs["pulumi"] = assemble_pulumi_distribution(cli, hosts, key) if assemble else bin_root() / key
    return dirs


def build_all(only: tuple[str, ...] | None = None) -> Binaries:
    """Build whatever is missing (of `only`, if given); returns where everything is."""
    pins = versions()
    built = {}
    wanted = (lambda name: only is None or name in only)
    for name, recipe in GO_RECIPES.items():
        if wanted(name):
            built[name] = build_go(recipe(pins[name]))
    trees = tree_recipes(pins)
    for name in TREE_NAMES:
        if wanted(name):
            built[name] = build_tree(trees[name])
    if wanted("pause"):
        built["pause"] = build_pause(pins["pause"], pins["kubernetes"])
    for name in DEBIAN_PACKAGES:
        if wanted(name):
            ensure_debian_package(pins[name])
    for name in DEBIAN_PROGRAMS:
        if wanted(name):
            built[name] = extract_debian_program(name, pins[name])
    return Binaries(_dirs(built, pins, assemble=True))


def cached() -> Binaries | None:
    """The binaries if every one is built already (no network, no build), else None."""
    pins = versions()
    keys = {name: f"{name}-{pins[name]['version']}-r{RECIPE_VERSION}" for name in (*GO_RECIPES, *TREE_NAMES)}
    keys["pause"] = f"pause-{pins['pause']['version']}-r{RECIPE_VERSION}"
    keys.update({name: debian_program_key(name, pins[name]) for name in DEBIAN_PROGRAMS})
    dirs = _dirs({name: bin_root() / key for name, key in keys.items()}, pins, assemble=False)
    if all((d / ".complete").exists() for d in dirs.values()):
        return Binaries(dirs)
    return None
