"""Early-warning scores (pandas side): every band edge of the published tables, both sides.

Expected points are typed in from the published tables (NEWS2: RCP 2017; qSOFA: Seymour et al.
2016; SIRS: Bone et al. 1992; MEWS: Subbe et al. 2001; as in ../shared/docs/reference-facts.md),
never computed from the module under test. The tables under test are the shipped config, so the
tests also check config/config.yaml against the publications.
"""

from __future__ import annotations

import copy
import itertools
import math
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.scores import (
    PANDAS_DTYPES,
    SCORE_COLUMNS,
    score_frame,
    score_spec_from_config,
    score_table_rows,
)

SCORES_CONFIG = vsconfig.load_config()["diagnostics"]["scores"]
SPEC = score_spec_from_config(SCORES_CONFIG)

# A physiologically normal window: every score 0 (NEWS2 0, qSOFA 0, SIRS 0, MEWS 0).
NORMAL = {
    "hr_mean": 70.0,
    "rr_mean": 14.0,
    "spo2_mean": 98.0,
    "sbp_mean": 120.0,
    "temp_mean": 37.0,
    "o2_any": False,
    "consciousness_worst": "A",
}

# (charted value, points) on both sides of every band edge, from the published tables.
NEWS2_EDGES: dict[str, list[tuple[float, int]]] = {
    "rr": [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)],
    "spo2": [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)],
    "sbp": [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
    "hr": [
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
    ],
    "temp": [
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
    ],
}
MEWS_EDGES: dict[str, list[tuple[float, int]]] = {
    "sbp": [(70, 3), (71, 2), (80, 2), (81, 1), (100, 1), (101, 0), (199, 0), (200, 2)],
    "hr": [
        (40, 2),
        (41, 1),
        (50, 1),
        (51, 0),
        (100, 0),
        (101, 1),
        (110, 1),
        (111, 2),
        (129, 2),
        (130, 3),
    ],
    # "<9" scores 2: charted 8 is the last value below 9.
    "rr": [(8, 2), (9, 0), (14, 0), (15, 1), (20, 1), (21, 2), (29, 2), (30, 3)],
    # "<35" scores 2: charted 34.9 is the last value below 35.0.
    "temp": [(34.9, 2), (35.0, 0), (38.4, 0), (38.5, 2)],
}
# One criterion each: (charted value, criterion met).
QSOFA_EDGES: dict[str, list[tuple[float, int]]] = {
    "rr": [(21, 0), (22, 1)],  # respiration ≥ 22
    "sbp": [(100, 1), (101, 0)],  # systolic ≤ 100
}
SIRS_EDGES: dict[str, list[tuple[float, int]]] = {
    "temp": [(35.9, 1), (36.0, 0), (38.0, 0), (38.1, 1)],  # < 36 or > 38 °C
    "hr": [(90, 0), (91, 1)],  # > 90
    "rr": [(20, 0), (21, 1)],  # > 20
}
RESOLUTION = {"hr": 1, "rr": 1, "spo2": 1, "sbp": 1, "temp": Decimal("0.1")}


def windows(rows: list[dict]) -> pd.DataFrame:
    """Window rows over NORMAL; None means unknown."""
    frame = pd.DataFrame([{**NORMAL, **row} for row in rows])
    for vital in ("hr", "rr", "spo2", "sbp", "temp"):
        frame[f"{vital}_mean"] = frame[f"{vital}_mean"].astype("float64")
    return frame


def scored(rows: list[dict]) -> pd.DataFrame:
    return score_frame(windows(rows), SPEC)


def values(column: pd.Series) -> list:
    return [None if v is pd.NA else v for v in column.tolist()]


def half_steps(edges: list[tuple[float, int]], vital: str) -> list[tuple[float, int]]:
    """Window means just below and exactly at the half step between two adjacent charted values.

    A mean is charted rounded half up, so lo + 0.49 step is charted lo and lo + 0.5 step is
    charted lo + step: the expected points are the table's points of those charted values.
    """
    step = Decimal(RESOLUTION[vital])
    cases = []
    for (lo, lo_points), (hi, hi_points) in itertools.pairwise(edges):
        if Decimal(str(hi)) - Decimal(str(lo)) != step:
            continue
        cases.append((float(Decimal(str(lo)) + step * Decimal("0.49")), lo_points))
        cases.append((float(Decimal(str(lo)) + step / 2), hi_points))
    return cases


