"""Apply the program's objects to the real cluster as `pulumi up` with pulumi-kubernetes
does, with `kubectl`: until the real Pulumi CLI can be built here (README, "The real
cluster"), this stands in for the Pulumi engine, and nothing else does.

- The objects are the ones the program registers under Pulumi mocks (tests/render.py),
  the same the unit tests check and the emulator runs, never a hand-written copy.
- `up` applies them with server-side apply (pulumi-kubernetes' default), each once the
  objects it depends on are done and side by side with the others that are ready, as the
  Pulumi engine schedules them; and it waits for each as the provider's await logic does: a Deployment until its
  rollout is complete and its pods ready, a Service with a selector until its endpoints
  settle, a claim until Bound (or Pending under a WaitForFirstConsumer class), a Namespace
  until Active. As Pulumi diffs the program against its state, an object the last `up`
  applied unchanged is left alone; one the program no longer registers is deleted, newest
  first.
- `destroy` deletes everything, newest first, waiting for each to be gone (foreground: a
  Deployment with its pods, as the provider does).
- `has_changes` is `pulumi preview --expect-no-changes` in reverse: would applying again
  change anything on the server (`kubectl diff --server-side`)?
"""

import difflib
import hashlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

FIELD_MANAGER = "htcondor-pool-test"
DEPLOYMENT_TIMEOUT = 600  # pulumi-kubernetes' defaults
SERVICE_TIMEOUT = 600
CLAIM_TIMEOUT = 300
DELETE_TIMEOUT = 660  # a worker's longest drain (workerGracePeriodSeconds' default, 600 s) and some
SERVICE_SETTLE_SECONDS = 10  # endpoints unchanged this long count as settled, as the provider's


def _ref(manifest: dict) -> tuple[str, str, str]:
    meta = manifest["metadata"]
    return manifest["kind"], meta.get("namespace", ""), meta["name"]


def _declared(obj: dict) -> dict:
    """An object without what controllers and the server keep changing on their own."""
    obj = {key: value for key, value in obj.items() if key != "status"}
    if "metadata" in obj:
        obj["metadata"] = {key: value for key, value in obj["metadata"].items()
                           if key not in ("resourceVersion", "managedFields")}
    return obj


def _digest(manifest: dict) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


