"""The live dashboard's web server: one page, its local assets and a JSON long-poll channel.

A :class:`LivePage` serves a :class:`~vitalstream.serving.livestate.LiveState` on a loopback
port. The page (``resources/live/``: ``index.html``, ``app.js``, ``app.css``; plain
JavaScript, no build step, nothing from the internet) reads

* ``/api/snapshot``: everything it shows (alerts newest first, tiles worst NEWS2 first,
  health) with the state's sequence number, and the channel's timing;
* ``/api/changes?since=SEQ``: what changed after ``SEQ``. When nothing has, the server holds the
  request until something does or ``poll_wait_s`` passes (a long poll), so an alert reaches
  the page as soon as the state has it, with no polling delay.

Why a long poll and not Server-Sent Events: headless Chromium's ``--virtual-time-budget`` (what
``--dump-dom`` and ``--screenshot`` need to let scripts run) pauses its virtual clock while a
network fetch is pending, and an EventSource's stream is a fetch that never ends, so the
budget never runs out and the dump waits forever. A long poll ends within ``poll_wait_s``; the
page then waits ``poll_gap_ms`` of (virtual) time before the next one, the budget runs out,
and the dump happens, after any change the server had in the meantime. A dump costs up to
(budget / gap) x wait of real time, so a headless capture opens the page with shorter ones,
``/?wait=1&gap=1000`` (the page passes ``wait`` on to ``/api/changes``; ``wait=0`` is plain
short polling). The same channel serves the live benchmark: :func:`watch_alerts` follows it
exactly as the page does.

Not for: the run dashboards written after a run (vitalstream.serving.dashboard), the state's
feeds (vitalstream.serving.livestate).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vitalstream.core.paths import resource
from vitalstream.serving.livestate import LiveState

ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
# How long the server holds a change request with nothing new: short enough that a proxy or a
# browser never times it out, long enough that an idle page costs a request per 15 s.
POLL_WAIT_S = 15.0
# How long the page waits between two change requests: bounds its request rate when the state
# changes all the time (a micro-batch a second) and lets a headless browser's virtual time run.
POLL_GAP_MS = 200


def asset(name: str) -> bytes:
    """A page asset shipped with the package (vitalstream/resources/live/)."""
    return resource(f"live/{name}").read_bytes()


class LivePage:
    """The dashboard's HTTP server over a state; ``start()`` returns its URL."""

    def __init__(
        self,
        state: LiveState,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        poll_wait_s: float = POLL_WAIT_S,
        poll_gap_ms: int = POLL_GAP_MS,
        title: str = "VitalStream live",
    ) -> None:
        self.state = state
        self.host = host
        self.port = port
        self.poll_wait_s = poll_wait_s
        self.poll_gap_ms = poll_gap_ms
        self.title = title
        self.served: Counter[str] = Counter()
        self.waiting = 0  # change requests held open right now
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the live page is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> str:
        """Bind (port 0: any free port) and serve from a daemon thread."""
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="live-page", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving; held change requests are released at once."""
        self._stopping.set()
        self.state.wake()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = None

    # ------------------------------------------------------------------ answers

    def snapshot(self) -> dict[str, Any]:
        answer = self.state.snapshot()
        answer["page"] = {
            "title": self.title,
            "poll_gap_ms": self.poll_gap_ms,
            "poll_wait_s": self.poll_wait_s,
        }
        return answer

    def changes(self, since: int, wait_s: float | None = None) -> dict[str, Any]:
        """The changes after ``since``, waiting up to ``poll_wait_s`` (or the asked ``wait_s``
        when shorter) when there are none."""
        hold_s = self.poll_wait_s if wait_s is None else max(0.0, min(wait_s, self.poll_wait_s))
        if hold_s > 0 and since == self.state.seq and not self._stopping.is_set():
            with self._lock:
                self.waiting += 1
            try:
                deadline = time.monotonic() + hold_s
                while not self._stopping.is_set() and self.state.seq == since:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.state.wait_for_change(since, min(left, 1.0))
            finally:
                with self._lock:
                    self.waiting -= 1
        return self.state.changes(since)


def _handler(page: LivePage) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            page.served[parts.path] += 1
            try:
                if parts.path in ASSETS:
                    name, kind = ASSETS[parts.path]
                    self._send(HTTPStatus.OK, asset(name), kind)
                elif parts.path == "/api/snapshot":
                    self._json(page.snapshot())
                elif parts.path == "/api/changes":
                    since, wait_s = _change_query(parts.query)
                    self._json(page.changes(since, wait_s))
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            except ValueError as err:
                self._send(HTTPStatus.BAD_REQUEST, f"{err}\n".encode(), "text/plain")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away while its request was held

        def _json(self, body: Any) -> None:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
            self._send(HTTPStatus.OK, data, "application/json")

        def _send(self, status: HTTPStatus, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a page polls all the time: no line per request

    return Handler


def _change_query(query: str) -> tuple[int, float | None]:
    """``since`` (a sequence number) and the optional ``wait`` (seconds) of a change request."""
    fields = parse_qs(query)
    since = fields.get("since", ["0"])[0]
    wait = fields.get("wait", [None])[0]
    try:
        return int(since), None if wait is None else float(wait)
    except ValueError as err:
        raise ValueError(
            f"since={since!r}, wait={wait!r}: expected a sequence number and seconds"
        ) from err


# ---------------------------------------------------------------------- clients


def fetch_json(url: str, timeout_s: float) -> dict[str, Any]:
    """One GET of a JSON answer."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.loads(resp.read())


def watch_alerts(
    url: str,
    on_alert: Callable[[str, int], None],
    stop_event: threading.Event,
    *,
    include_existing: bool = False,
    retry_s: float = 0.5,
) -> int:
    """Follow the page's own channel and call ``on_alert(alert_id, arrival_wall_ns)`` once per
    alert id, when the answer carrying it arrives: the moment the page would draw it.

    Starts from the snapshot (its alerts reported only with ``include_existing``), then long
    polls ``/api/changes`` as the page does, until ``stop_event`` is set; a server that is
    away for a while is retried. Returns how many alerts it reported."""
    base = url.rstrip("/")
    seen: set[str] = set()
    seq = 0
    reported = 0
    first = True
    wait_s = POLL_WAIT_S
    while not stop_event.is_set():
        try:
            if first:
                answer = fetch_json(f"{base}/api/snapshot", 30.0)
                wait_s = float(answer.get("page", {}).get("poll_wait_s", POLL_WAIT_S))
            else:
                answer = fetch_json(f"{base}/api/changes?since={seq}", wait_s + 30.0)
        except (urllib.error.URLError, OSError, ValueError):
            stop_event.wait(retry_s)
            continue
        arrival_ns = time.time_ns()
        seq = int(answer["seq"])
        for alert in answer.get("alerts", []):
            alert_id = str(alert["alert_id"])
            if alert_id in seen:
                continue
            seen.add(alert_id)
            if first and not include_existing:
                continue
            on_alert(alert_id, arrival_ns)
            reported += 1
        first = False
    return reported
