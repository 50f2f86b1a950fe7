"""Prometheus' text format (0.0.4), and the HTTP server that serves it on /metrics (and
/healthz), for the programs of the pool's pods that export metrics: the exporter and the
autoscaler. Shipped in the ConfigMap beside the programs that import it."""

import http.server
import threading
from collections.abc import Callable
from dataclasses import dataclass

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metric:
    name: str  # as exposed: counters end in _total
    type: str  # gauge or counter
    help: str
    labels: tuple[str, ...] = ()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2 ** 53 else repr(value)


def render(metrics: tuple[Metric, ...], values: dict[str, dict[tuple, float]]) -> str:
    """Each metric's HELP and TYPE, then its samples: `values[name]` maps a tuple of label
    values, in the metric's label order, to the sample's value."""
    lines = []
    for metric in metrics:
        lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} {metric.type}"]
        for labels, value in sorted(values.get(metric.name, {}).items()):
            text = ",".join(f'{key}="{_escape(str(v))}"' for key, v in zip(metric.labels, labels))
            lines.append(f"{metric.name}{{{text}}} {_format(value)}" if text else f"{metric.name} {_format(value)}")
    return "\n".join(lines) + "\n"


class Server:
    """Serves `body()` on /metrics, "ok" on /healthz (the server answers: nothing about the
    pool), 404 elsewhere, from threads of its own. Port 0 picks a free one (tests)."""

    def __init__(self, port: int, body: Callable[[], str]):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] == "/metrics":
                    data, kind = body().encode(), CONTENT_TYPE
                elif self.path == "/healthz":
                    data, kind = b"ok\n", "text/plain"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # a scrape every few seconds is not news
                pass

        self.httpd = http.server.ThreadingHTTPServer(("", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
