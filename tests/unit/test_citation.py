"""The licence and the citation metadata agree with each other and with the package.

``LICENSE`` names the licence ``pyproject.toml`` declares; ``CITATION.cff`` (what GitHub's
"Cite this repository" reads) carries that licence, the package's version and the repository,
and has the shape of the Citation File Format 1.2.0 for every field it uses. The full official
schema is checked by cffconvert in tests/integration/test_citation_cffconvert.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# The fields of CFF 1.2.0 (https://github.com/citation-file-format/citation-file-format,
# schema.json) this file uses, with the spec's required ones; unknown top-level keys are refused,
# as the official schema does.
CFF_FIELDS = {
    "type": "object",
    "required": ["cff-version", "message", "title", "authors"],
    "additionalProperties": False,
    "properties": {
        "cff-version": {"type": "string", "pattern": r"^1\.2\.0$"},
        "message": {"type": "string", "minLength": 1},
        "title": {"type": "string", "minLength": 1},
        "type": {"enum": ["dataset", "software"]},
        "authors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "anyOf": [{"required": ["name"]}, {"required": ["family-names"]}],
            },
        },
        "version": {"type": ["string", "number"], "minLength": 1},
        "date-released": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "license": {"type": "string", "minLength": 1},
        "repository-code": {"type": "string", "pattern": r"^https?://\S+$"},
        "keywords": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "references": {
            "type": "array",
            "items": {"type": "object", "required": ["type", "title", "authors"]},
        },
    },
}


@pytest.fixture(scope="module")
def citation() -> dict:
    # CFF dates are YAML dates; keep them as text, as the CFF schema expects.
    text = (REPO / "CITATION.cff").read_text()
    return yaml.load(text, Loader=yaml.BaseLoader)


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_citation_has_the_shape_of_cff_1_2_0(citation):
    jsonschema.validate(citation, CFF_FIELDS)
    assert {"license", "version", "repository-code"} <= set(citation)


def test_the_field_check_refuses_a_broken_citation(citation):
    for broken in (
        {k: v for k, v in citation.items() if k != "authors"},
        {**citation, "repository-code": "not a url"},
        {**citation, "licence": "MIT"},  # a misspelt key is not CFF
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, CFF_FIELDS)


def test_citation_licence_and_version_are_the_package_s(citation, project):
    declared = project.get("license")
    declared = declared.get("text") if isinstance(declared, dict) else declared
    assert citation["license"] == declared == "MIT"
    assert citation["version"] == project["version"]


def test_the_licence_file_is_the_declared_licence(project):
    text = (REPO / "LICENSE").read_text()
    assert text.splitlines()[0] == "MIT License"
    assert "Permission is hereby granted, free of charge" in text
