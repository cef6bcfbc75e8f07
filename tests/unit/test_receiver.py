"""``python -m vitalstream receiver`` as a user runs it: it prints its URL, logs each POST,
answers GET / with what it got, and stops cleanly on SIGTERM; a bad port is one line, exit 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")]))
    return env


def _post(url: str, alert_id: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": alert_id},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_the_receiver_command_logs_posts_answers_get_and_stops_on_sigterm(tmp_path: Path):
    log = tmp_path / "logs" / "received.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitalstream", "receiver", "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("receiver: http://127.0.0.1:") and first.endswith("/"), first
        url = first.removeprefix("receiver: ")
        alert = {"alert_id": "A1", "patient_id": "P7", "rule": "hypoxia", "severity": "high"}
        assert _post(url, "A1", alert) == {"alert_id": "A1", "duplicate": False}
        assert _post(url, "A1", alert) == {"alert_id": "A1", "duplicate": True}
        assert _post(url, "A2", {**alert, "alert_id": "A2"})["duplicate"] is False
        with urllib.request.urlopen(url, timeout=10) as response:
            summary = json.loads(response.read())
        assert summary == {"received": 3, "unique": 2, "duplicates": 1, "ids": ["A1", "A2"]}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert sum("A1" in line for line in lines) == 2 and "(duplicate)" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["alert_id"], r["duplicate"]) for r in records] == [
        ("A1", False),
        ("A1", True),
        ("A2", False),
    ]
    assert records[2]["payload"]["alert_id"] == "A2"
    assert records[0]["arrival_wall_ns"] <= records[1]["arrival_wall_ns"]


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_port_is_one_line_and_exit_2(port: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vitalstream", "receiver", "--port", port],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"vitalstream receiver: error: argument --port: must be a TCP port (0-65535), got {port}"
    ]


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "vitalstream", "receiver", "--port", str(port)],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("vitalstream receiver: error: argument --port: cannot listen on ")
