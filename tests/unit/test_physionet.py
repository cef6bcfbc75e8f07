"""PhysioNet sources → canonical schema, on the small real subset in data/fixtures/physionet.

Fast by design (the whole file reads ~300 small files a few times); the full set-A mirror is
checked by tests/integration/test_physionet_full.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vitalstream import __main__ as cli
from vitalstream.core import schema
from vitalstream.core.config import load_config
from vitalstream.core.settings import SettingsError
from vitalstream.data import physionet as ph
from vitalstream.data import readers
from vitalstream.data.download import DownloadSettings, read_settings_file

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "data" / "fixtures" / "physionet"
PSV_DIR = FIXTURE / ph.MIRROR_SUBPATHS["sepsis2019"]
MIMIC_DIR = FIXTURE / ph.MIRROR_SUBPATHS["mimic2_numerics"]
BIDMC_DIR = FIXTURE / ph.MIRROR_SUBPATHS["bidmc"]
START = pd.Timestamp("2026-01-01T00:00:00Z")
ROW_HEADER = "|".join(ph.PSV_COLUMNS)


@pytest.fixture(scope="module")
def sepsis() -> ph.SourceData:
    return ph.read_sepsis2019(PSV_DIR)


@pytest.fixture(scope="module")
def mimic() -> ph.SourceData:
    return ph.read_mimic2_numerics(MIMIC_DIR)


@pytest.fixture(scope="module")
def bidmc() -> ph.SourceData:
    return ph.read_bidmc(BIDMC_DIR)


def _psv(rows: list[dict[str, object]]) -> str:
    """A PSV file: every column NaN except the ones given per row."""
    lines = [ROW_HEADER]
    for row in rows:
        lines.append("|".join(str(row.get(c, "NaN")) for c in ph.PSV_COLUMNS))
    return "\n".join(lines) + "\n"


def _accounted_for(data: ph.SourceData) -> None:
    """Every row read is valid or quarantined with a reason, and the summary says so."""
    s = data.summary
    assert s["valid_rows"] == len(data.events)
    assert s["quarantined_rows"] == len(data.quarantined)
    assert s["valid_rows"] + s["quarantined_rows"] == s["rows"]
    assert sum(s["quarantine_reasons"].values()) == s["quarantined_rows"]
    assert data.quarantined["reason"].notna().all()
    assert (data.quarantined["reason"].str.len() > 0).all()
    assert list(data.events.columns) == list(schema.EVENT_COLUMNS)
    assert data.events.dtypes.astype(str).to_dict() == schema.EVENT_DTYPES
    assert list(data.labels.columns) == list(schema.LABEL_COLUMNS)
    assert data.labels.dtypes.astype(str).to_dict() == schema.LABEL_DTYPES


# --------------------------------------------------------------------------------------------
# sepsis2019
# --------------------------------------------------------------------------------------------


def test_sepsis_fixture_counts_and_columns(sepsis):
    files = sorted(PSV_DIR.glob("*.psv"))
    lines = sum(len(f.read_text().splitlines()) - 1 for f in files)
    s = sepsis.summary
    assert (s["patients"], s["rows"], s["septic_patients"]) == (285, lines, 63)
    assert len(sepsis.labels) == 285 and sepsis.labels["patient_id"].is_unique
    assert list(sepsis.hourly.columns) == ["patient_id", *ph.PSV_COLUMNS]
    assert len(sepsis.hourly) == lines
    assert sepsis.labels["patient_id"].iloc[0] == "p000001"
    assert set(sepsis.events["device_id"]) == {"physionet2019"}
    assert set(sepsis.events["artefact"]) == {"none"}
    assert sepsis.events["consciousness"].isna().all()
    assert (sepsis.events["clock_skew_ms"] == 0).all()
    assert (sepsis.events["network_delay_ms"] == 0).all()
    _accounted_for(sepsis)


def test_sepsis_hours_without_vitals_are_quarantined_and_counted(sepsis):
    hourly = sepsis.hourly
    no_vital = hourly[list(ph.PSV_TO_VITAL)].isna().all(axis=1).sum()
    assert no_vital > 0  # labs-only hours are real and frequent
    assert sepsis.summary["quarantine_reasons"]["missing:all_vitals"] == no_vital


def test_onset_is_first_label_hour_plus_six(sepsis):
    # Hand-checked in p000009.psv: the first row with SepsisLabel = 1 is row 249 (ICULOS 249),
    # so t_sepsis = ICULOS 255 = start + 10 days 15 h.
    label = sepsis.labels.set_index("patient_id").loc["p000009"]
    assert label["deteriorates"]
    assert label["onset_time"] == pd.Timestamp("2026-01-11T15:00:00Z")
    assert label["onset_time"] == START + pd.Timedelta(hours=249 + 6)
    assert np.isnan(label["ramp_minutes"]) and label["source"] == "physionet2019"
    hours = sepsis.hourly[sepsis.hourly["patient_id"] == "p000009"]
    assert hours.loc[hours["SepsisLabel"] == 1, "ICULOS"].min() == 249
    calm = sepsis.labels.set_index("patient_id").loc["p000001"]
    assert not calm["deteriorates"] and pd.isna(calm["onset_time"])


def test_event_time_is_start_plus_iculos_hours(sepsis):
    both = pd.concat([sepsis.events, sepsis.quarantined])
    first = both[both["patient_id"] == "p000001"]["event_time"].sort_values()
    assert first.iloc[0] == START + pd.Timedelta(hours=1)
    assert (first.diff().dropna() == pd.Timedelta(hours=1)).all()


def test_fio2_gives_supplemental_oxygen_and_gender_gives_sex(tmp_path):
    fio2 = [0.21, 0.5, "NaN", 0.04, 1]
    rows = [
        {"HR": 80, "Age": 70.5, "Gender": 1, "ICULOS": i + 1, "SepsisLabel": 0, "FiO2": f}
        for i, f in enumerate(fio2)
    ]
    (tmp_path / "p000001.psv").write_text(_psv(rows))
    rows = [{"HR": 90, "Age": 40, "Gender": 0, "ICULOS": 3, "SepsisLabel": 1, "FiO2": 0.3}]
    (tmp_path / "p000002.psv").write_text(_psv(rows))
    data = ph.read_sepsis2019(tmp_path, start="2030-01-01T00:00:00Z")
    o2 = data.events.loc[data.events["patient_id"] == "p000001", "o2_supplemental"]
    assert o2.tolist() == [False, True, pd.NA, False, True]
    labels = data.labels.set_index("patient_id")
    assert labels["sex"].tolist() == ["M", "F"]  # challenge: Female (0) or Male (1)
    assert labels["age"].tolist() == [70.5, 40.0]
    assert labels.loc["p000002", "onset_time"] == pd.Timestamp("2030-01-01T09:00:00Z")
    assert data.summary["septic_patients"] == 1


def _hours(first: int, n: int, **cells: object) -> list[dict[str, object]]:
    """``n`` plausible ICU hours from ICULOS ``first`` on (HR 80, Gender 0, SepsisLabel 0)."""
    base = {"HR": 80, "Age": 60, "Gender": 0, "SepsisLabel": 0, **cells}
    return [{**base, "ICULOS": first + i} for i in range(n)]


def _quarantined_at(data: ph.SourceData, reason: str) -> list[tuple[str, int]]:
    """(file, line) of every quarantined row with ``reason``, sorted."""
    rows = data.quarantined[data.quarantined["reason"] == reason]
    return sorted(zip(rows["file"], rows["line"].astype(int), strict=True))


def _one_bad_file(tmp_path: Path, bad_text: str) -> ph.SourceData:
    """p000001 (3 good hours), the bad p000002 given as text, p000003 (2 good hours)."""
    (tmp_path / "p000001.psv").write_text(_psv(_hours(1, 3)))
    (tmp_path / "p000002.psv").write_text(bad_text)
    (tmp_path / "p000003.psv").write_text(_psv(_hours(5, 2)))
    data = ph.read_sepsis2019(tmp_path)
    _accounted_for(data)
    assert (data.hourly["patient_id"] == "p000001").sum() == 3  # the other files go on
    assert (data.hourly["patient_id"] == "p000003").sum() == 2
    assert data.hourly["ICULOS"].dtype == "int64"
    return data


def test_truncated_row_is_quarantined_naming_file_and_line_and_the_rest_goes_on(tmp_path):
    good = _psv(_hours(1, 3)).splitlines()
    truncated = "|".join(good[2].split("|")[:20])  # line 3 cut after 20 of 41 fields
    data = _one_bad_file(tmp_path, "\n".join([good[0], good[1], truncated, good[3]]) + "\n")
    assert _quarantined_at(data, "malformed:fields") == [("p000002.psv", 3)]
    assert data.summary["quarantine_reasons"]["malformed:fields"] == 1
    assert data.hourly.loc[data.hourly["patient_id"] == "p000002", "ICULOS"].tolist() == [1, 3]
    assert data.summary["bad_lines"] == ["p000002.psv:3: malformed:fields (20 of 41 fields)"]


def test_non_numeric_cell_is_quarantined_naming_file_line_and_column(tmp_path):
    rows = _hours(1, 4)
    rows[3]["HR"] = "abc"  # line 5
    data = _one_bad_file(tmp_path, _psv(rows))
    assert _quarantined_at(data, "bad_type:HR") == [("p000002.psv", 5)]
    assert data.summary["quarantine_reasons"]["bad_type:HR"] == 1
    assert "p000002.psv:5: bad_type:HR (not a number: 'abc')" in data.summary["bad_lines"]
    assert (data.hourly["patient_id"] == "p000002").sum() == 3


def test_duplicate_icu_hour_keeps_the_first_and_quarantines_the_repeat(tmp_path):
    rows = [*_hours(1, 3), *_hours(2, 1, HR=95)]  # ICULOS 1, 2, 3, 2 again on line 5
    data = _one_bad_file(tmp_path, _psv(rows))
    assert _quarantined_at(data, "duplicate:ICULOS") == [("p000002.psv", 5)]
    assert data.summary["quarantine_reasons"]["duplicate:ICULOS"] == 1
    kept = data.hourly[data.hourly["patient_id"] == "p000002"]
    assert kept["ICULOS"].tolist() == [1, 2, 3] and kept["HR"].tolist() == [80, 80, 80]
    repeat = data.quarantined[data.quarantined["reason"] == "duplicate:ICULOS"].iloc[0]
    assert repeat["event_time"] == START + pd.Timedelta(hours=2) and repeat["hr"] == 95


@pytest.mark.parametrize(
    ("iculos", "reason"),
    [
        ("1e12", "out_of_range:ICULOS"),  # would overflow the event time
        ("-3", "out_of_range:ICULOS"),
        (str(ph.MAX_ICULOS_H + 1), "out_of_range:ICULOS"),  # a stay longer than a year
        ("2.5", "not_integral:ICULOS"),
        ("NaN", "missing:ICULOS"),
    ],
)
def test_impossible_iculos_is_quarantined(tmp_path, iculos, reason):
    rows = _hours(1, 3)
    rows[1]["ICULOS"] = iculos  # line 3
    data = _one_bad_file(tmp_path, _psv(rows))
    assert _quarantined_at(data, reason) == [("p000002.psv", 3)]
    assert data.summary["quarantine_reasons"][reason] == 1
    row = data.quarantined[data.quarantined["reason"] == reason].iloc[0]
    assert pd.isna(row["event_time"]) and row["patient_id"] == "p000002"


def test_gender_and_label_must_be_zero_or_one(tmp_path):
    rows = _hours(1, 3)
    rows[0]["Gender"] = 2
    rows[2]["SepsisLabel"] = "NaN"
    data = _one_bad_file(tmp_path, _psv(rows))
    assert _quarantined_at(data, "bad_value:Gender") == [("p000002.psv", 2)]
    assert _quarantined_at(data, "missing:SepsisLabel") == [("p000002.psv", 4)]


def test_unexpected_header_quarantines_that_file_and_names_it(tmp_path):
    data = _one_bad_file(tmp_path, "HR|O2Sat\n80|97\n\n81|96\n")
    assert _quarantined_at(data, "malformed:header") == [("p000002.psv", 2), ("p000002.psv", 4)]
    assert data.summary["patients"] == 3
    assert "p000002" not in set(data.hourly["patient_id"])


def test_a_folder_of_only_bad_files_is_all_quarantined_not_an_error(tmp_path):
    (tmp_path / "p000001.psv").write_text("HR|O2Sat\n80|97\n")
    data = ph.read_sepsis2019(tmp_path)
    _accounted_for(data)
    assert data.summary["quarantine_reasons"] == {"malformed:header": 1}
    assert len(data.hourly) == 0 and data.summary["patients"] == 1


def test_several_bad_files_and_blank_lines_each_count_once(tmp_path):
    """Bisection finds every broken file among many good ones; blank lines are not rows."""
    for k in range(1, 21):
        (tmp_path / f"p{k:06d}.psv").write_text(_psv(_hours(1, 2)))
    bad_cell = _hours(1, 2)
    bad_cell[1]["Resp"] = "12,5"
    (tmp_path / "p000007.psv").write_text(_psv(bad_cell))
    (tmp_path / "p000013.psv").write_text(_psv(_hours(1, 1)) + "\n" + "1|2|3\n")
    (tmp_path / "p000019.psv").write_text(_psv(_hours(1, 2)).replace("\n", "\r\n"))
    data = ph.read_sepsis2019(tmp_path)
    _accounted_for(data)
    assert data.summary["quarantine_reasons"] == {
        "bad_type:Resp": 1,
        "malformed:fields": 1,
    }
    assert _quarantined_at(data, "bad_type:Resp") == [("p000007.psv", 3)]
    assert _quarantined_at(data, "malformed:fields") == [("p000013.psv", 4)]
    assert len(data.hourly) == 20 * 2 - 1 - 1


def test_convert_writes_the_bad_rows_to_quarantine_and_the_cli_names_them(
    tmp_path, capsys, monkeypatch
):
    """The whole command on a mirror holding one corrupt file: exit 0, counts by reason."""
    monkeypatch.delenv(ph.MIRROR_ENV, raising=False)
    mirror = tmp_path / "mirror"
    psv_dir = mirror / ph.MIRROR_SUBPATHS["sepsis2019"]
    psv_dir.mkdir(parents=True)
    (psv_dir / "p000001.psv").write_text(_psv(_hours(1, 3)))
    rows = _hours(1, 3)
    rows[2]["ICULOS"] = "1e12"
    (psv_dir / "p000002.psv").write_text(_psv(rows).replace("\n80|", "\n8O|", 1))  # line 2
    manifest = [
        f"{_sha256_of(p)}  {p.relative_to(mirror).as_posix()}" for p in sorted(psv_dir.iterdir())
    ]
    (mirror / ph.MANIFEST_NAME).write_text("\n".join(manifest) + "\n")
    out = tmp_path / "out"
    argv = ["physionet", "sepsis2019", "--mirror", str(mirror), "--out", str(out), "--offline"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out)
    assert line["quarantine_reasons"] == {"bad_type:HR": 1, "out_of_range:ICULOS": 1}
    assert "p000002.psv:2: bad_type:HR" in captured.err
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    where = zip(quarantine["file"], quarantine["line"], quarantine["reason"], strict=True)
    assert sorted(where) == [
        ("p000002.psv", 2, "bad_type:HR"),
        ("p000002.psv", 4, "out_of_range:ICULOS"),
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quarantine_reasons"] == line["quarantine_reasons"]
    assert len(pd.read_parquet(out / "hourly.parquet")) == 3 + 1


def _sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# MIMIC-II numerics
# --------------------------------------------------------------------------------------------


def test_mimic2_records_zeros_are_nan_and_single_sample_works(mimic):
    s = mimic.summary
    assert s["patients"] == 3
    assert s["rows"] == 1936 + 1 + 72
    both = pd.concat([mimic.events, mimic.quarantined])
    counts = both["patient_id"].value_counts()
    assert counts["s00001-2896-10-09-01-56n"] == 1
    for vital in schema.VITAL_NAMES:
        assert not (both[vital] == 0).any(), vital
    assert both["temp"].isna().all()
    assert s["base_datetime"]["s00001-2896-10-10-00-31n"].startswith("2896-10-10 00:31:25")
    one = mimic.events[mimic.events["patient_id"] == "s00001-2896-10-10-00-31n"]
    assert one["event_time"].iloc[1] - one["event_time"].iloc[0] == pd.Timedelta(minutes=1)
    labels = mimic.labels.set_index("patient_id")
    assert labels.loc["s00001-2896-10-10-00-31n", "age"] == 60.0
    assert labels.loc["s00001-2896-10-10-00-31n", "sex"] == "F"
    assert pd.isna(labels.loc["s25047-2704-05-04-10-44n", "sex"])
    assert not labels["deteriorates"].any() and set(labels["source"]) == {"mimic2"}
    _accounted_for(mimic)


def test_mimic2_invasive_pressure_falls_back_to_cuff():
    names = ["HR", "ABPSys", "ABPDias", "ABPMean", "NBPSys", "NBPDias", "NBPMean"]
    signals = np.array(
        [
            [0.0, 120.0, 60.0, 80.0, 130.0, 70.0, 90.0],  # arterial line: ABP wins
            [75.0, 0.0, 0.0, 0.0, 130.0, 70.0, 90.0],  # no arterial reading: cuff
            [75.0, 0.0, 0.0, 0.0, np.nan, np.nan, np.nan],  # neither
        ]
    )
    vitals = readers.mimic2_vitals(signals, names)
    np.testing.assert_array_equal(vitals["hr"], [np.nan, 75.0, 75.0])
    np.testing.assert_array_equal(vitals["sbp"], [120.0, 130.0, np.nan])
    np.testing.assert_array_equal(vitals["map"], [80.0, 90.0, np.nan])
    assert np.isnan(vitals["spo2"]).all()  # channel absent


# --------------------------------------------------------------------------------------------
# BIDMC
# --------------------------------------------------------------------------------------------


def test_bidmc_481_rows_per_patient_and_fixed_fields(bidmc):
    both = pd.concat([bidmc.events, bidmc.quarantined])
    assert both["patient_id"].value_counts().to_dict() == {
        f"bidmc_{nn}": 481 for nn in ("01", "13", "18", "23", "44")
    }
    first = both.groupby("patient_id")["event_time"].min()
    assert first["bidmc_23"] == START - pd.Timedelta(seconds=1)  # official file starts at -1 s
    assert first["bidmc_01"] == START
    labels = bidmc.labels.set_index("patient_id")
    assert labels.loc["bidmc_01", "age"] == 88 and labels.loc["bidmc_01", "sex"] == "M"
    assert labels.loc["bidmc_44", "age"] == 90  # "90+"
    assert np.isnan(labels.loc["bidmc_18", "age"]) and pd.isna(labels.loc["bidmc_18", "sex"])
    # bidmc_13's RESP reads 0 (220 s), 1 and 2 (2 s each): below the valid 3 /min, kept as is.
    assert bidmc.summary["quarantine_reasons"] == {"out_of_range:rr": 224}
    assert set(bidmc.quarantined["patient_id"]) == {"bidmc_13"}
    _accounted_for(bidmc)


def test_bidmc_bad_lines_and_a_lost_fix_file_do_not_stop_the_other_recordings(tmp_path):
    for path in BIDMC_DIR.iterdir():
        shutil.copy(path, tmp_path / path.name)
    numerics = tmp_path / "bidmc_01_Numerics.csv"
    lines = numerics.read_text().splitlines()
    lines[2] = "1,94,93"  # line 3: truncated
    lines[4] = "3,9x,93,25,97"  # line 5: not a number
    numerics.write_text("\n".join(lines) + "\n")
    (tmp_path / "bidmc_13_Fix.txt").unlink()
    data = ph.read_bidmc(tmp_path)
    _accounted_for(data)
    assert _quarantined_at(data, "malformed:fields") == [("bidmc_01_Numerics.csv", 3)]
    assert _quarantined_at(data, "bad_type:HR") == [("bidmc_01_Numerics.csv", 5)]
    bad = data.quarantined[data.quarantined["reason"] == "bad_type:HR"].iloc[0]
    assert bad["patient_id"] == "bidmc_01"
    assert data.summary["patients"] == 5 and data.summary["rows"] == 5 * 481
    assert pd.isna(data.labels.set_index("patient_id").loc["bidmc_13", "sex"])


def test_unreadable_mimic2_record_is_quarantined_and_the_others_are_read(tmp_path):
    shutil.copytree(MIMIC_DIR, tmp_path / "records")
    broken = next((tmp_path / "records").rglob("s25047*n.hea"))
    broken.write_text("this is not a WFDB header\n")
    data = ph.read_mimic2_numerics(tmp_path / "records")
    _accounted_for(data)
    assert data.summary["patients"] == 2 and data.summary["rows"] == 1936 + 1 + 1
    assert _quarantined_at_record(data) == [(broken.name, "s25047-2704-05-04-10-44n")]


def _quarantined_at_record(data: ph.SourceData) -> list[tuple[str, str]]:
    rows = data.quarantined[data.quarantined["reason"] == "malformed:record"]
    assert rows["line"].isna().all()
    return sorted(zip(rows["file"], rows["patient_id"], strict=True))


# --------------------------------------------------------------------------------------------
# Manifest, fetch, convert, CLI
# --------------------------------------------------------------------------------------------


def test_manifest_passes_on_fixture_and_names_broken_files(tmp_path):
    assert ph.verify_manifest(FIXTURE) == 302
    copy = tmp_path / "mirror"
    shutil.copytree(FIXTURE, copy)
    (copy / "sepsis2019/training_setA/p000009.psv").write_text("tampered\n")
    (copy / "bidmc_csv/bidmc_csv/bidmc_01_Fix.txt").unlink()
    with pytest.raises(ph.ManifestError) as err:
        ph.verify_manifest(copy)
    message = str(err.value)
    assert "2 of 302" in message
    assert "missing (1): bidmc_csv/bidmc_csv/bidmc_01_Fix.txt" in message
    assert "sha256 mismatch (1): sepsis2019/training_setA/p000009.psv" in message
    # Limiting the check to one source ignores the other source's problem.
    bidmc_files = [p for p in ph.read_manifest(copy / "MANIFEST.sha256") if "bidmc_csv/" in p]
    with pytest.raises(ph.ManifestError, match="bidmc_01_Fix"):
        ph.verify_manifest(copy, bidmc_files)
    with pytest.raises(ph.ManifestError, match="not in the manifest"):
        ph.verify_manifest(FIXTURE, ["sepsis2019/training_setA/p999999.psv"])


@pytest.mark.parametrize("how", ["parameter", "environment"])
def test_fetch_without_mirror_offline_names_the_config_key(tmp_path, monkeypatch, how):
    monkeypatch.setenv(ph.OFFLINE_ENV, "1" if how == "environment" else "0")
    offline = True if how == "parameter" else None
    with pytest.raises(ph.FetchError, match=r"physionet\.mirror") as err:
        ph.fetch("bidmc", tmp_path / "no-such-mirror", tmp_path / "out", offline=offline)
    assert "bidmc_csv/bidmc_csv/" in str(err.value) and "MANIFEST.sha256" in str(err.value)
    assert not (tmp_path / "out" / "fetched.json").exists()


def test_unreachable_server_and_incomplete_mirrors_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(ph.MIRROR_ENV, raising=False)
    with socket.socket() as probe:  # a loopback port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = DownloadSettings(f"http://127.0.0.1:{port}/files/", "1.0.0", 2, 5.0, retries=1)
    with pytest.raises(ph.FetchError) as caught:
        ph.fetch("sepsis2019", None, tmp_path / "out", offline=False, download=settings)
    message = str(caught.value)
    assert f"127.0.0.1:{port}/files/challenge-2019/1.0.0/SHA256SUMS.txt" in message
    assert "still failing after 2 attempts" in message and "physionet.base_url" in message
    assert "physionet.versions.sepsis2019" in message
    assert not (tmp_path / "out" / "fetched.json").exists()
    (tmp_path / "mirror").mkdir()
    with pytest.raises(ph.ManifestError, match=r"MANIFEST\.sha256: not found"):
        ph.fetch("sepsis2019", tmp_path / "mirror", tmp_path / "out")
    lines = (FIXTURE / "MANIFEST.sha256").read_text().splitlines()
    only_bidmc = [line for line in lines if "bidmc_csv/" in line]
    (tmp_path / "mirror" / "MANIFEST.sha256").write_text("\n".join(only_bidmc) + "\n")
    with pytest.raises(ph.FetchError, match="does not hold PhysioNet source 'sepsis2019'"):
        ph.fetch("sepsis2019", tmp_path / "mirror", tmp_path / "out")


def test_default_config_downloads_pinned_versions_and_names_no_folder_outside(tmp_path):
    physionet = load_config()["physionet"]
    # No mirror by default: a fresh clone downloads; CI sets $VITALSTREAM_PHYSIONET_MIRROR.
    assert physionet["mirror"] is None
    assert physionet["base_url"] == "https://physionet.org/files/"
    # The versions PROVENANCE.md of the offline copy describes (its files are those releases).
    pinned = {s: ph.download_settings(s).version for s in ph.SOURCES}
    assert pinned == {"sepsis2019": "1.0.0", "mimic2_numerics": "3.0.0", "bidmc": "1.0.0"}
    settings = ph.download_settings("mimic2_numerics")
    assert settings.project_url("mimic2wdb") == "https://physionet.org/files/mimic2wdb/3.0.0/"
    assert settings.workers > 1 and settings.timeout_s > 0 and settings.retries >= 1
    # Nothing the defaults name lies outside the repository (a relative path stays inside).
    for value in _strings(load_config()):
        if value.startswith(("..", "/", "~")):
            pytest.fail(f"config/config.yaml names {value!r}, outside the repository")


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_download_settings_are_checked_and_name_the_key(tmp_path):
    block = {"base_url": "http://x/", "versions": {}, "download": {"workers": 2}}
    with pytest.raises(SettingsError, match="physionet/versions/bidmc: missing"):
        DownloadSettings.from_config(block, "bidmc")
    block["versions"] = {"bidmc": "1.0.0"}
    with pytest.raises(SettingsError, match="physionet/download: missing timeout_s, retries"):
        DownloadSettings.from_config(block, "bidmc")
    block["download"] = {"workers": 2, "timeout_s": 5, "retries": 0}
    path = tmp_path / "physionet.json"
    path.write_text(json.dumps({**block, "versions": {"bidmc": "latest"}}))
    with pytest.raises(SettingsError, match="physionet/versions/bidmc: 'latest' does not match"):
        read_settings_file(path, "bidmc")
    path.write_text(json.dumps(block))
    assert read_settings_file(path, "bidmc") == DownloadSettings("http://x/", "1.0.0", 2, 5.0, 0)


def test_cli_rejects_a_base_url_that_is_not_http(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    ph.register_cli(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["physionet", "bidmc", "--out", str(tmp_path), "--base-url", "ftp://x"])
    assert exited.value.code == 2 and "--base-url" in capsys.readouterr().err


def test_mirror_environment_variable_overrides_config(tmp_path, monkeypatch):
    monkeypatch.delenv(ph.MIRROR_ENV, raising=False)
    assert ph.resolve_mirror("some/dir") == Path("some/dir").resolve()
    assert ph.resolve_mirror(None) is None
    monkeypatch.setenv(ph.MIRROR_ENV, str(tmp_path))
    assert ph.resolve_mirror("some/dir") == tmp_path


def test_fetch_and_convert_from_the_fixture_mirror_are_deterministic(tmp_path):
    fetched = ph.fetch("mimic2_numerics", FIXTURE, tmp_path / "a", offline=True)
    assert fetched == {
        "source": "mimic2_numerics",
        "origin": "mirror",
        "path": str(MIMIC_DIR),
        "files": 6,
        "verified": True,
    }
    assert json.loads((tmp_path / "a" / "fetched.json").read_text()) == fetched
    summary = ph.convert("mimic2_numerics", tmp_path / "a" / "fetched.json", tmp_path / "a")
    shutil.copy(tmp_path / "a" / "fetched.json", tmp_path / "fetched_b.json")
    ph.convert("mimic2_numerics", tmp_path / "fetched_b.json", tmp_path / "b")
    for name in ("events", "labels", "quarantine"):
        a = (tmp_path / "a" / f"{name}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{name}.parquet").read_bytes(), name
    assert json.loads((tmp_path / "a" / "summary.json").read_text()) == summary
    events = pd.read_parquet(tmp_path / "a" / "events.parquet")
    assert events.dtypes.astype(str).to_dict() == schema.EVENT_DTYPES
    labels = pd.read_parquet(tmp_path / "a" / "labels.parquet")
    assert labels.dtypes.astype(str).to_dict() == schema.LABEL_DTYPES
    quarantine = pd.read_parquet(tmp_path / "a" / "quarantine.parquet")
    assert len(events) + len(quarantine) == summary["rows"]


def test_cli_fetches_converts_and_prints_one_json_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ph.MIRROR_ENV, raising=False)
    assert cli.COMMANDS["physionet"][0] == "data.physionet"
    parser = argparse.ArgumentParser()
    ph.register_cli(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "sepsis2019"
    args = parser.parse_args(
        ["physionet", "sepsis2019", "--mirror", str(FIXTURE), "--out", str(out), "--offline"]
    )
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert (line["patients"], line["septic_patients"], line["origin"]) == (285, 63, "mirror")
    assert line["rows"] == line["valid_rows"] + line["quarantined_rows"]
    assert line["seconds"] >= 0
    for name in ("events", "labels", "quarantine", "hourly"):
        assert (out / f"{name}.parquet").is_file()
    hourly = pd.read_parquet(out / "hourly.parquet")
    assert len(hourly) == line["rows"] and hourly["ICULOS"].dtype == "int64"


def test_cli_reports_missing_data_without_a_traceback(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    ph.register_cli(parser.add_subparsers(dest="command", required=True))
    argv = ["physionet", "bidmc", "--mirror", str(tmp_path / "none"), "--out", str(tmp_path)]
    args = parser.parse_args([*argv, "--offline"])
    assert args.func(args) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "physionet.mirror" in captured.err
