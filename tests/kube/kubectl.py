"""`kubectl` as a user types it, against the cluster `python -m tests.kube up` started, and
a pod handle whose `exec` is `kubectl exec` (the same interface as the emulator's pods, so
tests/htcondor_jobs.py drives either)."""

import json
import os
import shlex
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path


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

    def as_service_account(self, namespace: str, account: str, directory: Path) -> "Kubectl":
        """kubectl as whoever holds `account`'s token: a token the API server issues for it
        (`kubectl create token`), in a kubeconfig of its own in `directory` that holds
        nothing else (no client certificate that would authenticate first)."""
        token = self("-n", namespace, "create", "token", account, "--duration=1h").stdout.strip()
        view = self.json("config", "view", "--raw", "--minify")
        (cluster,) = view["clusters"]
        config = {"apiVersion": "v1", "kind": "Config", "current-context": account,
                  "clusters": [{"name": "cluster", "cluster": cluster["cluster"]}],
                  "users": [{"name": account, "user": {"token": token}}],
                  "contexts": [{"name": account, "context": {"cluster": "cluster", "user": account}}]}
        path = directory / f"kubeconfig-{namespace}-{account}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return Kubectl({**self.env, "KUBECONFIG": str(path)})

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


@dataclass
class PodWatch:
    """`kubectl get pods --watch --output-watch-events -o json` of a label selector, in the
    background, for as long as the `with` block: every change of every matching pod in the
    API server's own order (`events`: (type, pod)), with nothing missed between polls.
    The watcher runs in a process group of its own, killed on leaving."""

    kubectl: Kubectl
    namespace: str
    selector: str
    events: list[tuple[str, dict]] = field(default_factory=list)

    def __enter__(self) -> "PodWatch":
        self._process = subprocess.Popen(
            ["kubectl", "-n", self.namespace, "get", "pods", "-l", self.selector, "--watch",
             "--output-watch-events", "-o", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.kubectl.env,
            start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        decoder, buffered = json.JSONDecoder(), ""
        for line in self._process.stdout:
            buffered += line
            try:
                event, end = decoder.raw_decode(buffered.lstrip())
            except json.JSONDecodeError:
                continue  # an object printed over several lines, not whole yet
            buffered = buffered.lstrip()[end:]
            self.events.append((event["type"], event["object"]))

    def __exit__(self, *_) -> None:
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.wait()
        self._reader.join(timeout=10)
