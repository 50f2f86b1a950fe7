"""The real Pulumi CLI against the real cluster: a copy of the project with a stack of its
own on a file backend, driven with the commands a user types.

- The copy holds what a user's checkout holds for `pulumi up` (PROGRAM_FILES and the
  stack's `Pulumi.<stack>.yaml`). Its `venv`, which Pulumi.yaml names, is the environment
  running the harness: it has the program's requirements, installed from requirements.txt
  by the README's test command, so no copy installs anything.
- State lives in the copy's own file backend, secrets are encrypted with a passphrase, and
  HOME is the copy's: nothing is read from, or written to, the user's own Pulumi setup. The
  providers come from the cluster's PULUMI_HOME (`install_providers`), never from a
  download or PATH.
- Every command runs in a process group of its own, killed whole if it overruns its
  deadline or the harness is interrupted.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# What `pulumi up` needs of a checkout: the project, the program, and its requirements.
PROGRAM_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt", "pool")
# What a program of examples/ needs of a checkout: the package it names by its path
# (../../package), the component the package serves, and their requirements.
PACKAGE_FILES = ("package", "pool", "requirements.txt")
PASSPHRASE = "htcondor-pool-test"
# pulumi-kubernetes waits up to 10 minutes for a Deployment; a worker's drain takes up to its
# grace period (600 s by default) on a delete. Bounds for one command:
UP_TIMEOUT = 1500
COMMAND_TIMEOUT = 120


class PulumiError(AssertionError):
    """A `pulumi` command failed: its arguments, status and output."""


def install_providers(providers: list[tuple[str, str, Path]], env: dict[str, str]) -> None:
    """`pulumi plugin install resource NAME VERSION --file BIN` for each built provider, into
    env's PULUMI_HOME: where the CLI finds them without a warning or a download."""
    for name, version, binary in providers:
        result = subprocess.run(["pulumi", "plugin", "install", "resource", name, version, "--file", str(binary)],
                                env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        if result.returncode != 0:
            raise PulumiError(f"pulumi plugin install resource {name} {version} failed: {result.stderr.strip()}")


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    """A command in a session of its own, killed whole past `timeout` or on an interrupt
    (the CLI's providers and language hosts are its descendants)."""
    with subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as child:
        try:
            stdout, stderr = child.communicate(stdin, timeout=timeout)
        except BaseException:
            _kill_session(child.pid)
            child.communicate()
            raise
        finally:
            # Whatever the CLI left behind goes with it: a provider that outlived it, and the
            # Python language host that ran the package for a YAML program, which the CLI
            # starts in a process group of its own and, under this harness, leaves running.
            _kill_session(child.pid)
    return subprocess.CompletedProcess(args, child.returncode, stdout, stderr)


def _kill_session(session: int) -> None:
    """SIGKILL every process of the session `run` started (its leader's pid), whatever
    process group each is in."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session:
                    os.kill(int(entry.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@dataclass
class Project:
    """A copy of the project in `root/project`, with its state in `root/state` and HOME in
    `root/home`, and one selected stack."""
    root: Path
    env: dict[str, str]  # the cluster's environment (KUBECONFIG, PATH, PULUMI_HOME, ...)
    stack: str = "dev"

    @property
    def directory(self) -> Path:
        return self.root / "project"

    @property
    def pulumi_env(self) -> dict[str, str]:
        return {**self.env, "HOME": str(self.root / "home"),
                "PULUMI_BACKEND_URL": f"file://{self.root / 'state'}",
                "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}

    @classmethod
    def create(cls, root: Path, env: dict[str, str], stack: str = "dev", source: Path = REPO) -> "Project":
        """Copy the project, and `pulumi stack init` the stack (from source's
        Pulumi.<stack>.yaml, if it has one)."""
        project = cls(root, env, stack)
        project.root.mkdir(parents=True, exist_ok=True)
        for directory in ("home", "state"):
            (project.root / directory).mkdir(exist_ok=True)
        project.sync_program(source)
        stack_file = source / f"Pulumi.{stack}.yaml"
        if stack_file.exists():
            shutil.copy2(stack_file, project.directory / stack_file.name)
        project.pulumi("stack", "init", stack)
        return project

    def sync_program(self, source: Path = REPO) -> None:
        """The program as `source` has it now (the stack's config and state stay)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in PROGRAM_FILES:
            target = self.directory / name
            if (source / name).is_dir():
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source / name, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source / name, target)
        venv = self.directory / "venv"
        if not venv.is_symlink():
            venv.symlink_to(sys.prefix)

    # ---- commands ------------------------------------------------------------------------
    def pulumi(self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT,
               stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = run(["pulumi", *args, "--color", "never"], self.directory, {**self.pulumi_env, **(env or {})},
                     timeout, stdin)
        if check and result.returncode != 0:
            raise PulumiError(f"`pulumi {shlex.join(args)}` exited {result.returncode}:\n"
                              f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
        return result

    def config_set(self, key: str, value: str, path: bool = False) -> None:
        """`pulumi config set [--path] KEY VALUE`; the value on stdin if it looks like a flag."""
        args = ["config", "set", *(["--path"] if path else []), key]
        if value.startswith("-"):
            self.pulumi(*args, stdin=value)
        else:
            self.pulumi(*args, value)

    def up(self, **changes: str) -> float:
        """`pulumi config set KEY VALUE` for each change, then `pulumi up --yes`; returns its
        seconds. Then `pulumi preview --expect-no-changes` must pass: a second `up` would do
        nothing."""
        for key, value in changes.items():
            self.config_set(key, value)
        started = time.monotonic()
        self.pulumi("up", "--yes", timeout=UP_TIMEOUT)
        took = time.monotonic() - started
        self.pulumi("preview", "--expect-no-changes", timeout=UP_TIMEOUT)
        return took

    def destroy(self) -> float:
        started = time.monotonic()
        self.pulumi("destroy", "--yes", timeout=UP_TIMEOUT)
        return time.monotonic() - started

    def outputs(self) -> dict:
        """`pulumi stack output --json --show-secrets`."""
        return json.loads(self.pulumi("stack", "output", "--json", "--show-secrets").stdout)

    def output(self, name: str) -> str:
        """`pulumi stack output NAME --show-secrets`, as a user reads one value."""
        return self.pulumi("stack", "output", name, "--show-secrets").stdout.rstrip("\n")

    def config(self) -> dict:
        """The stack's config as `pulumi config --json` shows it (secrets shown)."""
        shown = json.loads(self.pulumi("config", "--json", "--show-secrets").stdout)
        return {key.split(":", 1)[1]: entry.get("objectValue", entry.get("value")) for key, entry in shown.items()}


def _copy(source: Path, target: Path, replace: bool = True) -> None:
    """`source` as `target`; a directory replaced whole, or (replace=False) its files
    written over the target's, which keeps what the target has of its own."""
    if source.is_dir():
        if replace:
            shutil.rmtree(target, ignore_errors=True)
        # Never a virtualenv or generated SDK of the source's own: the copy makes its own.
        shutil.copytree(source, target, dirs_exist_ok=not replace,
                        ignore=shutil.ignore_patterns("__pycache__", "venv", "node_modules", "sdks"))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def package_virtualenv(package: Path) -> Path:
    """The package's virtualenv (`venv`, as its PulumiPlugin.yaml says), whose Python reads
    the test environment's packages through a .pth file: Pulumi's install of the package
    (`pulumi package add`, `get-schema`) then finds the program's requirements installed and
    upgrades only pip, setuptools and wheel, inside it (from PyPI), never in the test
    environment. (A symlink to the environment, as a Python program's copy has, will not
    do: that install runs `python -m venv` on it.)"""
    venv = package / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        Path(purelib, "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@dataclass
class ExampleProject(Project):
    """A program of examples/ (examples/yaml: a YAML program that uses the package) in a copy
    of the checkout's package files, so that the path it names the package by holds: the
    project is `root/checkout/examples/NAME`, the package `root/checkout/package`. The
    package's virtualenv reads the test environment's packages (package_virtualenv), or,
    with linked_virtualenv False, is left for `pulumi package add` to make from PyPI, as a
    user's is."""
    example: str = "yaml"
    linked_virtualenv: bool = True

    @property
    def checkout(self) -> Path:
        return self.root / "checkout"

    @property
    def directory(self) -> Path:
        return self.checkout / "examples" / self.example

    @classmethod
    def create(cls, root: Path, env: dict[str, str], stack: str = "dev", source: Path = REPO,
               example: str = "yaml", linked_virtualenv: bool = True) -> "ExampleProject":
        """Copy the example and the package, and `pulumi stack init` the stack."""
        project = cls(root, env, stack, example, linked_virtualenv)
        for directory in ("home", "state"):
            (project.root / directory).mkdir(parents=True, exist_ok=True)
        project.sync_program(source)
        project.pulumi("stack", "init", stack)
        return project

    def sync_program(self, source: Path = REPO) -> None:
        """The example and the package as `source` has them now (the stack's config and
        state stay)."""
        for name in PACKAGE_FILES:
            _copy(source / name, self.checkout / name)
        _copy(source / "examples" / self.example, self.directory, replace=False)
        if self.linked_virtualenv:
            package_virtualenv(self.checkout / "package")

    @property
    def program(self) -> dict:
        """The example's Pulumi.yaml."""
        return yaml.safe_load((self.directory / "Pulumi.yaml").read_text())

    def write_program(self, program: dict) -> None:
        (self.directory / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))