def _edge_cases(edges: dict[str, list[tuple[float, int]]]) -> list[tuple[str, float, int]]:
    return [(vital, value, points) for vital, pairs in edges.items() for value, points in pairs]


# --------------------------------------------------------------------------------------------
# NEWS2
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("vital", "value", "points"), _edge_cases(NEWS2_EDGES))
def test_news2_band_edges(vital, value, points):
    out = scored([{f"{vital}_mean": value}])
    assert out[f"news2_{vital}"].iloc[0] == points


@pytest.mark.parametrize(
    ("vital", "value", "points"),
    [
        (vital, value, points)
        for vital, pairs in NEWS2_EDGES.items()
        for value, points in half_steps(pairs, vital)
    ],
)
def test_news2_non_integer_means_are_charted_half_up(vital, value, points):
    assert scored([{f"{vital}_mean": value}])[f"news2_{vital}"].iloc[0] == points


def test_news2_named_half_step_examples():
    hr = scored([{"hr_mean": 90.4}, {"hr_mean": 90.5}])["news2_hr"]
    assert values(hr) == [0, 1]
    temp = scored([{"temp_mean": 35.04}, {"temp_mean": 35.05}])["news2_temp"]
    assert values(temp) == [3, 1]


@pytest.mark.parametrize(
    ("vital", "value", "points"),
    [
        ("hr", 20.0, 3),
        ("hr", 250.0, 3),
        ("rr", 3.0, 3),
        ("rr", 60.0, 3),
        ("spo2", 50.0, 3),
        ("spo2", 100.0, 0),
        ("sbp", 40.0, 3),
        ("sbp", 260.0, 3),
        ("temp", 30.0, 3),
        ("temp", 43.0, 2),
    ],
)
def test_news2_open_bands_reach_the_valid_range(vital, value, points):
    assert scored([{f"{vital}_mean": value}])[f"news2_{vital}"].iloc[0] == points


def test_news2_oxygen_and_consciousness():
    out = scored(
        [{"o2_any": True}, {"o2_any": False}]
        + [{"consciousness_worst": level} for level in ("A", "C", "V", "P", "U")]
    )
    assert values(out["news2_o2"]) == [2, 0, 0, 0, 0, 0, 0]
    assert values(out["news2_consciousness"]) == [0, 0, 0, 3, 3, 3, 3]


@pytest.mark.parametrize(
    ("row", "total", "single3", "risk"),
    [
        ({}, 0, False, "low"),
        # a single parameter scoring 3 with an aggregate of 0–4: low–medium
        ({"consciousness_worst": "V"}, 3, True, "low_medium"),
        ({"consciousness_worst": "V", "hr_mean": 95.0}, 4, True, "low_medium"),
        ({"rr_mean": 8.0}, 3, True, "low_medium"),
        # 4 without a red score: low
        ({"hr_mean": 95.0, "spo2_mean": 94.0, "o2_any": True}, 4, False, "low"),
        # 5–6 medium, whether or not a single parameter scores 3
        ({"hr_mean": 95.0, "spo2_mean": 93.0, "o2_any": True}, 5, False, "medium"),
        ({"consciousness_worst": "V", "hr_mean": 95.0, "o2_any": True}, 6, True, "medium"),
        # ≥ 7 high
        ({"rr_mean": 25.0, "spo2_mean": 92.0, "o2_any": True}, 7, True, "high"),
        (
            {
                "rr_mean": 5.0,
                "spo2_mean": 85.0,
                "o2_any": True,
                "sbp_mean": 80.0,
                "hr_mean": 140.0,
                "consciousness_worst": "U",
                "temp_mean": 34.0,
            },
            20,
            True,
            "high",
        ),
    ],
)
def test_news2_total_and_risk(row, total, single3, risk):
    out = scored([row]).iloc[0]
    assert out["news2_total"] == total
    assert bool(out["news2_single3"]) is single3
    assert out["news2_risk"] == risk
    assert bool(out["news2_complete"])


