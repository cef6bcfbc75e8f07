"""Design macros: the paper's stated settings follow the configuration the runs used."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from vitalstream.core import config as vsconfig
from vitalstream.paper import design, macros
from vitalstream.services.sparkenv import read_defaults

REPO = Path(__file__).resolve().parents[2]

QUICK = REPO / "config" / "profiles" / "quick.yaml"


@pytest.fixture(scope="module")
def full_config():
    return vsconfig.load_config([vsconfig.DEFAULT_CONFIG])


def test_lookup_selects_list_items_by_name_and_keeps_dotted_keys():
    data = {
        "rules": [{"name": "a", "threshold": 1}, {"name": "b", "threshold": 2}],
        "conf": {"spark.sql.shuffle.partitions": 4},
    }
    assert macros.lookup(data, "rules.name=b.threshold") == 2
    assert macros.lookup(data, "conf.spark.sql.shuffle.partitions") == 4
    with pytest.raises(KeyError):
        macros.lookup(data, "rules.name=c.threshold")
    with pytest.raises(KeyError):
        macros.lookup(data, "conf.spark.sql.other")


@pytest.mark.parametrize("profiles", [[], [QUICK]], ids=["full", "quick"])
def test_every_setting_resolves_in_each_profile(profiles):
    config = vsconfig.load_config([vsconfig.DEFAULT_CONFIG, *profiles])
    # Through JSON, as the rule's params pass it.
    subset = json.loads(json.dumps(design.subset(config)))
    values = design.values(subset, read_defaults(REPO / config["spark"]["defaults_file"]))
    assert set(values) == {s.name for s in design.SETTINGS}
    assert all(isinstance(v["value"], float) for v in values.values())
    assert all(v["source"].startswith("config: ") for v in values.values())


def test_a_config_edit_reaches_the_macro_with_its_unit(full_config):
    edited = copy.deepcopy(full_config)
    edited["diagnostics"]["suppression_s"] = 300
    edited["cohorts"]["late_exp60"]["very_late_fraction"] = 0.02
    for rule in edited["diagnostics"]["reading_rules"]:
        if rule["name"] == "critical_tachycardia":
            rule["threshold"] = 140
    edited["experiments"]["rq5"]["defaults"]["spark_conf"]["spark.sql.shuffle.partitions"] = 3
    values = design.values(design.subset(edited), {"spark.sql.shuffle.partitions": "2"})
    assert values["SuppressionMinutes"]["value"] == pytest.approx(5)
    assert values["RqthreeVeryLatePercent"]["value"] == pytest.approx(2)
    assert values["RuleCriticalHrBpm"]["value"] == 140
    assert values["TunedShufflePartitions"]["value"] == 3
    assert values["DefaultShufflePartitions"]["value"] == 2


def test_a_missing_or_empty_setting_is_a_clear_error(full_config):
    broken = copy.deepcopy(full_config)
    del broken["cohorts"]["late_pareto"]
    with pytest.raises(KeyError, match="late_pareto"):
        design.subset(broken)
    subset = design.subset(full_config)
    subset["diagnostics.suppression_s"] = None
    with pytest.raises(ValueError, match="SuppressionMinutes"):
        design.values(subset, {"spark.sql.shuffle.partitions": "2"})


def test_every_setting_is_used_by_the_paper():
    text = "".join(p.read_text() for p in (REPO / "paper" / "sections").glob("*.tex"))
    unused = [s.name for s in design.SETTINGS if f"\\{s.name}" not in text]
    assert not unused, f"settings no section states: {unused}"


def test_cli_writes_values_json(tmp_path, full_config):
    out = tmp_path / "design_values.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vitalstream",
            "design-values",
            "--config-json",
            json.dumps(design.subset(full_config)),
            "--spark-defaults",
            str(REPO / "envs" / "spark" / "spark-defaults.conf"),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    written = json.loads(out.read_text())
    assert written["BlueprintWatermarkMinutes"]["value"] == pytest.approx(
        full_config["experiments"]["rq5"]["conditions"]["blueprint"]["watermark_s"] / 60
    )
