"""The device simulator without Kafka: message shape, determinism, the real-time schedule, the
injected load, and alerts that a viewer of ``up --simulate 200`` sees within two minutes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from vitalstream.__main__ import main
from vitalstream.core.config import load_config
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.rules import ThresholdRule
from vitalstream.core.scores import score_frame, score_spec_from_config
from vitalstream.ingest.livecohort import (
    CriticalSchedule,
    InjectionValues,
    LiveCohort,
    SimulatorSpec,
    seam_weights,
)
from vitalstream.ingest.simulate import (
    ReadingStream,
    due_count,
    injection_from_config,
    total_messages,
)

START_MS = 1_796_000_000_000  # a whole minute: windows are aligned to the epoch's minutes
DEVICE_KEYS = {"patient_id", "ts", "hr", "spo2", "sbp", "rr", "temp"}


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def diagnostics(config):
    return DiagnosticsSpec.from_config(config["diagnostics"])


@pytest.fixture(scope="module")
def injection(config):
    return injection_from_config(config)


def messages(spec, injection, count, start_ms=START_MS, ts_of=None):
    """The first ``count`` messages, each stamped with its due time on a simulated clock."""
    stream = ReadingStream(spec, injection, start_ms)
    try:
        out, criticals = [], []
        total_rate = spec.patients * spec.rate_hz
        step = max(1, spec.patients // 4)  # batches that straddle patients and readings
        for lo in range(0, count, step):
            hi = min(count, lo + step)
            ts = start_ms + round(lo / total_rate * 1000) if ts_of is None else ts_of(lo)
            batch = stream.batch(lo, hi, ts)
            out.extend(zip(batch.keys, batch.values, strict=True))
            criticals.extend(batch.critical_indices)
        return out, criticals
    finally:
        stream.close()


def test_messages_are_the_blueprint_device_format_keyed_by_patient(injection):
    spec = SimulatorSpec(patients=7, seed=3)
    sent, _ = messages(spec, injection, 21, ts_of=lambda lo: 1234 + lo)
    for i, (key, value) in enumerate(sent):
        message = json.loads(value)
        assert set(message) == DEVICE_KEYS
        assert message["patient_id"] == f"P{i % 7 + 1:06d}" == key.decode()
        assert isinstance(message["ts"], int)
        assert all(isinstance(message[v], int) for v in ("hr", "spo2", "sbp", "rr"))
        assert 30 <= message["temp"] <= 43
        assert 0 < message["spo2"] <= 100


def test_same_seed_same_bytes_across_a_chunk_seam_other_seed_differs(injection):
    spec = SimulatorSpec(patients=3, seed=11)
    count = (spec.chunk_samples + 5) * spec.patients  # into the second chunk
    first, _ = messages(spec, injection, count)
    again, _ = messages(spec, injection, count)
    other, _ = messages(SimulatorSpec(patients=3, seed=12), injection, count)
    assert first == again
    assert [v for _, v in first] != [v for _, v in other]


def test_chunk_seams_do_not_jump(injection):
    # Each chunk's noise starts afresh; the seam carries the previous values over, so the step
    # across a seam is as large as any other step (without it, stress alone jumps ~6 bpm).
    cohort = LiveCohort(SimulatorSpec(patients=300, seed=5), injection, START_MS)
    first, second = cohort.next_chunk(), cohort.next_chunk()
    for name in ("hr", "sbp", "spo2"):
        within = np.abs(np.diff(first[name], axis=0)).mean()
        seam = np.abs(second[name][0] - first[name][-1]).mean()
        assert seam < 1.5 * within + 0.2, name


def test_seam_weights_start_near_one_and_decay_by_the_noise_time():
    w = seam_weights("hr", 600, 1.0)
    assert 0.9 < w[0] < 1.0
    assert np.all(np.diff(w) < 0)
    assert w[-1] < 0.2


def test_schedule_staggers_patients_evenly_in_real_time():
    patients, rate_hz = 50, 2.0
    total = patients * rate_hz
    # Message i is due at i / total seconds: one per patient per period, evenly spaced.
    assert due_count(0.0, total) == 1
    assert due_count(0.999 / rate_hz, total) == patients
    assert due_count(1.0 / rate_hz, total) == patients + 1
    assert due_count(10.0, total) == 1001
    assert due_count(-0.1, total) == 0
    gaps = np.diff([i / total for i in range(300)])
    assert np.allclose(gaps, 1 / total)


def test_a_timed_run_sends_what_is_due_before_its_end():
    assert total_messages(SimulatorSpec(patients=50, rate_hz=2.0, seconds=3.0)) == 300
    assert total_messages(SimulatorSpec(patients=1000, seconds=0.0015)) == 2
    assert total_messages(SimulatorSpec(patients=5)) is None


def test_exactly_per_mille_criticals_rotating_over_patients():
    patients, per_mille = 1000, 2
    schedule = CriticalSchedule(per_mille, patients)
    picked = []
    for lo in range(0, 2_000_000, 997):  # uneven batches, as the send loop makes them
        picked += schedule.criticals(lo, min(lo + 997, 2_000_000))
    assert len(picked) == 2_000_000 * per_mille // 1000
    assert picked == sorted(set(picked))
    by_patient = pd.Series(picked).groupby(np.array(picked) % patients)
    gaps = by_patient.diff().dropna()
    # Each patient's criticals are as far apart as the load allows (N · 1000 / K messages):
    # the live job suppresses repeats of a rule for one patient.
    assert gaps.min() >= 0.9 * patients * 1000 / per_mille


def test_avoided_patients_only_when_a_window_has_no_other():
    schedule = CriticalSchedule(100, 20, avoid=np.arange(0, 20, 2))  # windows of 10 messages
    picked = schedule.criticals(0, 1000)
    assert len(picked) == 100
    assert all(i % 2 == 1 for i in picked)
    assert CriticalSchedule(1000, 2, avoid=np.arange(2)).criticals(0, 4) == [0, 1, 2, 3]


def test_no_criticals_when_not_asked():
    assert CriticalSchedule(0, 10).criticals(0, 10_000) == []


def test_injected_criticals_and_tachycardic_patients_fire_their_rules(injection, diagnostics):
    spec = SimulatorSpec(patients=200, seed=9, critical_per_mille=5, tachycardic_per_mille=25)
    count = 200 * 120
    sent, criticals = messages(spec, injection, count)
    frame = pd.DataFrame([json.loads(v) for _, v in sent])
    assert len(criticals) == count * 5 // 1000
    critical_rule = next(r for r in diagnostics.reading_rules if r.column == "spo2")
    assert frame.loc[criticals, "spo2"].eq(injection.critical_spo2).all()
    assert critical_rule.holds(frame.loc[criticals, "spo2"]).all()

    cohort = LiveCohort(spec, injection, START_MS)
    # Not on deteriorating patients: their own critical readings would suppress the alert.
    assert not cohort.patients.deteriorates[np.array(criticals) % 200].any()
    tachycardic = [f"P{p + 1:06d}" for p in cohort.tachycardic]
    assert len(tachycardic) == 5  # 25 per 1,000 of 200
    rule = next(r for r in diagnostics.window_rules if r.name == "tachycardia")
    frame["window"] = frame.index // (200 * 60)  # every 60 readings of each patient
    means = frame[frame.patient_id.isin(tachycardic)].groupby(["patient_id", "window"]).hr.mean()
    assert rule.holds(means).all()


def test_injected_values_come_from_the_configured_thresholds():
    reading = [ThresholdRule("low_spo2", "spo2", "<", 80, "high")]
    window = [ThresholdRule("fast", "hr_mean", ">", 100, "high")]
    values = InjectionValues.from_rules(reading, window)
    assert values.critical_spo2 < 80
    assert values.tachycardia_threshold_bpm == 100
    with pytest.raises(ValueError, match="reading_rules"):
        InjectionValues.from_rules([], window)


def window_frame(sent, patients):
    """Per patient and 60-s event-time window (epoch-aligned, like the job's): the means."""
    frame = pd.DataFrame([json.loads(v) for _, v in sent])
    frame["window_end"] = (frame.ts // 60_000 + 1) * 60_000
    windows = frame.groupby(["patient_id", "window_end"], as_index=False).agg(
        hr_mean=("hr", "mean"),
        spo2_mean=("spo2", "mean"),
        sbp_mean=("sbp", "mean"),
        rr_mean=("rr", "mean"),
        temp_mean=("temp", "mean"),
    )
    # The device sends neither oxygen nor consciousness: scored as room air and alert.
    windows["o2_any"] = False
    windows["consciousness_worst"] = "A"
    return frame, windows


@pytest.mark.parametrize("seed", [20261207, 3, 7])
@pytest.mark.parametrize("offset_s", [0, 59])
def test_200_patients_alert_within_a_minute_and_windows_within_two(
    seed, offset_s, injection, diagnostics, config
):
    # `up --simulate 200`: the physiology alone (nothing injected) must show alerts early.
    spec = SimulatorSpec(patients=200, seed=seed)
    start_ms = START_MS + offset_s * 1000
    sent, _ = messages(spec, injection, 200 * 120, start_ms=start_ms)
    frame, windows = window_frame(sent, 200)

    first_minute = frame[frame.ts < start_ms + 60_000]
    reading_alerts = sum(
        int(r.holds(first_minute[r.column]).sum()) for r in diagnostics.reading_rules
    )
    assert reading_alerts >= 3

    closed = windows[windows.window_end <= start_ms + 120_000]
    scored = score_frame(closed, score_spec_from_config(config["diagnostics"]["scores"]))
    fired = {r.name: int(r.holds(scored[r.column]).sum()) for r in diagnostics.window_rules}
    assert fired["tachycardia"] >= 1
    assert fired["hypoxaemia"] >= 1
    assert fired["news2_medium"] >= 1


def test_stable_mode_has_no_natural_alerts(injection, diagnostics):
    spec = SimulatorSpec(patients=200, seed=3, natural_alerts=False)
    sent, _ = messages(spec, injection, 200 * 60)
    frame = pd.DataFrame([json.loads(v) for _, v in sent])
    for rule in diagnostics.reading_rules:
        assert not rule.holds(frame[rule.column]).any(), rule.name


def exit_status(argv):
    """The command's exit status, whether argparse exits or ``main`` returns."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "arguments",
    [
        ["--patients", "0"],
        ["--patients", "many"],
        ["--patients", "5", "--rate-hz", "0"],
        ["--patients", "5", "--seconds", "-1"],
        ["--patients", "5", "--critical-per-mille", "1001"],
        ["--patients", "5", "--tachycardic-per-mille", "-1"],
        ["--patients", "5", "--seed", "x"],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(arguments, capsys):
    status = exit_status(["simulate", "--bootstrap-servers", "127.0.0.1:9", *arguments])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("vitalstream simulate: error: argument --")


def test_a_bootstrap_without_port_is_refused(capsys):
    assert exit_status(["simulate", "--bootstrap-servers", "localhost", "--patients", "5"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err


def test_without_a_broker_and_without_a_running_up_it_says_how(tmp_path, capsys):
    argv = ["simulate", "--patients", "5", "--state-dir", str(tmp_path)]
    assert exit_status(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no `up` runs over" in err
