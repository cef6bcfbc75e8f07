"""The live dashboard's model (vitalstream.serving.livestate): alerts kept once per id and newest
first, each patient's last window and last hour, bounded payloads, and changes by sequence
number."""

from __future__ import annotations

import json
import threading

import pytest
from vitalstream.serving.livestate import (
    NO_POINT,
    SERIES_POINTS,
    SPARK_ALPHABET,
    LiveState,
    epoch_ms,
    spark_code,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000


def alert(i: int, minute: int, **extra: object) -> dict[str, object]:
    return {
        "alert_id": f"a{i}",
        "patient_id": f"P{i % 7:03d}",
        "kind": "reading",
        "rule": "critical_tachycardia",
        "severity": "high",
        "value": 150.0 + i,
        "time": f"2026-01-01T{minute // 60:02d}:{minute % 60:02d}:00.000Z",
        **extra,
    }


def window(patient: str, minute: int, news2: int = 3, hr: float = 90.0) -> dict[str, object]:
    return {
        "patient_id": patient,
        "window_start": T0 + minute * MIN,
        "window_end": T0 + (minute + 1) * MIN,
        "hr_mean": hr,
        "spo2_mean": 95.5,
        "sbp_mean": 118.0,
        "rr_mean": 18.0,
        "temp_mean": 37.2,
        "news2_total": news2,
        "run": "live",
        "indexed_at": "2026-01-01T00:00:01.123456789Z",
    }


def test_times_are_read_from_iso_text_milliseconds_and_nanosecond_stamps() -> None:
    assert epoch_ms("2026-01-01T00:00:00Z") == T0
    assert epoch_ms("2026-01-01T00:00:00.250+00:00") == T0 + 250
    assert epoch_ms("2026-01-01T00:00:00.123456789Z") == T0 + 123  # the ingest pipeline's
    assert epoch_ms(T0) == T0
    assert epoch_ms(None) is None


def test_a_replayed_batch_changes_nothing() -> None:
    state = LiveState()
    batch = [alert(i, i) for i in range(5)]
    assert state.add_alerts(batch) == 5
    seq = state.seq
    assert state.add_alerts(batch) == 0  # a micro-batch replayed after a restart
    assert state.seq == seq
    assert [a["alert_id"] for a in state.snapshot()["alerts"]] == ["a4", "a3", "a2", "a1", "a0"]


def test_alerts_are_newest_first_by_event_time_whatever_their_arrival() -> None:
    state = LiveState()
    state.add_alerts([alert(1, 10), alert(2, 30)])
    state.add_alerts([alert(3, 20), alert(4, 5, threshold=150.0, column="hr")])
    shown = state.snapshot()["alerts"]
    assert [a["alert_id"] for a in shown] == ["a2", "a3", "a1", "a4"]
    assert shown[-1]["threshold"] == 150.0 and shown[-1]["column"] == "hr"
    assert "threshold" not in shown[0]  # optional fields stay absent, not null


def test_only_the_newest_alerts_are_kept_and_an_older_replay_stays_out() -> None:
    state = LiveState(max_alerts=50)
    state.add_alerts([alert(i, i) for i in range(120)])
    kept = [a["alert_id"] for a in state.snapshot()["alerts"]]
    assert kept == [f"a{i}" for i in range(119, 69, -1)]
    seq = state.seq
    assert state.add_alerts([alert(3, 3)]) == 0  # trimmed before; replayed later
    assert state.add_alerts([alert(500, 1)]) == 0  # new, but older than all 50 kept
    assert state.seq == seq


def test_a_tile_shows_the_last_window_whatever_the_arrival_order() -> None:
    state = LiveState()
    state.add_windows([window("P1", 10, news2=5, hr=120.0), window("P1", 12, news2=2)])
    state.add_windows([window("P1", 11, news2=9)])  # late: part of the series, not the last
    (tile,) = state.snapshot()["tiles"]
    assert tile["p"] == "P1" and tile["news2"] == 2
    assert tile["end"] == T0 + 13 * MIN
    assert tile["v"] == {"hr": 90, "spo2": 95.5, "sbp": 118, "rr": 18, "temp": 37.2}
    news2 = tile["s"]["news2"]
    assert len(news2) == SERIES_POINTS
    assert news2[-3:] == "".join(spark_code(n, 0.0, 20.0) for n in (5, 9, 2))
    assert set(news2[:-3]) == {NO_POINT}


def test_series_keep_the_last_hour_of_event_time() -> None:
    state = LiveState()
    state.add_windows([window("P1", m) for m in range(0, 90)])
    (tile,) = state.snapshot()["tiles"]
    points = [c for c in tile["s"]["hr"] if c != NO_POINT]
    assert len(points) == SERIES_POINTS  # minutes 30..89, not 90
    # another patient's later windows move the event-time clock: P1's old points age out
    state.add_windows([window("P2", 160), window("P1", 100)])  # hour: 100..160
    tiles = {t["p"]: t for t in state.snapshot()["tiles"]}
    assert [c for c in tiles["P1"]["s"]["hr"] if c != NO_POINT] == [spark_code(90.0, 30, 220)]


def test_tiles_are_sorted_worst_news2_first() -> None:
    state = LiveState()
    state.add_windows([window(f"P{i}", 0, news2=n) for i, n in enumerate([3, 9, 0, 9, 5])])
    state.add_windows([{"patient_id": "P9", "window_start": T0, "hr_mean": 80.0}])  # no NEWS2
    order = [(t["p"], t["news2"]) for t in state.snapshot()["tiles"]]
    assert order == [("P1", 9), ("P3", 9), ("P4", 5), ("P0", 3), ("P2", 0), ("P9", None)]


def test_sparkline_codes_span_the_alphabet_and_clamp() -> None:
    assert spark_code(0.0, 0, 20) == SPARK_ALPHABET[0]
    assert spark_code(20.0, 0, 20) == SPARK_ALPHABET[-1]
    assert spark_code(99.0, 0, 20) == SPARK_ALPHABET[-1]
    assert spark_code(10.0, 0, 20) == SPARK_ALPHABET[32]
    assert spark_code(None, 0, 20) == NO_POINT


def test_a_thousand_patients_hour_is_a_bounded_snapshot() -> None:
    state = LiveState()
    for minute in range(90):
        state.add_windows([window(f"P{p:04d}", minute, p % 13, 60 + p % 90) for p in range(1000)])
    state.add_alerts([alert(i, i % 600) for i in range(2000)])
    state.set_health({"lag": 3, "batch_ms": 420.0, "webhook": {"delivered": 5, "p99_ms": 80.0}})
    snapshot = state.snapshot()
    size = len(json.dumps(snapshot, separators=(",", ":")))
    assert len(snapshot["tiles"]) == 1000 and len(snapshot["alerts"]) == 500
    assert size < 450_000, size  # about 200 bytes a tile: bounded by patients, not by run time


def test_changes_since_a_seq_carry_only_what_changed() -> None:
    state = LiveState()
    state.add_windows([window(f"P{p}", 0) for p in range(10)])
    state.add_alerts([alert(1, 1)])
    state.set_health({"lag": 1})
    seq = state.seq
    nothing = state.changes(seq)
    assert not nothing["reset"]
    assert (nothing["alerts"], nothing["tiles"], nothing["health"]) == ([], [], None)

    state.add_alerts([alert(2, 2), alert(1, 1)])
    state.add_windows([window("P3", 1, news2=8)])
    changed = state.changes(seq)
    assert [a["alert_id"] for a in changed["alerts"]] == ["a2"]
    assert [t["p"] for t in changed["tiles"]] == ["P3"]
    assert changed["health"] is None and changed["patients"] == 10
    assert changed["seq"] > seq

    state.set_health({"lag": 7})
    assert state.changes(changed["seq"])["health"] == {"lag": 7}


@pytest.mark.parametrize("since", [0, 10**6])
def test_a_page_from_before_a_restart_gets_everything(since: int) -> None:
    state = LiveState()
    state.add_alerts([alert(1, 1)])
    answer = state.changes(since)
    assert answer["reset"] and [a["alert_id"] for a in answer["alerts"]] == ["a1"]


def test_a_waiting_reader_wakes_on_a_change() -> None:
    state = LiveState()
    seq = state.seq
    woke: list[int] = []
    reader = threading.Thread(target=lambda: woke.append(state.wait_for_change(seq, 30.0)))
    reader.start()
    state.add_alerts([alert(1, 1)])
    reader.join(30.0)
    assert woke == [seq + 1]


def test_a_message_whose_time_does_not_parse_is_kept_or_skipped_not_a_crash() -> None:
    state = LiveState()
    assert state.add_alerts([alert(1, 1, time="not a time"), alert(2, 2)]) == 2
    assert [a["alert_id"] for a in state.snapshot()["alerts"]] == ["a2", "a1"]  # no time: last
    assert state.add_windows([dict(window("P1", 0), window_start="soon"), window("P2", 0)]) == 1
    assert [t["p"] for t in state.snapshot()["tiles"]] == ["P2"]
