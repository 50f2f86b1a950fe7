"""The process that holds an emulated cluster for the CLI between commands.

`up` starts it in a session of its own; it renders the stack, applies it, then answers
requests (one JSON object per connection, one JSON reply) on a Unix socket in the state
directory until `down`, SIGTERM or SIGINT, and always tears the cluster down on the way out.
"""

import asyncio
import json
import os
import pickle
import signal
import socketserver
import sys
import threading
import traceback
from pathlib import Path

from pool.errors import PoolConfigError
from tests.render import render


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class Daemon:
    def __init__(self, cluster, config: dict, stack: str, password: str):
        self.cluster = cluster
        self.config = config
        self.stack = stack
        self.password = password
        self.stopping = threading.Event()
        self.render_lock = threading.Lock()

    # ---- requests -------------------------------------------------------------------
    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "pods":
            return {"pods": self.pods()}
        if op == "exec":
            pod = self._pod(request["pod"])
            result = pod.exec(request["command"], user=request.get("user"),
                              timeout=request.get("timeout", 600))
            return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}
        if op == "kill":
            pod = self._pod(request["pod"])
            before = {p.name for p in self.cluster.pods_of(pod.deployment)}
            self.cluster.delete_pod(pod.name)
            replacements = [p for p in self.cluster.pods_of(pod.deployment) if p.name not in before]
            return {"deleted": pod.name, "replacements": [self._describe(p) for p in replacements]}
        if op == "scale":
            return self.scale(request["workers"])
        if op == "down":
            self.stopping.set()
            return {"stopping": True}
        return {"error": f"unknown request {op!r}"}

    def scale(self, workers: str) -> dict:
        # As `pulumi config set workers N && pulumi up`: the program validates the value and
        # renders the worker Deployment, whose replica count the cluster then runs.
        with self.render_lock:
            # Pulumi's runtime wants an event loop of its own in this request's thread.
            asyncio.set_event_loop(asyncio.new_event_loop())
            rendered = render({**self.config, "workers": workers}, stack=self.stack,
                              password=self.password)
        name = rendered.outputs["worker_deployment_name"]
        (worker,) = [r.inputs for r in rendered.resources if r.inputs.get("kind") == "Deployment"
                     and r.inputs["metadata"]["name"] == name]
        replicas = worker["spec"]["replicas"]
        self.cluster.scale(name, replicas)
        self.cluster.wait_available(name, timeout=180)
        self.config["workers"] = workers
        return {"deployment": name, "replicas": replicas, "pods": self.pods()}

    def _pod(self, name: str):
        try:
            return self.cluster.pod(name)
        except KeyError:
            raise LookupError(f"no pod {name!r}; `pods` lists them") from None

    @staticmethod
    def _describe(pod) -> dict:
        return {"name": pod.name, "role": pod.role, "ip": pod.ip, "ready": pod.ready}

    def pods(self) -> list[dict]:
        with self.cluster.lock:
            pods = [p for p in self.cluster.pods.values() if not p.deleting]
        return [self._describe(p) for p in sorted(pods, key=lambda p: (p.role, p.created))]


def serve(state_dir: Path, name: str) -> int:
    """Run the stack `up` rendered (state_dir/rendered.pickle) until told to stop; writes
    `ready`, or `failed` and why, to state_dir/status."""
    from tests.podsim.cluster import Cluster
    from tests.podsim.node import Node
    from tests.podsim.rootfs import ensure_rootfs

    status = state_dir / "status"
    socket_path = state_dir / "control.sock"
    cluster = None
    server = None

    def stop(*_):
        if server is None:  # still coming up: abandon that, the teardown below follows
            raise KeyboardInterrupt
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        spec = pickle.loads((state_dir / "rendered.pickle").read_bytes())
        rendered, config, stack = spec["rendered"], spec["config"], spec["stack"]
        rootfs = ensure_rootfs()
        node = Node(name, **spec.get("node", {}))
        cluster = Cluster(rootfs, Path(f"/run/podsim/{name}"), name=name, node=node).start()
        cluster.apply_rendered(rendered)
        daemon = Daemon(cluster, dict(config), stack, rendered.password)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                try:
                    reply = daemon.handle(json.loads(self.rfile.readline()))
                except (PoolConfigError, LookupError) as exc:  # the caller's mistake
                    reply = {"error": str(exc)}
                except Exception as exc:  # reported to the caller; the daemon carries on
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                if daemon.stopping.is_set():
                    stop()

        socket_path.unlink(missing_ok=True)
        server = ControlServer(str(socket_path), Handler)
        os.chmod(socket_path, 0o600)
        status.write_text("ready\n")
        server.serve_forever(poll_interval=0.2)
        return 0
    except BaseException:
        status.write_text("failed\n" + traceback.format_exc())
        return 1
    finally:
        if server is not None:
            server.server_close()
        socket_path.unlink(missing_ok=True)
        if cluster is not None:
            cluster.teardown()
        sys.stdout.flush()