def test_news2_missing_inputs_are_null_and_make_the_score_incomplete():
    out = scored(
        [
            {"hr_mean": np.nan, "rr_mean": 25.0},
            {"o2_any": None, "spo2_mean": 93.0},
            {"consciousness_worst": None, "hr_mean": 95.0},
            {"consciousness_worst": "X"},  # not an ACVPU level: unknown
            {
                "hr_mean": np.nan,
                "rr_mean": np.nan,
                "spo2_mean": np.nan,
                "sbp_mean": np.nan,
                "temp_mean": np.nan,
                "o2_any": None,
                "consciousness_worst": None,
            },
        ]
    )
    assert values(out["news2_hr"]) == [None, 0, 1, 0, None]
    assert values(out["news2_o2"]) == [0, None, 0, 0, None]
    assert values(out["news2_consciousness"]) == [0, 0, None, None, None]
    # Missing sub-scores add nothing: unknown oxygen is scored as air, unknown level as alert.
    assert values(out["news2_total"]) == [3, 2, 1, 0, 0]
    assert values(out["news2_complete"]) == [False] * 5
    assert values(out["news2_risk"]) == ["low_medium", "low", "low", "low", "low"]
    for name in ("rr", "spo2", "sbp", "temp"):
        assert out[f"news2_{name}"].iloc[4] is pd.NA


# --------------------------------------------------------------------------------------------
# qSOFA and SIRS
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("vital", "value", "met"), _edge_cases(QSOFA_EDGES))
def test_qsofa_criteria_edges(vital, value, met):
    assert scored([{f"{vital}_mean": value}])["qsofa"].iloc[0] == met


@pytest.mark.parametrize(
    ("vital", "value", "met"),
    [(v, x, p) for v, pairs in QSOFA_EDGES.items() for x, p in half_steps(pairs, v)],
)
def test_qsofa_non_integer_means(vital, value, met):
    assert scored([{f"{vital}_mean": value}])["qsofa"].iloc[0] == met


def test_qsofa_mentation_count_and_positive():
    out = scored(
        [{"consciousness_worst": level} for level in ("A", "C", "V", "P", "U")]
        + [
            {"rr_mean": 22.0, "sbp_mean": 100.0},
            {"rr_mean": 22.0, "consciousness_worst": "C"},
            {"rr_mean": 22.0, "sbp_mean": 100.0, "consciousness_worst": "P"},
            {"rr_mean": 22.0, "sbp_mean": np.nan, "consciousness_worst": None},
        ]
    )
    assert values(out["qsofa"]) == [0, 1, 1, 1, 1, 2, 2, 3, 1]
    assert values(out["qsofa_positive"]) == [False] * 5 + [True, True, True, False]
    assert values(out["qsofa_complete"]) == [True] * 8 + [False]


@pytest.mark.parametrize(("vital", "value", "met"), _edge_cases(SIRS_EDGES))
def test_sirs_criteria_edges(vital, value, met):
    assert scored([{f"{vital}_mean": value}])["sirs"].iloc[0] == met


@pytest.mark.parametrize(
    ("vital", "value", "met"),
    [(v, x, p) for v, pairs in SIRS_EDGES.items() for x, p in half_steps(pairs, v)]
    + [("temp", 38.04, 0), ("temp", 38.05, 1), ("temp", 35.94, 1), ("temp", 35.95, 0)],
)
def test_sirs_non_integer_means(vital, value, met):
    assert scored([{f"{vital}_mean": value}])["sirs"].iloc[0] == met


def test_sirs_count_and_positive():
    out = scored(
        [
            {"temp_mean": 38.1, "hr_mean": 91.0},
            {"temp_mean": 35.9, "hr_mean": 91.0, "rr_mean": 21.0},
            {"hr_mean": 91.0},
            {"hr_mean": 91.0, "temp_mean": np.nan},
        ]
    )
    assert values(out["sirs"]) == [2, 3, 1, 1]
    assert values(out["sirs_positive"]) == [True, True, False, False]
    assert values(out["sirs_complete"]) == [True, True, True, False]


