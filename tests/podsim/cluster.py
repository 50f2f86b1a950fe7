"""The emulated control plane: applies the program's rendered objects in Pulumi's order,
runs Deployments as a ReplicaSet controller would, keeps the Service's endpoint on a ready
pod, and tears everything down."""

import hashlib
import json
import secrets as random_tokens
import subprocess
import threading
import time
from pathlib import Path

from .kubelet import Pod, wait_until
from .network import Network, ip, leftover_namespaces, remove_namespace
from .node import Node

HTCONDOR_LOGS = ("MasterLog", "CollectorLog", "NegotiatorLog", "SchedLog", "ShadowLog",
                 "StartLog", "StarterLog", "SharedPortLog")


class Cluster:
    def __init__(self, rootfs: Path, workdir: Path, name: str = "podsim", node: Node | None = None):
        self.name = name
        self.rootfs = rootfs
        self.workdir = workdir
        self.node = node or Node(name)  # the one node every pod runs on
        self.prefix = f"ps-{name}-"
        self.network = Network(self.prefix)
        self.config_maps: dict[str, dict] = {}
        self.secrets: dict[str, dict] = {}
        self.services: dict[str, dict] = {}
        self.deployments: dict[str, dict] = {}
        self.network_policies: dict[str, dict] = {}
        self.rolling: set[str] = set()  # Deployments in a rollout
        self.claims: dict[str, dict] = {}
        self.volume_dirs: dict[str, Path] = {}
        self.pods: dict[str, Pod] = {}
        self.gone: list[Pod] = []  # deleted pods, kept for their logs until teardown
        self.events: list[tuple[float, str]] = []
        self.rendered = None  # what apply_rendered ran
        self.lock = threading.RLock()

    # ---- setup and teardown --------------------------------------------------------
    def start(self) -> "Cluster":
        stale = leftover_namespaces(self.prefix)
        if any(ip("netns", "pids", netns, check=False).stdout.split() for netns in stale):
            raise RuntimeError(f"an emulated cluster {self.name!r} is running: {stale}; "
                               f"run `python -m tests.podsim --name {self.name} down`")
        # What a run killed before its teardown left (the machine restarted, SIGKILL): nothing
        # runs there any more, so clear it, as tests/kube does with its cluster's leftovers.
        for netns in stale:
            remove_namespace(netns)
        if stale:
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.workdir)], check=False)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.network.create()
        self.event("cluster started")
        return self

    def teardown(self) -> None:
        with self.lock:
            pods = list(self.pods.values())
            self.pods.clear()
        try:
            for pod in pods:
                try:
                    pod.delete(grace=0)
                except Exception as exc:  # e.g. interrupted while it started: still tear down
                    self.event(f"pod {pod.name} did not stop cleanly: {exc!r}")
                    pod.kill_all()
                self.gone.append(pod)
        finally:
            self.network.destroy()  # also kills whatever still runs in a pod's namespace
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.workdir)], check=False)

    def event(self, text: str) -> None:
        self.events.append((time.time(), text))

    # ---- applying objects ------------------------------------------------------------
    def apply_rendered(self, rendered, timeout: float = 180) -> None:
        """Create or update a rendered program's objects in registration order, waiting for
        each Deployment to be Available before its dependents, as `pulumi up` does with
        pulumi-kubernetes' await logic; then delete, newest first, what the last program
        applied registered and this one no longer does."""
        previous, self.rendered = self.rendered, rendered
        kept = set()
        for resource in rendered.resources:
            if resource.type.startswith("kubernetes:"):
                self.apply(resource.inputs, timeout)
                kept.add(_ref(resource.inputs))
        for resource in reversed(previous.resources if previous else []):
            if resource.type.startswith("kubernetes:") and _ref(resource.inputs) not in kept:
                self.delete(resource.inputs, timeout)

    def apply(self, manifest: dict, timeout: float = 180) -> None:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        self.event(f"apply {kind}/{name}")
        if kind == "Namespace":
            return
        if kind == "ConfigMap":
            self.config_maps[name] = manifest
        elif kind == "Secret":
            self.secrets[name] = manifest
        elif kind == "PersistentVolumeClaim":
            # A claim is bound at once to a directory that outlives every pod using it.
            self.claims[name] = manifest
            self.volume_dirs.setdefault(name, self._new_volume(name))
        elif kind == "Service":
            if name in self.services:  # an update keeps the Service's virtual IP
                if manifest["spec"] != self.services[name]["spec"]:
                    raise NotImplementedError(f"the emulator cannot change Service {name}")
                return
            self.services[name] = manifest
            self.network.add_service(name, [(p.get("protocol", "TCP"), p["port"], p.get("targetPort", p["port"]))
                                            for p in manifest["spec"]["ports"]])
        elif kind == "NetworkPolicy":
            self.network_policies[name] = manifest
            self.enforce_network_policies()
        elif kind == "Deployment":
            previous = self.deployments.get(name)
            self.deployments[name] = manifest
            if previous is not None and previous["spec"]["template"] != manifest["spec"]["template"]:
                self.roll_out(name, timeout)
            else:
                self.reconcile(name)
            self.wait_available(name, timeout)
        else:
            raise NotImplementedError(f"the emulator cannot run a {kind}")

    def delete(self, manifest: dict, timeout: float = 180) -> None:
        """Delete an object as pulumi-kubernetes does: with foreground propagation, so a
        Deployment is gone once its pods are, each after its preStop hook and grace."""
        kind, name = _ref(manifest)
        self.event(f"delete {kind}/{name}")
        if kind != "Deployment":
            raise NotImplementedError(f"the emulator cannot delete a {kind}")
        with self.lock:
            del self.deployments[name]
            pods = [p for p in self.pods.values() if p.deployment == name]
        for pod in pods:
            if not pod.deleting:
                self.delete_pod(pod.name, replace=False)
        bound = max([timeout] + [p.grace_period() + 60 for p in pods])
        wait_until(lambda: not any(p.deployment == name for p in list(self.pods.values())), bound, 0.1,
                   f"the pods of {name} to terminate")
        self.event(f"deployment {name} deleted")

    def _new_volume(self, name: str) -> Path:
        path = self.workdir / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def service_names(self) -> dict[str, list[str]]:
        names = {}
        for name, manifest in self.services.items():
            ns = manifest["metadata"].get("namespace", "default")
            names[self.network.services[name].vip] = [
                f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc", f"{name}.{ns}", name]
        return names

    # ---- NetworkPolicies -------------------------------------------------------------------
    def enforce_network_policies(self) -> None:
        """Rewrite every pod's ingress and egress rules from the policies and the pods there
        are now."""
        # Terminating pods are still there, to be reached and to reach (a draining worker's
        # starter still talks to its shadow), until they are gone.
        with self.lock:
            for pod in list(self.pods.values()):
                for direction, peers_key, apply in (("Ingress", "from", self.network.set_ingress),
                                                    ("Egress", "to", self.network.set_egress)):
                    selecting = [p for p in self.network_policies.values()
                                 if p["metadata"].get("namespace", "default") == pod.namespace
                                 and direction in p["spec"].get("policyTypes", ["Ingress"])
                                 and _selects(p["spec"]["podSelector"], pod.labels)]
                    allowed = None
                    if selecting:
                        allowed = [(self._peers(rule.get(peers_key), pod.namespace),
                                    [(port.get("protocol", "TCP"), port["port"]) for port in rule["ports"]]
                                    if rule.get("ports") else None)
                                   for policy in selecting
                                   for rule in policy["spec"].get(direction.lower(), [])]
                    apply(pod.netns, allowed)

    def _peers(self, peers: list | None, namespace: str) -> list | None:
        """A rule's peers as addresses: pod IPs, and CIDRs (with their exceptions, if any,
        as (cidr, [except, ...])); None for anywhere."""
        if not peers:
            return None
        found = []
        for peer in peers:
            if set(peer) - {"podSelector", "ipBlock"}:
                raise NotImplementedError(f"the emulator cannot enforce the peer {peer}")
            if "ipBlock" in peer:
                block = peer["ipBlock"]
                found.append((block["cidr"], block["except"]) if block.get("except") else block["cidr"])
            else:
                found += [p.ip for p in self.pods.values() if p.namespace == namespace
                          and _selects(peer["podSelector"], p.labels)]
        return found

    # ---- the ReplicaSet controller -------------------------------------------------------
    def roll_out(self, deployment: str, timeout: float) -> None:
        """Replace the pods of an older template, as the Deployment controller does:
        Recreate stops them all before starting new ones; RollingUpdate here surges one new
        pod at a time and stops an old one once the new one is ready (maxSurge 1,
        maxUnavailable 0: what the defaults come to for one replica, and never faster)."""
        manifest = self.deployments[deployment]
        prefix = f"{deployment}-{template_hash(manifest['spec']['template'])}-"
        old = [p for p in self.pods_of(deployment) if not p.name.startswith(prefix)]
        strategy = manifest["spec"].get("strategy", {}).get("type", "RollingUpdate")
        self.event(f"rollout of {deployment} ({strategy}): {len(old)} pod(s) to replace")
        self.rolling.add(deployment)
        try:
            if strategy == "Recreate":
                for pod in old:
                    self.delete_pod(pod.name, replace=False)
                wait_until(lambda: not any(p.name in self.pods for p in old), timeout, 0.1,
                           f"the old pods of {deployment} to terminate")
            else:
                for pod in old:
                    new = self._create_pod(deployment, manifest)
                    wait_until(lambda: new.ready, timeout, 0.1, f"{new.name} to be ready")
                    self.delete_pod(pod.name, replace=False)
        finally:
            self.rolling.discard(deployment)
        self.reconcile(deployment)
        self.event(f"rollout of {deployment} done")

    def reconcile(self, deployment: str) -> None:
        if deployment in self.rolling:
            return  # roll_out creates and deletes this Deployment's pods meanwhile
        with self.lock:
            manifest = self.deployments[deployment]
            wanted = manifest["spec"]["replicas"]
            live = sorted(self.pods_of(deployment), key=lambda p: p.created)
            for _ in range(wanted - len(live)):
                self._create_pod(deployment, manifest)
            for pod in reversed(live[wanted:]):  # the newest go first
                self.delete_pod(pod.name)

    def _create_pod(self, deployment: str, manifest: dict) -> Pod:
        template = manifest["spec"]["template"]
        name = f"{deployment}-{template_hash(template)}-{random_tokens.token_hex(3)[:5]}"
        return self.run_pod(name, template, manifest["metadata"].get("namespace", "default"), deployment)

    def run_pod(self, name: str, template: dict, namespace: str = "default",
                deployment: str = "", subnet: int | None = None, address: str | None = None) -> Pod:
        """A pod from a pod template (a bare one unless `deployment` owns it); returns once
        its container's command runs. `subnet`, `address`: see Network.add_pod."""
        template = json.loads(json.dumps(template))
        netns, address = self.network.add_pod(name, subnet, address)
        labels = template.get("metadata", {}).get("labels", {})
        pod = Pod(name=name, namespace=namespace, deployment=deployment, role=labels.get(
                  "app.kubernetes.io/component", name), template=template,
                  directory=self.workdir / "pods" / name, rootfs=self.rootfs, netns=netns,
                  ip=address, labels=labels, on_change=self._pod_changed, on_event=self.event)
        with self.lock:
            self.pods[name] = pod
            pending = self._unschedulable(pod)
            if not pending:
                self._admit(pod)
        # Its own ingress rules before it runs, and its IP in the others' rules.
        self.enforce_network_policies()
        if not pending:
            self._start(pod)
            return pod
        # As the scheduler does: the pod stays Pending until it fits (a ReadWriteOncePod
        # claim's holder gone, terminated and not just deleted; GPUs free), or for good
        # when no node has the labels it selects.
        self.event(f"pod {name} pending: {'; '.join(pending)}")

        def start_when_free():
            try:
                wait_until(lambda: pod.deleting or not self._unschedulable(pod), 600, 0.1,
                           f"pending pod {name} to fit")
                with self.lock:
                    if pod.deleting or self._unschedulable(pod):
                        return
                    self._admit(pod)
                self._start(pod)
            except Exception as exc:  # noqa: BLE001 - reported in the event timeline
                self.event(f"pod {name} failed to start: {exc!r}")
        threading.Thread(target=start_when_free, name=f"pending-{name}", daemon=True).start()
        return pod

    def _unschedulable(self, pod: Pod) -> list[str]:
        """Why `pod` cannot start now ([] if it can): the node's fit, then its claims."""
        spec = pod.template["spec"]
        reasons = self.node.unschedulable(pod.name, spec, pod.container)
        reasons += [f"{claim} in use by another pod (ReadWriteOncePod)" for claim in self._claims_in_use(pod)]
        return reasons

    def _admit(self, pod: Pod) -> None:
        """Past the scheduler: bound to the node, given its devices (under self.lock)."""
        pod.admitted = True
        pod.device_env = self.node.allocate(pod.name, pod.container)

    def _start(self, pod: Pod) -> None:
        pod.prepare(self.config_maps, self.secrets, self.volume_dirs, self.service_names())
        pod.start_container()
        pod.supervise()
        self.event(f"pod {pod.name} started ({pod.ip})")

    def _claims_in_use(self, pod: Pod) -> list[str]:
        """`pod`'s ReadWriteOncePod claims that another pod, terminating ones included, holds."""
        exclusive = [c for c in pod.claims()
                     if "ReadWriteOncePod" in self.claims.get(c, {}).get("spec", {}).get("accessModes", [])]
        return [c for c in exclusive for other in list(self.pods.values())
                if other is not pod and other.admitted and c in other.claims()]

    def run_host(self, name: str, files: dict[str, str], command: list[str],
                 env: dict[str, str] | None = None, subnet: int = 200, address: str | None = None) -> Pod:
        """A machine outside the pool on the pod network, configured by its own admin: its
        files (mounted under /etc/outside) and command, nothing from the program. Its
        address is in 10.244.`subnet`.0/24, or `address` (routed: see Network.add_pod)."""
        self.config_maps[f"{name}-files"] = {"data": files}
        template = {"metadata": {"labels": {}}, "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "host", "command": command,
                            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                            "volumeMounts": [{"name": "files", "mountPath": "/etc/outside"},
                                             {"name": "local", "mountPath": "/var/lib/outside"}]}],
            "volumes": [{"name": "files", "configMap": {"name": f"{name}-files"}},
                        {"name": "local", "emptyDir": {}}]}}
        return self.run_pod(name, template, subnet=subnet, address=address)

    def pods_of(self, deployment: str) -> list[Pod]:
        return [p for p in self.pods.values() if p.deployment == deployment and not p.deleting]

    def pods_by_role(self, role: str) -> list[Pod]:
        return [p for p in self.pods.values() if p.role == role and not p.deleting]

    def pod(self, name: str) -> Pod:
        return self.pods[name]

    def delete_pod(self, name: str, grace: float | None = None, wait: bool = False,
                   replace: bool = True) -> None:
        """Like `kubectl delete pod`: the pod terminates (preStop, SIGTERM, grace, SIGKILL)
        while its Deployment starts a replacement at once (unless `replace` is False)."""
        with self.lock:
            pod = self.pods[name]
            pod.deleting = True
            self.event(f"pod {name} deleted")
        self._pod_changed(pod)
        finished = threading.Event()

        def terminate():
            try:
                pod.delete(grace)
            finally:
                self.network.remove_pod(pod.netns)
                with self.lock:
                    self.node.release(name)
                    self.pods.pop(name, None)
                    self.gone.append(pod)
                self.enforce_network_policies()
                self.event(f"pod {name} terminated")
                finished.set()

        threading.Thread(target=terminate, name=f"terminate-{name}", daemon=True).start()
        if replace and pod.deployment in self.deployments:
            self.reconcile(pod.deployment)
        if wait:
            finished.wait(pod.grace_period() + 60)

    def scale(self, deployment: str, replicas: int) -> None:
        with self.lock:
            self.deployments[deployment]["spec"]["replicas"] = replicas
        self.event(f"scale {deployment} to {replicas}")
        self.reconcile(deployment)

    def wait_available(self, deployment: str, timeout: float) -> None:
        wanted = self.deployments[deployment]["spec"]["replicas"]
        try:
            wait_until(lambda: sum(p.ready for p in self.pods_of(deployment)) >= wanted, timeout,
                       0.1, f"Deployment {deployment} to have {wanted} ready pods")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.diagnostics()}") from None
        self.event(f"deployment {deployment} available")

    # ---- Services ------------------------------------------------------------------------
    def _pod_changed(self, pod: Pod) -> None:
        self.event(f"pod {pod.name} {'ready' if pod.ready and not pod.deleting else 'not ready'}")
        with self.lock:
            for name, service in self.services.items():
                selector = service["spec"]["selector"]
                ready = [p for p in self.pods.values() if p.ready and not p.deleting
                         and selector.items() <= p.labels.items()]
                current = self.network.services[name].endpoint
                chosen = next((p for p in ready if p.ip == current), ready[0] if ready else None)
                # A named targetPort means the endpoint container's port of that name.
                named = {port["name"]: port["containerPort"] for port in
                         (chosen.container.get("ports", []) if chosen else []) if "name" in port}
                self.network.set_endpoint(name, chosen.ip if chosen else None, named)

    # ---- debugging -----------------------------------------------------------------------
    def diagnostics(self, lines: int = 30) -> str:
        """The tails of every pod's HTCondor logs, container output and probe failures."""
        out = []
        with self.lock:
            pods = list(self.pods.values()) + list(self.gone)
        for pod in pods:
            state = "deleted" if pod.deleting else ("ready" if pod.ready else "not ready")
            out.append(f"===== pod {pod.name} ({pod.role}, {pod.ip}, {state}, restarts {pod.restarts})")
            out.append("--- container output\n" + pod.tail("container.log", lines))
            if pod.probe_log:
                out.append("--- probe failures\n" + "\n".join(f"{t:.1f} {m}" for t, m in pod.probe_log[-5:]))
            try:
                log_dir = pod.local_dir("/var/lib/htcondor-pool") / "log"
            except KeyError:
                continue
            for log in sorted(log_dir.glob("*Log*")) if log_dir.exists() else []:
                if log.name.startswith(HTCONDOR_LOGS):
                    out.append(f"--- {log.name}\n" + pod.tail(str(log), lines))
        return "\n".join(out)


def _ref(manifest: dict) -> tuple[str, str]:
    return manifest["kind"], manifest["metadata"]["name"]


def template_hash(template: dict) -> str:
    """As the pod-template-hash label: pods of one template share it."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _selects(selector: dict, labels: dict) -> bool:
    """A label selector: matchLabels, and matchExpressions with In, NotIn, Exists and
    DoesNotExist, as Kubernetes evaluates them."""
    if set(selector) - {"matchLabels", "matchExpressions"}:
        raise NotImplementedError(f"the emulator cannot evaluate the selector {selector}")
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                   "Exists": key in labels, "DoesNotExist": key not in labels}
        if operator not in matched:
            raise NotImplementedError(f"the emulator cannot evaluate the operator {operator}")
        if not matched[operator]:
            return False
    return selector.get("matchLabels", {}).items() <= labels.items()
