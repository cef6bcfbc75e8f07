"""Results archives: a checksum per file, verified before use; a corrupted, truncated or padded
archive is refused with a message naming the file; unpacking never touches results/."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from vitalstream.paper import archive

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A miniature results tree: two run files (one companion), a summary, two products."""
    root = tmp_path / "checkout"
    files = {
        "results/runs/exp/a/rep1/metrics.json": '{"x": 1}\n',
        "results/runs/exp/a/rep1/latency.parquet": "not really parquet",
        "data/physionet/src/summary.json": '{"rows": 3}\n',
        "results/paper/macros.tex": "\\newcommand{\\X}{1}\n",
        "results/paper/exp_values.json": '{"X": {"value": 1}}\n',
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def make_archive(tree: Path, out: Path) -> dict:
    inputs = archive.with_companions(
        ["results/runs/exp/a/rep1/metrics.json", "data/physionet/src/summary.json"],
        ["results/runs/exp/a/rep1"],
        ["latency.parquet", "batches.csv"],  # batches.csv does not exist: skipped
        tree,
    )
    products = ["results/paper/macros.tex", "results/paper/exp_values.json"]
    return archive.create(inputs, products, out, root=tree, config={"paper": {"k": 1}})


def repack(source: Path, out: Path, edit) -> None:
    """Copy an archive member by member, letting ``edit(name, data)`` change or drop members
    (returning None drops one) and add new ones (``edit(None, None)`` → list of (name, data))."""
    with tarfile.open(source, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else b""
            data = edit(member.name, data)
            if data is None:
                continue
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
        for name, data in edit(None, None) or []:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


def test_manifest_has_a_sha256_per_file_and_records_the_origin(tree, tmp_path):
    out = tmp_path / "a.tar.gz"
    record = make_archive(tree, out)
    with tarfile.open(out, "r:gz") as tar:
        names = set(tar.getnames())
        manifest = tar.extractfile(archive.MANIFEST_NAME).read().decode()
        stored = tar.extractfile("results/runs/exp/a/rep1/metrics.json").read()
    sums = archive.parse_manifest(manifest)
    assert set(sums) == names - {archive.MANIFEST_NAME}
    assert sums["results/runs/exp/a/rep1/metrics.json"] == hashlib.sha256(stored).hexdigest()
    assert "results/runs/exp/a/rep1/latency.parquet" in sums  # the companion came along
    assert record["files"]["results/paper/macros.tex"]["role"] == "product"
    assert record["files"]["data/physionet/src/summary.json"]["role"] == "input"
    origin = record["origin"]
    assert set(origin["machine"]) >= {"hostname", "cpu", "cores", "memory_gib"}
    assert origin["git"]["commit"] and origin["date_utc"][:2] == "20"
    assert record["config"] == {"paper": {"k": 1}}


def test_a_sound_archive_unpacks_into_a_work_dir_and_compares_equal(tree, tmp_path):
    out = tmp_path / "a.tar.gz"
    make_archive(tree, out)
    work = tmp_path / "work"
    record = archive.unpack(out, work, REPO)
    # Inputs where the rules look for them, products only in the pristine copy.
    assert (work / "results/runs/exp/a/rep1/metrics.json").read_text() == '{"x": 1}\n'
    assert not (work / "results/paper/macros.tex").exists()
    assert (work / "archived/results/paper/macros.tex").exists()
    assert json.loads((work / "config/config.yaml").read_text()) == record["config"]
    assert (work / "notebooks").resolve() == (REPO / "notebooks").resolve()
    assert archive.compare(work) == [
        "results/paper/exp_values.json (not rebuilt)",
        "results/paper/macros.tex (not rebuilt)",
    ]
    for name in ("macros.tex", "exp_values.json"):
        (work / "results/paper").mkdir(exist_ok=True)
        (work / "results/paper" / name).write_bytes((tree / "results/paper" / name).read_bytes())
    assert archive.compare(work) == []
    (work / "results/paper/macros.tex").write_text("\\newcommand{\\X}{2}\n")
    assert archive.compare(work) == ["results/paper/macros.tex"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda n, d: (d + b" ") if n == "results/runs/exp/a/rep1/metrics.json" else d,
            "checksum mismatch: results/runs/exp/a/rep1/metrics.json",
        ),
        (
            lambda n, d: None if n == "data/physionet/src/summary.json" else d,
            "missing: data/physionet/src/summary.json",
        ),
        (
            lambda n, d: [("results/extra.json", b"{}")] if n is None else d,
            "not in the manifest: results/extra.json",
        ),
        (
            lambda n, d: None if n == archive.MANIFEST_NAME else d,
            "no SHA256SUMS",
        ),
    ],
    ids=["corrupted", "missing", "unlisted", "no-manifest"],
)
def test_a_bad_archive_is_refused_naming_the_file(tree, tmp_path, edit, message):
    good, bad = tmp_path / "good.tar.gz", tmp_path / "bad.tar.gz"
    make_archive(tree, good)
    repack(good, bad, edit)
    work = tmp_path / "work"
    with pytest.raises(archive.ArchiveError, match=message):
        archive.unpack(bad, work, REPO)
    assert not work.exists(), "nothing unverified may stay behind"


