"""One emulated pod: its files, environment and processes, as a kubelet would make them.

- ConfigMap and Secret volumes are written in the kubelet's atomic-writer layout: files in a
  timestamped directory, a `..data` symlink to it, and each top-level entry a symlink
  through `..data`, with the modes the manifest asks for, owned by root.
- Environment variables include downward-API values (resource limits, pod name and IP).
- The container runs in its own mount, UTS and PID namespace, in the pod's network
  namespace, with its command as PID 1 (see sandbox.py).
- exec runs a command in all of the container's namespaces with its environment, as root
  or as a user; probes are such execs with a timeout.
"""

import base64
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pool.quantity import parse_quantity

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def write_atomic_volume(directory: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """The kubelet's layout for ConfigMap/Secret volumes."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.000000000", time.gmtime())
    data_dir = directory / stamp
    data_dir.mkdir(mode=0o755)
    for path, (content, mode) in files.items():
        target = data_dir / path
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        target.write_bytes(content)
        os.chmod(target, mode)
    os.symlink(stamp, directory / "..data")
    for top in sorted({p.split("/", 1)[0] for p in files}):
        os.symlink(f"..data/{top}", directory / top)


def volume_files(volume: dict, config_maps: dict, secrets: dict) -> dict[str, tuple[bytes, int]]:
    if "configMap" in volume:
        source = volume["configMap"]
        obj = config_maps[source["name"]]
        data = {k: v.encode() for k, v in obj.get("data", {}).items()}
        data.update({k: base64.b64decode(v) for k, v in obj.get("binaryData", {}).items()})
    else:
        source = volume["secret"]
        obj = secrets[source["secretName"]]
        data = {k: base64.b64decode(v) for k, v in obj.get("data", {}).items()}
        data.update({k: v.encode() for k, v in obj.get("stringData", {}).items()})
    default_mode = source.get("defaultMode", 0o644)
    items = source.get("items") or [{"key": k, "path": k} for k in data]
    return {item["path"]: (data[item["key"]], item.get("mode", default_mode)) for item in items}


def resolve_env(container: dict, pod_name: str, namespace: str, pod_ip: str) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": pod_name, "HOME": "/root"}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        source = var["valueFrom"]
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            kind, resource = ref["resource"].split(".")
            amount = parse_quantity(container["resources"][kind][resource])
            divisor = parse_quantity(ref.get("divisor", "1"))
            env[var["name"]] = str(math.ceil(amount / divisor))  # the kubelet rounds up
        elif "fieldRef" in source:
            env[var["name"]] = {"metadata.name": pod_name, "metadata.namespace": namespace,
                                "status.podIP": pod_ip}[source["fieldRef"]["fieldPath"]]
        else:
            raise NotImplementedError(f"env source {source}")
    return env


# What a container runtime (containerd, CRI-O) grants a container that asks nothing else.
RUNTIME_DEFAULT_CAPABILITIES = ("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                                "MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID",
                                "SETPCAP", "SETUID", "SYS_CHROOT")


def identity(pod_context: dict, security_context: dict) -> dict | None:
    """Who a container runs as, as the runtime sets it from the pod's and the container's
    securityContext: {"uid", "gid", "groups"}, or None for the image's user (root here).
    A container that must not run as root but would is refused, as the kubelet does."""
    merged = {**pod_context, **security_context}
    uid = merged.get("runAsUser")
    if merged.get("runAsNonRoot") and not uid:
        raise RuntimeError("container has runAsNonRoot and image will run as root")
    if uid is None:
        return None
    groups = [g for g in [pod_context.get("fsGroup"), *pod_context.get("supplementalGroups", [])] if g is not None]
    return {"uid": uid, "gid": merged.get("runAsGroup", 0), "groups": groups}


def apply_fs_group(path: Path, fs_group: int, read_only: bool) -> None:
    """As the kubelet's SetVolumeOwnership: the volume's files become the fsGroup's, group
    readable (and writable unless the volume is read-only), directories setgid."""
    mask = 0o440 if read_only else 0o660
    for entry in [path, *path.rglob("*")]:
        if entry.is_symlink():
            continue
        os.chown(entry, -1, fs_group)
        mode = entry.stat().st_mode & 0o7777
        entry.chmod(mode | mask | (0o2110 if entry.is_dir() else 0))


def confinement(security_context: dict) -> dict:
    """What a container's securityContext lets it do, as the sandbox enforces it:
    `capabilities` (names, or None for all), `no_new_privs`, `read_only_root`."""
    if security_context.get("privileged"):
        return {"capabilities": None, "no_new_privs": False, "read_only_root": False}
    caps = security_context.get("capabilities", {})
    drop = {c.upper() for c in caps.get("drop", [])}
    kept = set() if "ALL" in drop else set(RUNTIME_DEFAULT_CAPABILITIES) - drop
    kept |= {c.upper() for c in caps.get("add", [])}
    return {"capabilities": sorted(kept),
            # Kubernetes' default is true (the runtime then sets no no_new_privs).
            "no_new_privs": security_context.get("allowPrivilegeEscalation") is False,
            "read_only_root": bool(security_context.get("readOnlyRootFilesystem"))}


def hosts_file(pod_name: str, pod_ip: str, service_names: dict[str, list[str]]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", f"{pod_ip}\t{pod_name}"]
    # The emulator's cluster DNS: Service names resolve to their stable virtual IPs.
    lines += [f"{vip}\t{' '.join(names)}" for vip, names in service_names.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Pod:
    name: str
    namespace: str
    deployment: str
    role: str
    template: dict
    directory: Path
    rootfs: Path
    netns: str
    ip: str
    labels: dict
    created: float = field(default_factory=time.monotonic)
    ready: bool = False
    ready_since: float | None = None
    restarts: int = 0
    probe_log: list = field(default_factory=list)
    pid1: int | None = None
    process: subprocess.Popen | None = None
    deleting: bool = False
    admitted: bool = False  # past the scheduler: may use its volumes (else Pending)
    env: dict = field(default_factory=dict)
    device_env: dict = field(default_factory=dict)  # the device plugin's, for its GPUs (node.py)
    user: dict | None = None  # runAsUser and friends (identity()); None: the image's root
    on_change: object = None  # called with the pod when its readiness changes
    on_event: object = None  # called with a line for the cluster's event timeline
    _stop: threading.Event = field(default_factory=threading.Event)

    def event(self, text: str) -> None:
        if self.on_event:
            self.on_event(f"pod {self.name} {text}")

    @property
    def container(self) -> dict:
        return self.template["spec"]["containers"][0]

    # ---- lifecycle -----------------------------------------------------------------
    def prepare(self, config_maps: dict, secrets: dict, volume_dirs: dict, service_names: dict) -> None:
        """Write the pod's volumes, hosts file and sandbox spec."""
        self.directory.mkdir(parents=True)
        spec = self.template["spec"]
        mounts = []
        fs_group = spec.get("securityContext", {}).get("fsGroup")
        for volume in spec.get("volumes", []):
            path = self.directory / "volumes" / volume["name"]
            if "configMap" in volume or "secret" in volume:
                write_atomic_volume(path, volume_files(volume, config_maps, secrets))
            elif "emptyDir" in volume:  # on disk; medium Memory changes nothing a pod sees
                path.mkdir(parents=True)
                path.chmod(0o777)  # as the kubelet creates it
            elif "persistentVolumeClaim" in volume:
                path = volume_dirs[volume["persistentVolumeClaim"]["claimName"]]
            else:
                raise NotImplementedError(f"volume {volume}")
            if fs_group is not None:
                apply_fs_group(path, fs_group, read_only="configMap" in volume or "secret" in volume)
            volume["_source"] = str(path)
        for m in self.container.get("volumeMounts", []):
            source = self.mount_source(m)
            if "subPath" in m and not source.exists():
                source.mkdir(parents=True)  # as the kubelet does; an existing file (or a
                # Secret's symlink to one) is mounted as the file itself
            mounts.append({"source": str(source), "target": m["mountPath"],
                           "read_only": m.get("readOnly", False)})
        (self.directory / "hosts").write_text(hosts_file(self.name, self.ip, service_names))
        (self.directory / "resolv.conf").write_text(
            f"search {self.namespace}.svc.cluster.local svc.cluster.local cluster.local\n")
        mounts += [{"source": str(self.directory / "hosts"), "target": "/etc/hosts"},
                   {"source": str(self.directory / "resolv.conf"), "target": "/etc/resolv.conf"}]
        self.env = {**resolve_env(self.container, self.name, self.namespace, self.ip), **self.device_env}
        self.user = identity(spec.get("securityContext", {}), self.container.get("securityContext", {}))
        command = self.container.get("command", []) + self.container.get("args", [])
        (self.directory / "sandbox.json").write_text(json.dumps({
            "rootfs": str(self.rootfs), "pod_dir": str(self.directory / "container"),
            "hostname": self.name, "mounts": mounts, "env": self.env, "command": command,
            "working_dir": self.container.get("workingDir"),
            **confinement(self.container.get("securityContext", {})),
            "user": self.user,
        }))

    def start_container(self) -> None:
        container_dir = self.directory / "container"
        if container_dir.exists():  # a restarted container gets a fresh writable layer
            subprocess.run(["rm", "-rf", "--one-file-system", str(container_dir)], check=True)
        container_dir.mkdir()
        log = open(self.directory / "container.log", "ab")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--uts", "--pid", "--fork",
             "--propagation", "private", sys.executable, "-m", "tests.podsim.sandbox",
             str(self.directory / "sandbox.json")],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        log.close()
        unshare = self.process.pid
        self.pid1 = wait_until(lambda: self._child_of(unshare), 10, 0.01, f"{self.name}'s PID 1")
        wait_until(lambda: self._in_container_root() or self.process.poll() is not None, 20, 0.01,
                   f"{self.name}'s container command")
        if self.process.poll() is not None:
            raise RuntimeError(f"pod {self.name} failed to start: {self.tail('container.log')}")

    def _child_of(self, pid: int) -> int | None:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def _in_container_root(self) -> bool:
        """PID 1 has moved into the container's root (an overlay: another device)."""
        try:
            return os.stat(f"/proc/{self.pid1}/root/").st_dev != os.stat("/").st_dev
        except OSError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def supervise(self) -> None:
        """The kubelet's loop for this pod: probes, and restarts (restartPolicy Always)."""
        threading.Thread(target=self._supervise, name=f"kubelet-{self.name}", daemon=True).start()

    def _supervise(self) -> None:
        readiness = self.container.get("readinessProbe")
        liveness = self.container.get("livenessProbe")
        next_ready = time.monotonic()
        next_live = time.monotonic() + (liveness or {}).get("initialDelaySeconds", 0)
        live_failures = ready_failures = 0
        while not self._stop.is_set():
            now = time.monotonic()
            if not self.running():
                self._set_ready(False)
                if self._stop.is_set():
                    return
                self.restarts += 1
                self._stop.wait(min(10, self.restarts))  # the kubelet's crash-loop back-off
                if not self._stop.is_set():
                    self.start_container()
                continue
            if readiness and now >= next_ready:
                ok = self.probe(readiness)
                ready_failures = 0 if ok else ready_failures + 1
                if ok:
                    self._set_ready(True)
                elif ready_failures >= readiness.get("failureThreshold", 3) or not self.ready:
                    self._set_ready(False)
                # Until ready, try every second to keep start-up fast; then on the period.
                next_ready = now + (readiness.get("periodSeconds", 10) if self.ready else 1)
            if liveness and now >= next_live:
                ok = self.probe(liveness)
                live_failures = 0 if ok else live_failures + 1
                next_live = now + liveness.get("periodSeconds", 10)
                if live_failures >= liveness.get("failureThreshold", 3):
                    self.probe_log.append((time.time(), "liveness failed: restarting"))
                    self.stop_container(grace=self.grace_period())
                    live_failures = 0
            self._stop.wait(0.2)

    def _set_ready(self, ready: bool) -> None:
        if ready != self.ready:
            self.ready = ready
            self.ready_since = time.monotonic() if ready else None
            if self.on_change:
                self.on_change(self)

    def probe(self, probe: dict) -> bool:
        try:
            if "httpGet" in probe:
                result = self.http_get(probe["httpGet"], timeout=probe.get("timeoutSeconds", 1))
            else:
                result = self.exec(probe["exec"]["command"], timeout=probe.get("timeoutSeconds", 1))
        except subprocess.TimeoutExpired:
            self.probe_log.append((time.time(), "probe timed out"))
            return False
        if result.returncode != 0:
            self.probe_log.append((time.time(), f"probe rc={result.returncode}: {result.stdout[-300:]}{result.stderr[-300:]}"))
        return result.returncode == 0

    def http_get(self, action: dict, timeout: float) -> subprocess.CompletedProcess:
        """An httpGet probe, as the kubelet sends it to the pod's address (from the pod's
        network namespace here: the emulator's node has no route into it): a status from
        200 to 399 succeeds. A named port is the container's port of that name."""
        port = action["port"]
        if isinstance(port, str):
            (port,) = [p["containerPort"] for p in self.container.get("ports", []) if p.get("name") == port]
        url = f"http://{self.ip}:{port}{action.get('path', '/')}"
        check = ("import sys, urllib.request\n"
                 f"status = urllib.request.urlopen({url!r}, timeout={timeout}).status\n"
                 "sys.exit(0 if 200 <= status < 400 else 1)\n")
        return subprocess.run(["ip", "netns", "exec", self.netns, sys.executable, "-c", check],
                              capture_output=True, text=True, timeout=timeout + 5)

    def grace_period(self) -> float:
        return float(self.template["spec"].get("terminationGracePeriodSeconds", 30))

    def stop_container(self, grace: float) -> None:
        """As the kubelet stops a container: its preStop hook (within the grace period),
        then SIGTERM to PID 1, then SIGKILL once the grace period is over (at least 2 s
        after SIGTERM when the hook used it all up)."""
        if not self.running():
            return
        if self.pid1 is None:  # stopped while starting: nothing to be graceful with
            self.kill_all()
            return
        deadline = time.monotonic() + grace
        pre_stop = self.container.get("lifecycle", {}).get("preStop", {}).get("exec")
        if pre_stop:
            self.event(f"preStop hook: {' '.join(pre_stop['command'])}")
            try:
                result = self.exec(pre_stop["command"], timeout=max(grace, 0.1))
                self.event(f"preStop hook exited {result.returncode} after "
                           f"{grace - (deadline - time.monotonic()):.1f}s")
            except subprocess.TimeoutExpired:
                self.event("preStop hook still running at the end of the grace period")
        try:
            os.kill(self.pid1, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=max(deadline - time.monotonic(), 2))
        except subprocess.TimeoutExpired:
            self.event("grace period over: SIGKILL")
            os.kill(self.pid1, signal.SIGKILL)  # kills every process in its PID namespace
            self.process.wait(timeout=30)

    def kill_all(self) -> None:
        """SIGKILL to everything the container started (its own session), whatever state
        it is in."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)

    def delete(self, grace: float | None = None) -> None:
        self.deleting = True
        self._stop.set()
        self._set_ready(False)
        self.stop_container(self.grace_period() if grace is None else grace)

    # ---- inside the pod ----------------------------------------------------------------
    def exec(self, command: list[str], user: str | None = None, timeout: float = 60,
             stdin: str | None = None) -> subprocess.CompletedProcess:
        """Like `kubectl exec`: the container's namespaces, root and environment."""
        env = dict(self.env)
        workdir = self.container.get("workingDir") or "/"
        entry = None
        if user:
            entry = self._passwd(user)
            env.update({"HOME": entry[5], "USER": user, "LOGNAME": user})
            workdir = entry[5]
        # As the runtime confines an exec: the container's capability bounding set and
        # no_new_privs, applied by the container's own setpriv (nsenter needs every
        # capability to get in, so it cannot drop them first).
        limits = confinement(self.container.get("securityContext", {}))
        confine = ["/usr/bin/setpriv", "--inh-caps=-all"]
        if limits["capabilities"] is not None:
            confine.append("--bounding-set=-all" + "".join(f",+{c.lower()}" for c in limits["capabilities"]))
        if limits["no_new_privs"]:
            confine.append("--no-new-privs")
        if user:
            confine += [f"--reuid={entry[2]}", f"--regid={entry[3]}", "--init-groups"]
        elif self.user:  # as the runtime runs an exec: the container's own user and groups
            confine += [f"--reuid={self.user['uid']}", f"--regid={self.user['gid']}",
                        f"--groups={','.join(map(str, self.user['groups']))}" if self.user["groups"]
                        else "--clear-groups"]
        # `env -C`: the directory is inside the container's root (nsenter --wd is not).
        argv = ["nsenter", "-t", str(self.pid1), "-m", "-u", "-n", "-p", "-r", "--", *confine, "--",
                "/usr/bin/env", "-i", "-C", workdir, *[f"{k}={v}" for k, v in env.items()], *command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin)

    def _passwd(self, user: str) -> list[str]:
        for line in (self.rootfs / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return fields
        raise KeyError(f"no user {user!r} in the pod's /etc/passwd")

    def mount_source(self, mount: dict) -> Path:
        """The host path a volume mount shows: its volume's directory, or a subPath in it."""
        (volume,) = [v for v in self.template["spec"]["volumes"] if v["name"] == mount["name"]]
        return Path(volume["_source"]) / mount.get("subPath", "")

    def claims(self) -> list[str]:
        return [v["persistentVolumeClaim"]["claimName"] for v in self.template["spec"].get("volumes", [])
                if "persistentVolumeClaim" in v]

    def local_dir(self, mount_path: str) -> Path:
        """The host directory behind one of the container's volume mounts."""
        for m in self.container.get("volumeMounts", []):
            if m["mountPath"] == mount_path:
                return self.mount_source(m)
        raise KeyError(mount_path)

    def tail(self, relative: str, lines: int = 40) -> str:
        try:
            text = (self.directory / relative).read_text(errors="replace")
        except OSError as exc:
            return f"({exc})"
        return "\n".join(text.splitlines()[-lines:])
