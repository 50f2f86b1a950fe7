"""The README's main command, verbatim, as a new user runs it: a fresh checkout with no
`venv` (Pulumi makes it from requirements.txt), `pulumi login --local` into a HOME of the
test's own, a PULUMI_HOME holding only the providers, and a passphrase; against the real
cluster. Its one concession to this cluster, made in the stack file a user edits: every
role on the local image (nothing can be pulled here), and resources that fit the node."""

import os
import re
import shutil
from pathlib import Path

import yaml

from pool.defaults import ROLES
from tests.kube import build
from tests.kube.kubectl import Kubectl
from tests.kube.pulumi import PROGRAM_FILES, REPO, install_providers, run
from tests.podsim.kubelet import wait_until
from tests.test_kube_walkthrough import CM, NAMESPACE, RESOURCES

README_TIMEOUT = 1500  # a first `pulumi up` installs the program's requirements first


def readme_up_command() -> str:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- up-command -->", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert "\n" not in block.strip()
    return block.strip()


def checkout(root) -> None:
    """What a user's clone holds for `pulumi up`: the program and the dev stack's file."""
    root.mkdir(parents=True)
    for name in (*PROGRAM_FILES, "Pulumi.dev.yaml"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, root / name)


def test_the_readmes_command_brings_up_a_pool_and_pulumi_destroy_removes_it(kube_cluster):
    cluster, cluster_env = kube_cluster
    base = cluster.workdir / "projects" / "readme"
    checkout(base / "checkout")
    stack_file = base / "checkout" / "Pulumi.dev.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    stack["config"]["htcondor-pool:images"] = {role: cluster_env["HTCONDOR_POOL_TEST_IMAGE"] for role in ROLES}
    stack["config"]["htcondor-pool:resources"] = RESOURCES
    stack_file.write_text(yaml.safe_dump(stack))

    env = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
    env.update(KUBECONFIG=cluster_env["KUBECONFIG"], PATH=cluster_env["PATH"], HOME=str(base / "home"),
               PULUMI_HOME=str(base / "pulumi-home"), PULUMI_CONFIG_PASSPHRASE="a passphrase of the test's",
               PULUMI_SKIP_UPDATE_CHECK="true", PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true")
    (base / "home").mkdir()
    install_providers(build.build_all().providers(), env)

    # `pulumi login --local` puts state under `~/.pulumi`, where `~` is the home directory
    # the user database gives (Go's user.Current), not $HOME. In a mount namespace of its
    # own each command sees a copy of /etc/passwd that gives root the test's HOME, so that
    # nothing of it lands in the machine's own home directory.
    passwd = base / "passwd"
    passwd.write_text(re.sub(r"^(root:[^:]*:0:0:[^:]*:)[^:]*:", rf"\g<1>{base / 'home'}:",
                             Path("/etc/passwd").read_text(), flags=re.M))

    def as_user(command: str, timeout: float = README_TIMEOUT):
        return run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount --bind "$0" /etc/passwd && exec sh -c "$1"', str(passwd), command],
                   base / "checkout", env, timeout)

    command = readme_up_command()
    kubectl = Kubectl({**os.environ, **cluster_env})
    try:
        result = as_user(command)
        assert result.returncode == 0, f"{command}\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        assert list((base / "home" / ".pulumi" / "stacks").rglob("dev.json"))  # --local: under the test's HOME
        assert (base / "checkout" / "venv" / "bin" / "python").exists()  # made by Pulumi from requirements.txt

        wanted = {"Collector", "Negotiator", "Scheduler", "Machine"}
        seen: set[str] = set()

        def every_daemon_advertised() -> bool:
            # Each daemon sends its first ad on its own schedule after its pod starts, so the
            # test waits for all of them, not for the first one (a clean-clone CI queried
            # after the worker's ad and before the schedd's)
            answer = kubectl("-n", NAMESPACE, "exec", f"deploy/{CM}", "--", "condor_status", "-any", "-af",
                             "MyType", check=False)
            if answer.returncode == 0:
                seen.clear()
                seen.update(answer.stdout.split())
            return wanted <= seen

        try:
            wait_until(every_daemon_advertised, 180, 1, "the pool's ads")
        except TimeoutError:
            raise AssertionError(f"after 180 s the collector knew {sorted(seen)}, missing {sorted(wanted - seen)}")
    finally:
        destroyed = as_user("pulumi destroy --yes")
    assert destroyed.returncode == 0, destroyed.stdout[-4000:] + destroyed.stderr[-2000:]
    assert "NotFound" in kubectl("get", "namespace", NAMESPACE, check=False).stderr
    removed = as_user("pulumi stack rm --yes dev", timeout=120)
    assert removed.returncode == 0, removed.stderr