# --------------------------------------------------------------------------------------------
# MEWS
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("vital", "value", "points"), _edge_cases(MEWS_EDGES))
def test_mews_band_edges(vital, value, points):
    assert scored([{f"{vital}_mean": value}])[f"mews_{vital}"].iloc[0] == points


@pytest.mark.parametrize(
    ("vital", "value", "points"),
    [(v, x, p) for v, pairs in MEWS_EDGES.items() for x, p in half_steps(pairs, v)],
)
def test_mews_non_integer_means(vital, value, points):
    assert scored([{f"{vital}_mean": value}])[f"mews_{vital}"].iloc[0] == points


def test_mews_avpu_and_new_confusion_scored_as_voice():
    out = scored([{"consciousness_worst": level} for level in ("A", "V", "P", "U", "C", None)])
    assert values(out["mews_avpu"]) == [0, 1, 2, 3, 1, None]


def test_mews_total():
    out = scored(
        [
            {},
            {
                "sbp_mean": 75.0,
                "hr_mean": 115.0,
                "rr_mean": 22.0,
                "temp_mean": 38.5,
                "consciousness_worst": "P",
            },
            {"sbp_mean": np.nan, "hr_mean": 130.0},
        ]
    )
    assert values(out["mews_total"]) == [0, 10, 3]
    assert values(out["mews_complete"]) == [True, True, False]


# --------------------------------------------------------------------------------------------
# Frame contract
# --------------------------------------------------------------------------------------------


def test_score_frame_adds_typed_columns_and_leaves_the_input_alone():
    frame = windows([{}, {"hr_mean": np.nan}])
    before = frame.copy()
    out = score_frame(frame, SPEC)
    pd.testing.assert_frame_equal(frame, before)
    assert list(out.columns) == list(frame.columns) + list(SCORE_COLUMNS)
    for name, kind in SCORE_COLUMNS.items():
        assert str(out[name].dtype) == PANDAS_DTYPES[kind], name
    assert list(SCORE_COLUMNS)[:21] == [
        "news2_rr",
        "news2_spo2",
        "news2_o2",
        "news2_sbp",
        "news2_hr",
        "news2_consciousness",
        "news2_temp",
        "news2_total",
        "news2_complete",
        "news2_single3",
        "news2_risk",
        "qsofa",
        "qsofa_positive",
        "qsofa_complete",
        "sirs",
        "sirs_positive",
        "sirs_complete",
        "mews_sbp",
        "mews_hr",
        "mews_rr",
        "mews_temp",
    ]


def test_nullable_input_dtypes_are_accepted():
    frame = windows([{}, {}, {}])
    frame["hr_mean"] = pd.array([95.0, None, 40.0], dtype="Float64")
    frame["o2_any"] = pd.array([True, None, False], dtype="boolean")
    frame["consciousness_worst"] = pd.array(["V", None, "A"], dtype="string")
    out = score_frame(frame, SPEC)
    assert values(out["news2_hr"]) == [1, None, 3]
    assert values(out["news2_o2"]) == [2, None, 0]
    assert values(out["news2_consciousness"]) == [3, None, 0]


def test_empty_frame():
    out = score_frame(windows([{}]).iloc[:0], SPEC)
    assert len(out) == 0 and set(SCORE_COLUMNS) <= set(out.columns)


def test_importing_scores_does_not_start_or_import_spark():
    code = "import sys, vitalstream.core.scores; assert 'pyspark' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def broken(path: tuple, value: object) -> dict:
    raw = copy.deepcopy(SCORES_CONFIG)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    "path",
    [
        ("nlews",),
        ("news2", "pulse"),
        ("news2", "hr", "colour"),
        ("news2", "risk", "low_at"),
        ("qsofa", "gcs"),
        ("mews", "avpu", "default"),
    ],
)
def test_unknown_keys_are_errors_naming_the_key(path):
    with pytest.raises(ValueError, match=path[-1]):
        score_spec_from_config(broken(path, 1))