def test_the_cli_exits_non_zero_on_a_corrupted_archive(tree, tmp_path):
    good, bad = tmp_path / "good.tar.gz", tmp_path / "bad.tar.gz"
    make_archive(tree, good)
    repack(good, bad, lambda n, d: b"{}\n" if n == "results/paper/macros.tex" else d)
    env = {"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/bin:/bin"}
    for args in (["verify", str(bad)], ["unpack", str(bad), "--work", str(tmp_path / "w")]):
        result = subprocess.run(
            [sys.executable, "-m", "vitalstream", "archive", *args],
            capture_output=True,
            text=True,
            env=env,
        )
        assert result.returncode != 0
        assert "checksum mismatch: results/paper/macros.tex" in result.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "vitalstream", "archive", "verify", str(good)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr


def test_unsafe_member_paths_are_refused(tmp_path):
    bad = tmp_path / "evil.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(archive.ArchiveError, match="unsafe path"):
        archive.extract(bad, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


def test_unpack_refuses_a_non_empty_work_dir(tree, tmp_path):
    out = tmp_path / "a.tar.gz"
    make_archive(tree, out)
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    (work / "results" / "mine.txt").write_text("keep me")
    with pytest.raises(archive.ArchiveError, match="not empty"):
        archive.unpack(out, work, REPO)
    assert (work / "results" / "mine.txt").read_text() == "keep me"


def test_missing_or_oversized_files_are_not_archived(tree, tmp_path, monkeypatch):
    with pytest.raises(archive.ArchiveError, match="missing files"):
        archive.create(["results/nope.json"], [], tmp_path / "a.tar.gz", root=tree)
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 5)
    with pytest.raises(archive.ArchiveError, match="raw data"):
        archive.create(
            ["results/runs/exp/a/rep1/latency.parquet"], [], tmp_path / "a.tar.gz", root=tree
        )


def test_origin_macros_say_whether_the_build_came_from_an_archive(tree, tmp_path):
    out = tmp_path / "a.tar.gz"
    make_archive(tree, out)
    work = tmp_path / "work"
    archive.unpack(out, work, REPO)
    from_archive = tmp_path / "origin_archive.tex"
    record = archive.write_origin(from_archive, REPO, work / archive.ARCHIVED_DIR)
    text = from_archive.read_text()
    assert "\\newcommand{\\BuiltFromArchive}{true}" in text
    assert f"\\newcommand{{\\OriginArchiveSha}}{{{record['sha256'][:16]}}}" in text
    assert "\\newcommand{\\OriginArchive}{a.tar.gz}" in text
    assert f"\\newcommand{{\\OriginCores}}{{{record['origin']['machine']['cores']}}}" in text
    live = tmp_path / "origin_live.tex"
    archive.write_origin(live, REPO, None)
    assert "\\newcommand{\\BuiltFromArchive}{false}" in live.read_text()


def test_the_configuration_keeps_its_order(tree, tmp_path):
    # The order of conditions is the order of a table's columns: a sorted copy would change it.
    out = tmp_path / "a.tar.gz"
    config = {
        "experiments": {"validation": {"conditions": {"in_order": {}, "sliding": {}, "late": {}}}}
    }
    archive.create(["data/physionet/src/summary.json"], [], out, root=tree, config=config)
    work = tmp_path / "work"
    archive.unpack(out, work, REPO)
    unpacked = json.loads((work / "config/config.yaml").read_text())
    assert list(unpacked["experiments"]["validation"]["conditions"]) == [
        "in_order",
        "sliding",
        "late",
    ]


def test_the_paper_rules_inputs_are_archived_and_their_outputs_compared():
    rules = [
        {
            "name": "run_notebook_x",
            "inputs": {"_all": ["notebooks/x.ipynb", "results/runs/e/c/rep2/metrics.json"]},
            "outputs": ["results/notebooks/x.ipynb", "results/paper/x_values.json"],
        },
        {
            "name": "write_macros",
            "inputs": {"_all": ["results/paper/x_values.json", "data/physionet/s/summary.json"]},
            "outputs": ["results/paper/macros.tex"],
        },
        {
            "name": "write_origin_macros",
            "inputs": {"_all": []},
            "outputs": ["results/paper/origin.tex"],
        },
    ]
    files = archive.archive_files(rules)
    assert files["inputs"] == [
        "data/physionet/s/summary.json",
        "results/runs/e/c/rep2/metrics.json",
    ]
    assert files["runs"] == ["results/runs/e/c/rep2"]
    assert files["products"] == ["results/paper/macros.tex", "results/paper/x_values.json"]

    rules[0]["dynamic_inputs"] = 1  # an input function: its files cannot be listed
    with pytest.raises(archive.ArchiveError, match="run_notebook_x"):
        archive.archive_files(rules)
