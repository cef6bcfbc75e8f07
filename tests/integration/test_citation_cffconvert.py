"""CITATION.cff against the official CFF schema, with the reference validator (cffconvert).

cffconvert pins an old jsonschema that the project's environment cannot hold, so it runs from
a scratch virtual environment installed from PyPI (or pip's cache).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CFFCONVERT = "cffconvert==2.0.0"


def test_citation_cff_is_valid_for_cffconvert(tmp_path):
    venv = tmp_path / "cff"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", CFFCONVERT]
    subprocess.run(pip, check=True, timeout=300)
    result = subprocess.run(
        [str(venv / "bin" / "cffconvert"), "--validate", "-i", str(REPO / "CITATION.cff")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout
