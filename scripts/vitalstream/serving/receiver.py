"""The reference webhook receiver: what an alert's HTTP recipient sees, for demos and tests.

``python -m vitalstream receiver [--host 127.0.0.1] [--port 8099] [--log FILE]`` listens on
loopback, answers every alert POST with 200 and logs it: one JSON line per POST in ``--log``
(``arrival_wall_ns``, ``alert_id``, ``duplicate``, ``payload``) and one short line on stdout.
``GET /`` answers ``{"received", "unique", "duplicates", "ids"}`` so a script can ask what
arrived. Delivery is at least once (vitalstream.sinks.webhook), so the receiver does what a
real one must: it treats the ``Idempotency-Key`` header (else the body's ``alert_id``) as the
alert's identity and marks a repeat as a duplicate instead of counting a second alert.

:class:`Receiver` is the same server in-process, for tests and the live benchmark, with the
arrivals' wall-clock times.

Not for: sending alerts (vitalstream.sinks.webhook).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from vitalstream.core.cliargs import UsageError, tcp_port_or_any, writable_file

DEFAULT_PORT = 8099
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Arrival:
    """One POST as it arrived."""

    arrival_wall_ns: int
    alert_id: str | None
    duplicate: bool
    payload: Any

    def record(self) -> dict[str, Any]:
        return {
            "arrival_wall_ns": self.arrival_wall_ns,
            "alert_id": self.alert_id,
            "duplicate": self.duplicate,
            "payload": self.payload,
        }


class Receiver:
    """A loopback HTTP server that takes alert POSTs (module docstring).

    ``port=0`` picks a free port (``start`` returns the URL). ``log``: the JSON-lines file;
    ``echo``: where the short lines go (None: nowhere). ``delay_s``: each POST is answered
    that much later, to play a slow receiver.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        log: Path | None = None,
        *,
        echo: TextIO | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.host = host
        self.port = port
        self.log = log
        self.echo = echo
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self._arrivals: list[Arrival] = []
        self._seen: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log_file: TextIO | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Where it listens (or listened: a stopped receiver keeps its address)."""
        if self._url is None:
            raise RuntimeError("receiver not started")
        return self._url

    def start(self) -> str:
        """Listen (raises OSError when the address is taken) and serve in a thread."""
        server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        server.daemon_threads = True
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log.open("a", encoding="utf-8")
        self._server = server
        self.port = server.server_address[1]
        self._url = f"http://{self.host}:{self.port}/"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop listening (a later ``start`` on the same port plays a receiver coming back)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def take(self, payload: Any, key: str | None) -> Arrival:
        """Record one POST (thread-safe): its arrival time, its id, whether it is a repeat."""
        arrival_ns = time.time_ns()
        body_id = payload.get("alert_id") if isinstance(payload, dict) else None
        alert_id = key or (body_id if isinstance(body_id, str) else None)
        with self._lock:
            duplicate = alert_id is not None and alert_id in self._seen
            if alert_id is not None and not duplicate:
                self._seen[alert_id] = arrival_ns
            arrival = Arrival(arrival_ns, alert_id, duplicate, payload)
            self._arrivals.append(arrival)
            if self._log_file is not None:
                self._log_file.write(json.dumps(arrival.record()) + "\n")
                self._log_file.flush()
        if self.echo is not None:
            print(_short_line(arrival), file=self.echo, flush=True)
        return arrival

    def arrivals(self) -> list[Arrival]:
        """Every POST so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._arrivals)

    def first_arrival_ns(self) -> dict[str, int]:
        """Each alert id's first arrival (wall clock, ns)."""
        with self._lock:
            return dict(self._seen)

    def summary(self) -> dict[str, Any]:
        """What ``GET /`` answers: POSTs received, unique ids, duplicates, the ids in order."""
        with self._lock:
            received = len(self._arrivals)
            ids = list(self._seen)
        return {
            "received": received,
            "unique": len(ids),
            "duplicates": sum(a.duplicate for a in self.arrivals()),
            "ids": ids,
        }

    def wait_for(self, count: int, timeout_s: float) -> bool:
        """Wait until ``count`` distinct alert ids arrived; False if the time ran out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._seen) >= count:
                    return True
            time.sleep(0.02)
        with self._lock:
            return len(self._seen) >= count


def _short_line(arrival: Arrival) -> str:
    payload = arrival.payload if isinstance(arrival.payload, dict) else {}
    fields = [payload.get(k) for k in ("severity", "rule", "patient_id", "time")]
    text = " ".join(str(f) for f in fields if f is not None)
    return f"alert {arrival.alert_id} {text}" + (" (duplicate)" if arrival.duplicate else "")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to one receiver."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "vitalstream-receiver"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, {"error": "body too large"})
                return
            body = self.rfile.read(length)
            try:
                payload = json.loads(body)
            except ValueError:
                self._answer(400, {"error": "body is not JSON"})
                return
            arrival = receiver.take(payload, self.headers.get("Idempotency-Key"))
            if receiver.delay_s > 0:
                time.sleep(receiver.delay_s)
            self._answer(200, {"alert_id": arrival.alert_id, "duplicate": arrival.duplicate})

        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/":
                self._answer(404, {"error": "only / is here"})
                return
            self._answer(200, receiver.summary())

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: every POST already has its own line."""

    return Handler


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "receiver", help="a reference webhook receiver that logs the alerts it gets"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument(
        "--port", type=tcp_port_or_any, default=DEFAULT_PORT, help="port (0: any free one)"
    )
    parser.add_argument("--log", type=writable_file, help="JSON-lines file of every POST")
    parser.set_defaults(func=_cli_receiver)


def _cli_receiver(args: argparse.Namespace) -> int:
    receiver = Receiver(args.host, args.port, args.log, echo=sys.stdout)
    try:
        url = receiver.start()
    except OSError as err:
        raise UsageError(
            f"argument --port: cannot listen on {args.host}:{args.port}: {err}"
        ) from err
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"receiver: {url}", flush=True)
    while not stop.wait(0.5):
        pass
    receiver.stop()
    summary = receiver.summary()
    print(
        f"receiver: stopped after {summary['received']} POSTs, {summary['unique']} alerts",
        flush=True,
    )
    return 0