def test_band_errors():
    bands = SCORES_CONFIG["news2"]["hr"]["bands"]
    descending = [bands[1], bands[0], *bands[2:]]
    with pytest.raises(ValueError, match=r"news2/hr/bands/1/upto: uptos must ascend"):
        score_spec_from_config(broken(("news2", "hr", "bands"), descending))
    closed = [*bands[:-1], {"upto": 250, "points": 3}]
    with pytest.raises(ValueError, match="last band must be open"):
        score_spec_from_config(broken(("news2", "hr", "bands"), closed))
    open_middle = [bands[0], {"upto": None, "points": 1}, *bands[2:]]
    with pytest.raises(ValueError, match="only the last band may be open"):
        score_spec_from_config(broken(("news2", "hr", "bands"), open_middle))
    with pytest.raises(ValueError, match="multiple of the resolution"):
        score_spec_from_config(broken(("news2", "temp", "bands", 0), {"upto": 35.05, "points": 3}))
    with pytest.raises(ValueError, match="bands/0/points"):
        score_spec_from_config(broken(("news2", "hr", "bands", 0), {"upto": 40, "points": -1}))
    with pytest.raises(ValueError, match="resolution"):
        score_spec_from_config(broken(("news2", "hr", "resolution"), 0))


def test_category_and_threshold_errors():
    points = dict(SCORES_CONFIG["news2"]["consciousness"]["points"])
    del points["C"]
    with pytest.raises(ValueError, match="consciousness/points/C"):
        score_spec_from_config(broken(("news2", "consciousness", "points"), points))
    with pytest.raises(ValueError, match="points/X: unknown consciousness level"):
        score_spec_from_config(broken(("mews", "avpu", "points", "X"), 1))
    with pytest.raises(ValueError, match="medium_at < high_at"):
        score_spec_from_config(broken(("news2", "risk", "medium_at"), 7))
    missing = copy.deepcopy(SCORES_CONFIG)
    del missing["sirs"]["positive_at"]
    with pytest.raises(ValueError, match="sirs/positive_at: required"):
        score_spec_from_config(missing)


def test_schema_rejects_unknown_score_keys():
    full = vsconfig.load_config()
    full["diagnostics"]["scores"]["news2"]["hr"]["colour"] = "red"
    with pytest.raises(vsconfig.ConfigError, match="colour"):
        vsconfig.validate(full)


# --------------------------------------------------------------------------------------------
# Definition table for the paper
# --------------------------------------------------------------------------------------------


def test_definition_rows_reproduce_the_published_ranges():
    rows = score_table_rows(SPEC)

    def table(score: str, parameter: str) -> list[tuple[str, int]]:
        return [
            (r["charted"], r["points"])
            for r in rows
            if r["score"] == score and r["parameter"] == parameter
        ]

    assert table("NEWS2", "hr") == [
        ("≤40", 3),
        ("41–50", 1),
        ("51–90", 0),
        ("91–110", 1),
        ("111–130", 2),
        ("≥131", 3),
    ]
    assert table("NEWS2", "temp") == [
        ("≤35.0", 3),
        ("35.1–36.0", 1),
        ("36.1–38.0", 0),
        ("38.1–39.0", 1),
        ("≥39.1", 2),
    ]
    assert table("NEWS2", "consciousness") == [("A", 0), ("C, V, P, U", 3)]
    assert table("NEWS2", "o2") == [("yes", 2), ("no (air)", 0)]
    assert table("MEWS", "sbp") == [
        ("≤70", 3),
        ("71–80", 2),
        ("81–100", 1),
        ("101–199", 0),
        ("≥200", 2),
    ]
    assert table("qSOFA", "rr") == [("≤21", 0), ("≥22", 1)]
    temp = [r for r in rows if r["score"] == "NEWS2" and r["parameter"] == "temp"]
    assert temp[1]["window_mean"] == "35.05 ≤ v < 36.05"
    assert all(set(r) >= {"parameter", "charted", "points"} for r in rows)
    assert not any(isinstance(r["points"], float) and math.isnan(r["points"]) for r in rows)