@dataclass
class Deployer:
    kubectl: list[str]  # e.g. ["kubectl"] with KUBECONFIG in env
    env: dict[str, str]
    # What the last `up` left, in order: each object's (kind, namespace, name) and a digest
    # of what was applied, never the object itself (a Secret's data stays in the Secret).
    applied: list[tuple[tuple[str, str, str], str]] = field(default_factory=list)
    state_file: Path | None = None  # where `applied` persists between runs, if anywhere

    def __post_init__(self):
        self._running: set[subprocess.Popen] = set()  # kubectl commands under way, from any thread
        if self.state_file is not None and self.state_file.exists():
            self.applied = [(tuple(ref), digest) for ref, digest in json.loads(self.state_file.read_text())]

    def _save(self) -> None:
        if self.state_file is not None:
            self.state_file.write_text(json.dumps(self.applied))

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120, check: bool = True):
        with subprocess.Popen([*self.kubectl, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=self.env) as child:
            self._running.add(child)
            try:
                stdout, stderr = child.communicate(stdin, timeout=timeout)
            except BaseException:
                child.kill()
                raise
            finally:
                self._running.discard(child)
        result = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        result = self.run(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise RuntimeError(f"kubectl get {kind}/{name}: {result.stderr.strip()}")
        return json.loads(result.stdout)

    # ---- up ------------------------------------------------------------------------------
    def up(self, rendered) -> None:
        resources = [r for r in rendered.resources if r.type.startswith("kubernetes:")]
        manifests = [r.inputs for r in resources]
        wanted = {_ref(m) for m in manifests}
        done = {r.urn for r in rendered.resources if not r.type.startswith("kubernetes:")}
        pending = list(resources)
        pool = ThreadPoolExecutor(max_workers=8)
        try:
            while pending:
                ready = [r for r in pending if set(r.dependencies) <= done]
                if not ready:
                    raise RuntimeError(f"dependency cycle among {[r.name for r in pending]}")
                list(pool.map(self._create_or_update, [r.inputs for r in ready]))
                done |= {r.urn for r in ready}
                pending = [r for r in pending if r not in ready]
        except BaseException:
            # A failure or Ctrl-C: stop the waits still running (a rollout waits up to
            # DEPLOYMENT_TIMEOUT) instead of letting them hold the teardown up.
            for child in list(self._running):
                child.kill()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for ref, _ in reversed(self.applied):
            if ref not in wanted:
                self.delete(ref)
        self.applied = [(_ref(m), _digest(m)) for m in manifests]
        self._save()

    def _create_or_update(self, manifest: dict) -> None:
        if (_ref(manifest), _digest(manifest)) in self.applied:
            return  # no diff against the last `up`: Pulumi neither updates nor awaits it
        self.run("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}",
                 "-f", "-", stdin=yaml.safe_dump(manifest))
        self.await_ready(manifest)

    def await_ready(self, manifest: dict) -> None:
        kind, namespace, name = _ref(manifest)
        if kind == "Deployment":
            self.run("rollout", "status", f"deployment/{name}", "-n", namespace,
                     f"--timeout={DEPLOYMENT_TIMEOUT}s", timeout=DEPLOYMENT_TIMEOUT + 30)
        elif kind == "Service" and manifest.get("spec", {}).get("selector"):
            self._await_service(namespace, name, manifest["spec"]["selector"])
        elif kind == "PersistentVolumeClaim":
            self._await(lambda: self._claim_ready(namespace, name), CLAIM_TIMEOUT, f"claim {name} to bind")
        elif kind == "Namespace":
            self._await(lambda: (self.get("namespace", "", name) or {}).get("status", {}).get("phase") == "Active",
                        60, f"namespace {name} to be Active")

    def _claim_ready(self, namespace: str, name: str) -> bool:
        claim = self.get("pvc", namespace, name) or {}
        phase = claim.get("status", {}).get("phase")
        if phase == "Bound":
            return True
        class_name = claim.get("spec", {}).get("storageClassName")
        storage_class = self.get("storageclass", "", class_name) if class_name else None
        return phase == "Pending" and (storage_class or {}).get("volumeBindingMode") == "WaitForFirstConsumer"

    def _await_service(self, namespace: str, name: str, selector: dict) -> None:
        # A selector that matches no pod yet does not block (pulumi-kubernetes 4.17 and later);
        # otherwise the endpoints settle: unchanged for SERVICE_SETTLE_SECONDS, none not ready.
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        if not json.loads(self.run("get", "pods", "-n", namespace, "-l", labels, "-o", "json").stdout)["items"]:
            return

        def endpoints():
            slices = json.loads(self.run("get", "endpointslices", "-n", namespace, "-l",
                                         f"kubernetes.io/service-name={name}", "-o", "json").stdout)["items"]
            return sorted((a, e.get("conditions", {}).get("ready", False)) for s in slices
                          for e in s.get("endpoints") or [] for a in e["addresses"])
        last, since = None, time.monotonic()
        deadline = time.monotonic() + SERVICE_TIMEOUT
        while time.monotonic() < deadline:
            now = endpoints()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= SERVICE_SETTLE_SECONDS and all(ready for _, ready in now):
                return
            time.sleep(1)
        raise TimeoutError(f"Service {name}'s endpoints did not settle: {last}")

    @staticmethod
    def _await(check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

    # ---- preview and destroy -----------------------------------------------------------
    def has_changes(self, rendered) -> str:
        """What re-applying `rendered` would change on the server ('' if nothing), as a
        unified diff of each object before and after a server-side dry-run apply. Like
        `pulumi preview`, it compares what is declared: each object's status and the
        server's bookkeeping (resourceVersion, managedFields) are left out, as controllers
        change them at any time (`kubectl diff` once reported a Deployment's
        terminatingReplicas going from 1 to 0 between its two reads)."""
        manifests = rendered.manifests()
        result = self.run("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}",
                          "--dry-run=server", "-o", "json", "-f", "-", stdin=yaml.safe_dump_all(manifests))
        merged = json.loads(result.stdout)
        merged = merged["items"] if merged.get("kind") == "List" else [merged]
        changes = []
        for after in merged:
            ref = _ref(after)
            before = _declared(self.get(*ref) or {})
            after = _declared(after)
            if before != after:
                changes += difflib.unified_diff(
                    yaml.safe_dump(before).splitlines(), yaml.safe_dump(after).splitlines(),
                    f"live {'/'.join(filter(None, ref))}", "after apply", lineterm="")
        return "\n".join(changes)

    def delete(self, ref: tuple[str, str, str]) -> None:
        kind, namespace, name = ref
        # Foreground, as pulumi-kubernetes deletes (unless an object's
        # pulumi.com/deletionPropagationPolicy says otherwise): a Deployment is gone once its
        # pods are, each after its preStop hook, within its grace period.
        args = ["delete", kind, name, "--ignore-not-found", "--cascade=foreground", "--wait=true",
                f"--timeout={DELETE_TIMEOUT}s"]
        self.run(*args + (["-n", namespace] if namespace else []), timeout=DELETE_TIMEOUT + 30)

    def destroy(self) -> None:
        for ref, _ in reversed(self.applied):
            self.delete(ref)
        self.applied = []
        self._save()
