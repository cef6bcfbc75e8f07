"""Unit tests of the synthetic cohort generator (small cohorts, each test well under 2 s)."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from vitalstream.core import cliargs, schema
from vitalstream.core.schema import EVENT_COLUMNS, EVENT_DTYPES, VITAL_NAMES
from vitalstream.data import cohort as cohort_mod
from vitalstream.data.cohort import Cohort, CohortParams, generate_cohort, write_cohort

NO_ARTEFACTS = {
    "missing_rate": 0.0,
    "motion_spike_rate": 0.0,
    "flatline_rate": 0.0,
    "impossible_rate": 0.0,
    "duplicate_rate": 0.0,
}
# Interquartile ranges of PhysioNet 2019 training set A (hourly rows).
SET_A_IQR = {
    "hr": (72, 95),
    "spo2": (96, 99),
    "sbp": (104, 135),
    "rr": (15, 21),
    "temp": (36.6, 37.5),
}


@pytest.fixture(scope="module")
def small() -> Cohort:
    return generate_cohort(CohortParams(patients=100, hours=0.5))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _true_ms(events: pd.DataFrame) -> np.ndarray:
    ms = events["event_time"].astype("int64").to_numpy()  # datetime64[ms] → epoch ms
    return ms - events["clock_skew_ms"].to_numpy()


# ------------------------------------------------------------------------------ parameters


def test_from_mapping_rejects_unknown_keys_by_name() -> None:
    with pytest.raises(ValueError, match="bogus_rate"):
        CohortParams.from_mapping({"patients": 5, "bogus_rate": 0.1})


def test_from_mapping_coerces_and_validates() -> None:
    p = CohortParams.from_mapping({"patients": "12", "hours": 2, "onset_window": [0.1, 0.3]})
    assert (p.patients, p.hours, p.onset_window) == (12, 2.0, (0.1, 0.3))
    for bad in ({"patients": "many"}, {"patients": 1.5}, {"network_delay": "gamma"}):
        with pytest.raises(ValueError):
            CohortParams.from_mapping(bad)
    with pytest.raises(ValueError, match="prevalence"):
        CohortParams(prevalence=1.5)
    with pytest.raises(ValueError, match="onset_window"):
        CohortParams(onset_window=(0.7, 0.2))


# ------------------------------------------------------------------------- shape and files


def test_columns_dtypes_and_order(small: Cohort) -> None:
    events, labels = small.events, small.labels
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert dict(events.dtypes.astype(str)) == EVENT_DTYPES
    assert list(labels.columns) == list(schema.LABEL_COLUMNS)
    assert dict(labels.dtypes.astype(str)) == schema.LABEL_DTYPES
    ordered = events.sort_values(["event_time", "patient_id"], kind="stable")
    assert (ordered.index == events.index).all()
    assert events["patient_id"].nunique() == 100 == len(labels)
    assert events.groupby("patient_id")["device_id"].nunique().eq(1).all()


def test_write_is_byte_deterministic_and_round_trips(small: Cohort, tmp_path: Path) -> None:
    first = write_cohort(small, tmp_path / "a")
    again = write_cohort(generate_cohort(small.params), tmp_path / "b")
    other = write_cohort(generate_cohort(CohortParams(patients=20, hours=0.1)), tmp_path / "c")
    other_seed = write_cohort(
        generate_cohort(CohortParams(patients=20, hours=0.1, seed=43)), tmp_path / "d"
    )
    for name in ("events", "labels"):
        assert _sha256(first[name]) == _sha256(again[name])
    for name in ("events", "labels"):
        assert _sha256(other[name]) != _sha256(other_seed[name])
    assert pq.read_schema(first["events"]).remove_metadata() == schema.event_arrow_schema()
    assert pq.read_schema(first["labels"]).remove_metadata() == schema.label_arrow_schema()
    meta = pq.ParquetFile(first["events"]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    pd.testing.assert_frame_equal(pd.read_parquet(first["events"]), small.events)
    pd.testing.assert_frame_equal(pd.read_parquet(first["labels"]), small.labels)


def test_same_params_same_frames_other_seed_differs(small: Cohort) -> None:
    again = generate_cohort(small.params)
    pd.testing.assert_frame_equal(again.events, small.events)
    pd.testing.assert_frame_equal(again.labels, small.labels)
    other = generate_cohort(CohortParams(patients=100, hours=0.5, seed=7))
    assert not other.events["hr"].equals(small.events["hr"])


def test_values_are_displayed_like_a_monitor(small: Cohort) -> None:
    clean = small.events[small.events["artefact"] == "none"]
    for name in ("hr", "spo2", "sbp", "dbp", "map", "rr"):
        assert (clean[name] == clean[name].round()).all(), name
    assert np.allclose(clean["temp"] * 10, (clean["temp"] * 10).round())
    expected_map = (clean["dbp"] + (clean["sbp"] - clean["dbp"]) / 3).round()
    assert (clean["map"] == expected_map).all()
    _, quarantined = schema.validate_events(clean)
    assert quarantined.empty  # clean readings are always within the valid ranges


# ---------------------------------------------------------------------------- physiology


def test_stable_patient_medians_inside_set_a_iqr(small: Cohort) -> None:
    stable_ids = small.labels.loc[~small.labels["deteriorates"], "patient_id"]
    stable = small.events[small.events["patient_id"].isin(stable_ids)]
    valid, _ = schema.validate_events(stable)
    for name, (lo, hi) in SET_A_IQR.items():
        assert lo <= valid[name].median() <= hi, name


def test_deterioration_moves_vitals_the_right_way() -> None:
    params = CohortParams(patients=40, hours=1.0, prevalence=0.5, seed=3, **NO_ARTEFACTS)
    c = generate_cohort(params)
    labels = c.labels.set_index("patient_id")
    assert labels["deteriorates"].sum() == 20
    ev = c.events.join(labels[["onset_time"]], on="patient_id")
    det = ev[ev["patient_id"].isin(labels.index[labels["deteriorates"]])]
    before = det[det["event_time"] < det["onset_time"]].groupby("patient_id")[list(VITAL_NAMES)]
    end = det["event_time"].max() - pd.Timedelta(minutes=5)
    late = det[det["event_time"] >= end].groupby("patient_id")[list(VITAL_NAMES)]
    change = late.mean() - before.mean()
    assert (change["hr"] > 15).all()
    assert (change["rr"] > 5).all()
    assert (change["sbp"] < -10).all()
    assert (change["spo2"] < -3).all()
    assert (change["temp"].abs() > 0.7).all()
    # clinical context only changes late in deterioration
    stable = ev[~ev["patient_id"].isin(labels.index[labels["deteriorates"]])]
    assert not stable["o2_supplemental"].any()
    assert (stable["consciousness"] == "A").all()
    o2_on = ev[ev["o2_supplemental"].fillna(False).astype(bool)]
    assert (o2_on["event_time"] > o2_on["onset_time"]).all()


def test_labels_are_consistent(small: Cohort) -> None:
    labels, p = small.labels, small.params
    det = labels["deteriorates"]
    assert det.sum() == round(p.prevalence * p.patients)
    start = pd.Timestamp(p.start)
    stay = pd.Timedelta(hours=p.hours)
    onset = labels.loc[det, "onset_time"]
    assert ((onset >= start + 0.2 * stay) & (onset <= start + 0.6 * stay)).all()
    assert labels.loc[~det, "onset_time"].isna().all()
    assert labels.loc[~det, "ramp_minutes"].isna().all()
    assert (labels.loc[det, "ramp_minutes"] == p.ramp_minutes).all()
    assert labels["age"].between(18, 90).all() and set(labels["sex"]) <= {"F", "M"}
    assert (labels["source"] == "synthetic").all()


def test_benign_desaturations_dip_but_rarely_cross_window_threshold() -> None:
    base = {"patients": 60, "hours": 1.0, "prevalence": 0.0, **NO_ARTEFACTS}
    calm = generate_cohort(CohortParams(benign_desaturations_per_hour=0.0, **base)).events
    dips = generate_cohort(CohortParams(benign_desaturations_per_hour=2.0, **base)).events
    others = [v for v in VITAL_NAMES if v != "spo2"]
    pd.testing.assert_frame_equal(calm[others], dips[others])  # only SpO2 is touched
    diff = dips["spo2"] - calm["spo2"]
    assert (diff <= 0).all() and 4 <= -diff.min() <= 11
    assert 0.005 < (diff < 0).mean() < 0.05  # 2 dips/h × 20–60 s ≈ 2.2 % of readings
    minute = dips["event_time"].dt.floor("1min")
    window_mean = dips.groupby([dips["patient_id"], minute])["spo2"].mean()
    assert (window_mean < 92).mean() < 0.02


# ------------------------------------------------------------------------ device effects


def test_artefact_rates_roughly_as_configured(small: Cohort) -> None:
    counts = small.events["artefact"].value_counts()
    readings = len(small.events) - counts.get("duplicate", 0)
    share = {k: counts.get(k, 0) / readings for k in schema.ARTEFACTS}
    assert 0.008 < share["missing"] < 0.012
    assert 0.0003 < share["impossible"] < 0.0008
    assert 0.0006 < share["duplicate"] < 0.0014
    assert 0.003 < share["motion_spike"] < 0.005  # 0.002 starts × 2 samples on average
    assert 0.009 < share["flatline"] < 0.02  # 0.0005 starts × ~29 frozen samples
    _, quarantined = schema.validate_events(small.events)
    reasons = quarantined["reason"]
    assert (reasons[quarantined["artefact"] == "impossible"].str.startswith("out_of_range")).all()
    assert set(quarantined["artefact"]) <= {"impossible", "missing"}
    assert (reasons[quarantined["artefact"] == "missing"] == "missing:all_vitals").all()


def test_artefact_values_match_their_labels(small: Cohort) -> None:
    ev = small.events
    missing = ev[ev["artefact"] == "missing"]
    assert missing[list(VITAL_NAMES)].isna().any(axis=1).all()
    all_missing = missing[list(VITAL_NAMES)].isna().all(axis=1)
    assert 0.35 < all_missing.mean() < 0.65
    assert missing.loc[all_missing, "o2_supplemental"].isna().all()
    # duplicates are exact copies of an original reading (except label and delay)
    key = ["patient_id", "event_time"]
    same = [c for c in EVENT_COLUMNS if c not in ("artefact", "network_delay_ms")]
    dups = ev[ev["artefact"] == "duplicate"]
    originals = ev[ev["artefact"] != "duplicate"].set_index(key)
    matched = originals.loc[pd.MultiIndex.from_frame(dups[key])]
    pd.testing.assert_frame_equal(
        matched.reset_index()[same], dups[same].reset_index(drop=True), check_dtype=True
    )
    assert (matched["artefact"] == "none").all()


def test_effects_use_independent_random_streams(small: Cohort) -> None:
    quiet = generate_cohort(CohortParams(patients=100, hours=0.5, **NO_ARTEFACTS)).events
    noisy = small.events[small.events["artefact"] != "duplicate"].reset_index(drop=True)
    clean = noisy["artefact"] == "none"
    pd.testing.assert_frame_equal(
        noisy.loc[clean, list(VITAL_NAMES)], quiet.loc[clean, list(VITAL_NAMES)]
    )
    delayed = generate_cohort(
        CohortParams(
            patients=100, hours=0.5, network_delay="exponential", network_delay_mean_ms=50.0
        )
    ).events
    pd.testing.assert_frame_equal(
        delayed.drop(columns="network_delay_ms"), small.events.drop(columns="network_delay_ms")
    )


def test_clock_skew_is_constant_per_device() -> None:
    c = generate_cohort(CohortParams(patients=30, hours=0.1, clock_skew_ms_sd=5000.0))
    ev = c.events
    skew = ev.groupby("device_id")["clock_skew_ms"]
    assert skew.nunique().eq(1).all()
    assert 1000 < skew.first().std() < 10000
    assert (_true_ms(ev) % 1000 == 0).all()  # true time is on the 1 s grid
    ordered = ev.sort_values(["event_time", "patient_id"], kind="stable")
    assert (ordered.index == ev.index).all()


@pytest.mark.parametrize(("model", "tolerance"), [("exponential", 0.03), ("pareto", 0.06)])
def test_network_delay_means(model: str, tolerance: float) -> None:
    params = CohortParams(
        patients=50, hours=0.5, network_delay=model, network_delay_mean_ms=200.0, **NO_ARTEFACTS
    )
    delay = generate_cohort(params).events["network_delay_ms"]
    assert delay.min() >= 0
    assert abs(delay.mean() / 200.0 - 1) < tolerance
    if model == "pareto":  # heavy tail: the 99.9th percentile is far beyond exponential's 6.9×
        assert delay.quantile(0.999) > 10 * 200.0


def test_no_delay_and_very_late_messages() -> None:
    base = {"patients": 50, "hours": 0.5, **NO_ARTEFACTS}
    assert (generate_cohort(CohortParams(**base)).events["network_delay_ms"] == 0).all()
    late = generate_cohort(
        CohortParams(very_late_fraction=0.05, very_late_ms=600000.0, **base)
    ).events["network_delay_ms"]
    assert set(late.unique()) == {0, 600000}
    assert 0.04 < (late == 600000).mean() < 0.06


# ------------------------------------------------------------------------------------- CLI


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    parser = argparse.ArgumentParser()
    cohort_mod.register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    return json.loads(capsys.readouterr().out.strip())


def test_cli_writes_files_and_prints_one_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cohort.yaml"
    config.write_text("prevalence: 0.5\nonset_window: [0.1, 0.2]\npatients: 3\n")
    argv = ["cohort", "--patients", "4", "--hours", "0.05", "--seed", "9", "--config", str(config)]
    argv += ["--param", "network_delay=exponential", "--param", "network_delay_mean_ms=100"]
    out = _run_cli([*argv, "--out", str(tmp_path / "out")], capsys)
    assert out["patients"] == 4  # explicit flags beat the config file
    assert out["deteriorating_patients"] == 2
    assert out["readings"] == len(pd.read_parquet(out["files"]["events"]["path"]))
    assert out["readings_per_s"] > 0
    for entry in out["files"].values():
        assert entry["sha256"] == _sha256(Path(entry["path"]))
    with pytest.raises(ValueError, match="nonsense"):
        _run_cli(["cohort", "--out", str(tmp_path / "x"), "--param", "nonsense=1"], capsys)


def _args(**given: object) -> argparse.Namespace:
    base = {"config": None, "param": None, "patients": None, "hours": None, "seed": None}
    return argparse.Namespace(**{**base, **given})


def test_a_cohort_larger_than_memory_is_refused_before_generation(monkeypatch) -> None:
    """patients × hours × readings/h × bytes/row against the memory, before any array."""
    monkeypatch.setattr(cliargs, "available_memory_bytes", lambda: 1 << 30)  # pretend 1 GiB
    calls = []
    monkeypatch.setattr(cohort_mod, "generate_cohort", lambda p: calls.append(p))
    # 100 patients x 1 h x 3600/h = 360,000 rows x 500 B = 180 MB: fits in 0.8 GiB.
    assert cohort_mod.params_from_args(_args(patients=100, hours=1.0)).patients == 100
    # 100 patients x 10 h = 3.6 M rows = 1.8 GB: refused, naming both arguments.
    with pytest.raises(cliargs.UsageError, match=r"^arguments --patients/--hours: .*3\.6e\+06"):
        cohort_mod.params_from_args(_args(patients=100, hours=10.0))
    with pytest.raises(cliargs.UsageError, match="more than the"):
        cohort_mod.run_cli(_args(hours=1e9, out=Path("unused")))
    assert calls == []  # nothing was generated


def test_bad_params_and_config_files_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(cliargs.UsageError, match=r"^arguments --param/--config: .*bogus"):
        cohort_mod.params_from_args(_args(param=["bogus=1"]))
    with pytest.raises(cliargs.UsageError, match=r"^argument --param: expects KEY=VALUE"):
        cohort_mod.params_from_args(_args(param=["hours"]))
    config = tmp_path / "c.yaml"
    config.write_text("- not\n- a mapping\n")
    with pytest.raises(cliargs.UsageError, match=r"^argument --config: .*expected a mapping"):
        cohort_mod.params_from_args(_args(config=config))
    config.write_text("hours: [unclosed\n")
    with pytest.raises(cliargs.UsageError, match=r"^argument --config: cannot read"):
        cohort_mod.params_from_args(_args(config=config))


def test_two_runs_of_the_cohort_command_give_identical_files(tmp_path: Path) -> None:
    """What the workflow's generate_cohort rule runs, twice: same seed → same sha256."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    digests = []
    for name in ("a", "b", "c"):
        seed = "3" if name != "c" else "4"
        out = tmp_path / name
        subprocess.run(
            [
                sys.executable,
                "-m",
                "vitalstream",
                "cohort",
                "--patients",
                "4",
                "--hours",
                "0.05",
                "--seed",
                seed,
                "--out",
                str(out),
            ],
            check=True,
            capture_output=True,
            env={"PYTHONPATH": str(repo / "scripts")},
        )
        digests.append(
            tuple(
                hashlib.sha256((out / f).read_bytes()).hexdigest()
                for f in ("events.parquet", "labels.parquet")
            )
        )
    assert digests[0] == digests[1]
    assert digests[0][0] != digests[2][0]
