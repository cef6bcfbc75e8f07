"""The live dashboard in headless Chromium: a real LivePage over a state of 1,000 patients renders
its alert list, tiles and health, and shows an alert that arrives after it loaded without a
reload; watch_alerts (the live benchmark's client) follows the same channel.

How a live change is caught in a DOM dump: ``--virtual-time-budget`` pauses the page's virtual
clock while a fetch is pending, so the dump waits for the page's long poll. The test starts
Chromium, waits until the server holds the page's change request (the page has drawn the
snapshot and is listening), changes the state, and reads the dump Chromium writes when its
budget runs out. `make browser` installs Chromium; without it these tests skip."""

from __future__ import annotations

import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from headless import browser
from vitalstream.serving.livepage import ASSETS, LivePage, asset, watch_alerts
from vitalstream.serving.livestate import LiveState

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000
PATIENTS = 1000
ALERTS = 300


def _windows(minute: int) -> list[dict[str, object]]:
    return [
        {
            "patient_id": f"P{p:04d}",
            "window_start": T0 + minute * MIN,
            "window_end": T0 + (minute + 1) * MIN,
            "hr_mean": 70.0 + p % 60 + minute % 5,
            "spo2_mean": 96.0,
            "sbp_mean": 121.0,
            "rr_mean": 17.0,
            "temp_mean": 37.0,
            "news2_total": (p * 7 + minute) % 12,
        }
        for p in range(PATIENTS)
    ]


def _alert(alert_id: str, second: int, patient: str = "P0007") -> dict[str, object]:
    hour, rest = divmod(second, 3600)
    minute, sec = divmod(rest, 60)
    return {
        "alert_id": alert_id,
        "patient_id": patient,
        "kind": "window",
        "rule": "tachycardia",
        "severity": "medium",
        "value": 131.5,
        "column": "hr_mean",
        "threshold": 120.0,
        "time": f"2026-01-01T{hour:02d}:{minute:02d}:{sec:02d}Z",
    }


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[LiveState, LivePage, str]]:
    state = LiveState()
    for minute in range(60):
        state.add_windows(_windows(minute))
    state.add_alerts([_alert(f"a{i:03d}", i * 10, f"P{i:04d}") for i in range(ALERTS)])
    state.set_health(
        {
            "readings_per_s": 998.4,
            "lag": 17,
            "batch_ms": 412,
            "deadletter_per_s": 0.2,
            "webhook": {"delivered": 290, "pending": 3, "failed_attempts": 4, "p99_ms": 61.0},
        }
    )
    page = LivePage(state)  # as `up` serves it
    url = page.start()
    try:
        yield state, page, url
    finally:
        page.stop()


