"""`kubectl` as a user types it, against the cluster `python -m tests.kube up` started, and
a pod handle whose `exec` is `kubectl exec` (the same interface as the emulator's pods, so
tests/htcondor_jobs.py drives either)."""

import json
import shlex
import subprocess
from dataclasses import dataclass


@dataclass
class Kubectl:
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 120,
                 check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True,
                                env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {shlex.join(args)} failed ({result.returncode}): "
                                 f"{result.stderr.strip()}")
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json").stdout)

    def pods(self, namespace: str, selector: str) -> list[dict]:
        """Running, not terminating pods matching a label selector."""
        return [p for p in self.json("get", "pods", "-n", namespace, "-l", selector)["items"]
                if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]]


@dataclass
class KubePod:
    """A pod (or `deploy/NAME`, which kubectl resolves to one of its pods) to exec in."""
    kubectl: Kubectl
    namespace: str
    name: str

    def exec(self, command: list[str], user: str | None = None, timeout: float = 60,
             stdin: str | None = None) -> subprocess.CompletedProcess:
        if user:
            # As the emulator does: the container's root becomes the user with the image's
            # own setpriv, keeping the container's environment (CONDOR_CONFIG) but for the
            # user's own HOME, USER and LOGNAME, in the home directory.
            become = ('USER=$(id -un); LOGNAME=$USER; HOME=$(getent passwd "$USER" | cut -d: -f6); '
                      'export USER LOGNAME HOME; cd "$HOME" && exec "$@"')
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                       "/bin/sh", "-c", become, "sh", *command]
        args = ["exec", "-n", self.namespace, *(["-i"] if stdin is not None else []), self.name, "--", *command]
        return self.kubectl(*args, stdin=stdin, timeout=timeout, check=False)
