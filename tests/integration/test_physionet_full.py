"""The full PhysioNet/CinC 2019 training set A from the offline mirror: the official counts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from vitalstream.data import physionet as ph

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get(ph.MIRROR_ENV) or REPO.parent / "shared" / "data" / "physionet")
SET_A = MIRROR / ph.MIRROR_SUBPATHS["sepsis2019"]


@pytest.fixture(scope="module")
def set_a() -> tuple[ph.SourceData, float]:
    if not SET_A.is_dir():
        pytest.skip(f"no PhysioNet mirror at {MIRROR} (set {ph.MIRROR_ENV} to its directory)")
    t0 = time.perf_counter()
    data = ph.read_sepsis2019(SET_A)
    return data, time.perf_counter() - t0


def test_set_a_has_the_official_counts(set_a):
    data, seconds = set_a
    s = data.summary
    assert s["patients"] == 20_336
    assert s["rows"] == 790_215
    assert s["septic_patients"] == 1_790
    assert s["valid_rows"] + s["quarantined_rows"] == 790_215
    assert len(data.events) + len(data.quarantined) == 790_215
    assert len(data.hourly) == 790_215
    assert sum(s["quarantine_reasons"].values()) == s["quarantined_rows"]
    assert seconds < 30, f"set A took {seconds:.1f} s to load"


def test_set_a_matches_its_manifest():
    if not SET_A.is_dir():
        pytest.skip(f"no PhysioNet mirror at {MIRROR} (set {ph.MIRROR_ENV} to its directory)")
    prefix = ph.MIRROR_SUBPATHS["sepsis2019"] + "/"
    files = [p for p in ph.read_manifest(MIRROR / ph.MANIFEST_NAME) if p.startswith(prefix)]
    assert ph.verify_manifest(MIRROR, files) == 20_336