def _chromium(profile: Path, url: str, budget_ms: int) -> subprocess.Popen[str]:
    """Chromium dumping the page opened with a 1 s hold and a 1 s gap between change requests:
    a dump then takes about budget / 1000 real seconds (the page's defaults would hold each
    of many requests 15 s)."""
    base, _, fragment = url.partition("#")
    url = f"{base}?wait=1&gap=1000" + (f"#{fragment}" if fragment else "")
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
    command += ["--dump-dom", url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _dump(profile: Path, url: str, budget_ms: int = 3000) -> str:
    proc = _chromium(profile, url, budget_ms)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    return out


def _body(html: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", html)
    assert tag is not None, html[:2000]
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', tag.group(1)))


def _alert_ids(html: str) -> list[str]:
    return re.findall(r'<tr[^>]*data-alert-id="([^"]+)"', html)


def test_the_page_shows_alerts_tiles_and_health(live, tmp_path):
    state, _, url = live
    html = _dump(tmp_path / "profile", url)
    body = _body(html)
    assert body["rendered"] == "true" and "error" not in body
    assert body["alerts"] == str(ALERTS) and body["patients"] == str(PATIENTS)
    assert int(body["tiles"]) == 120  # one page of tiles of the 1,000

    assert _alert_ids(html)[:3] == ["a299", "a298", "a297"]  # newest first
    assert "hr_mean 131.5 (threshold 120) · window" in html  # the values that fired it

    tiles = re.findall(r'class="tile[^"]*" data-patient="(P\d+)" data-news2="(\d+)"', html)
    worst = max(t["news2"] for t in state.snapshot()["tiles"])
    assert len(tiles) == 120 and int(tiles[0][1]) == worst
    assert [int(n) for _, n in tiles] == sorted((int(n) for _, n in tiles), reverse=True)
    points = [int(n) for n in re.findall(r'<svg[^>]*data-points="(\d+)"', html)]
    assert len(points) == 120 and min(points) == 60  # an hour of 1-minute windows each

    health = dict(re.findall(r'<div data-key="([\w.]+)"><dt>[^<]*</dt><dd>([^<]*)</dd>', html))
    assert health["lag"] == "17" and health["batch_ms"] == "412"
    assert health["deadletter_per_s"] == "0.20" and health["webhook.p99_ms"] == "61"


def test_the_filter_in_the_address_selects_tiles(live, tmp_path):
    state, _, url = live
    html = _dump(tmp_path / "profile", url + "#filter=news2%3E%3D11")
    expected = sum(t["news2"] >= 11 for t in state.snapshot()["tiles"])
    assert 0 < expected < PATIENTS
    assert _body(html)["matching"] == str(expected)
    assert set(re.findall(r'data-news2="(\d+)"', html)) == {"11"}


def test_an_alert_after_the_page_loaded_appears_without_a_reload(live, tmp_path):
    state, page, url = live
    snapshots = page.served["/api/snapshot"]
    proc = _chromium(tmp_path / "profile", url, budget_ms=4000)
    try:
        _wait_for(lambda: page.waiting > 0 or proc.poll() is not None, 60.0)
        assert page.waiting > 0, "the page never held a change request"
        state.add_alerts([_alert("late-alert", 3599, "P0999")])
        state.add_windows([dict(_windows(59)[0], patient_id="P1000", news2_total=19)])
        html, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    body = _body(html)
    assert _alert_ids(html)[0] == "late-alert"
    assert body["alerts"] == str(ALERTS + 1) and body["patients"] == str(PATIENTS + 1)
    assert int(body["updates"]) >= 2  # the snapshot and at least one change
    assert re.search(r'class="tile[^"]*" data-patient="P1000" data-news2="19"', html)
    assert page.served["/api/snapshot"] == snapshots + 1  # one load, no reload


def test_watch_alerts_reports_each_new_alert_once_as_the_page_gets_it(live):
    state, page, url = live
    got: list[tuple[str, int]] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_alerts, args=(url, lambda a, ns: got.append((a, ns)), stop)
    )
    watcher.start()
    try:
        _wait_for(lambda: page.waiting > 0)  # it has the snapshot and listens
        before_ns = time.time_ns()
        state.add_alerts([_alert("watched", 3600)])
        _wait_for(lambda: len(got) == 1)
        state.add_alerts([_alert("watched", 3600), _alert("watched-2", 3601)])  # a repeat, a new
        _wait_for(lambda: len(got) == 2)
    finally:
        stop.set()
        state.add_alerts([_alert("wake-up", 3602)])  # ends the held request at once
        watcher.join(30)
    assert [a for a, _ in got][:2] == ["watched", "watched-2"]  # none of the 300 before it
    assert got[0][1] >= before_ns


def _wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_assets_load_nothing_from_elsewhere():
    for name, _ in ASSETS.values():
        text = asset(name).decode()
        external = re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", text)
        assert external in ([], ["http://www.w3.org"]), (name, external)


def test_a_bad_change_request_is_a_clear_400(live):
    _, _, url = live
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url + "api/changes?since=abc", timeout=10)
    assert caught.value.code == 400
    assert "since='abc'" in caught.value.read().decode()
