"""PhysioNet downloads against a real loopback file server laid out like physionet.org's.

A small subset of the committed fixture (data/fixtures/physionet) is arranged as
``<root>/files/<project>/<version>/<path>`` with a ``SHA256SUMS.txt`` per project and served by
``http.server.ThreadingHTTPServer`` on 127.0.0.1; the downloader is pointed at it through its
base URL. The checks: what is converted from a download equals what is converted from a mirror
of the same files; a file whose bytes changed on the server is refused and named; a dropped
connection and a ``.part`` left by a killed run end in verified files on the next attempt, with
and without HTTP Range support. Marked integration: it starts a server and a CLI process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from vitalstream.data import physionet as ph
from vitalstream.data.download import DownloadSettings
from vitalstream.data.mirror import SPECS, download_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "data" / "fixtures" / "physionet"
SEPSIS_FILES = 30  # of the fixture's 285 set-A patients: enough to hold septic ones


class Server(ThreadingHTTPServer):
    """The file server and what the tests make it do: requests seen, paths whose first
    request is cut off mid-body, and whether it answers Range requests."""

    daemon_threads = True

    def __init__(self, root: Path, ranges: bool) -> None:
        handler = functools.partial(Handler, directory=str(root))
        super().__init__(("127.0.0.1", 0), handler)
        self.ranges = ranges
        self.drop_once: set[str] = set()
        self.requests: list[tuple[str, str | None, int]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/files/"

    def requested(self, path: str) -> list[tuple[str | None, int]]:
        return [(rng, status) for p, rng, status in self.requests if p.endswith(path)]


class Handler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler (no Range support), plus, when the server asks for them, a
    connection dropped halfway through a body and 206 answers to ``Range: bytes=N-``."""

    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        file = Path(self.translate_path(self.path))
        wanted = self.headers.get("Range")
        with self.server.lock:
            dropped = path in self.server.drop_once
            self.server.drop_once.discard(path)
        if dropped:
            self._record(path, wanted, 200)
            return self._drop_halfway(file.read_bytes())
        if self.server.ranges and wanted and file.is_file():
            return self._send_range(path, file.read_bytes(), wanted)
        self._record(path, wanted, 200 if file.is_file() else 404)
        super().do_GET()

    def _record(self, path: str, wanted: str | None, status: int) -> None:
        with self.server.lock:
            self.server.requests.append((path, wanted, status))

    def _drop_halfway(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def _send_range(self, path: str, body: bytes, wanted: str) -> None:
        start = int(wanted.removeprefix("bytes=").split("-")[0])
        if start >= len(body):
            self._record(path, wanted, 416)
            self.send_error(416)
            return
        self._record(path, wanted, 206)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])


# --------------------------------------------------------------------------------------------
# The server's files and a mirror of the same files
# --------------------------------------------------------------------------------------------


def _subset() -> dict[str, list[str]]:
    """Fixture paths (relative to the fixture mirror) of each source served."""
    listed = sorted(ph.read_manifest(FIXTURE / ph.MANIFEST_NAME))
    chosen = {}
    for name, spec in SPECS.items():
        files = [p for p in listed if p.startswith(spec.mirror_subpath + "/")]
        chosen[name] = files[:SEPSIS_FILES] if name == "sepsis2019" else files
    return chosen


def _server_path(source: str, mirror_path: str) -> str:
    """Where a mirror file lives in its project (mirror_subpath ↔ pn_subdir)."""
    spec = SPECS[source]
    return spec.pn_subdir + mirror_path.removeprefix(spec.mirror_subpath)


def _write_sums(project_dir: Path) -> None:
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(project_dir).as_posix()}"
        for p in sorted(project_dir.rglob("*"))
        if p.is_file()
    ]
    (project_dir / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")


def build_server_root(root: Path) -> Path:
    """``root/files/<project>/<version>/…`` with SHA256SUMS.txt, as on physionet.org, plus a
    file of each project that no source selects (it must not be downloaded)."""
    for source, paths in _subset().items():
        spec = SPECS[source]
        project_dir = root / "files" / spec.pn_project / download_settings(source).version
        for path in paths:
            target = project_dir / _server_path(source, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(FIXTURE / path, target)
        (project_dir / "RECORDS").write_text("not selected by any source\n")
        _write_sums(project_dir)
    return root


def build_mirror(root: Path) -> Path:
    """A local mirror (MANIFEST.sha256 layout) of exactly the files the server holds."""
    lines = []
    for paths in _subset().values():
        for path in paths:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(FIXTURE / path, root / path)
            lines.append(f"{hashlib.sha256((root / path).read_bytes()).hexdigest()}  {path}")
    (root / ph.MANIFEST_NAME).write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A running file server without Range support (like http.server); no mirror set."""
    monkeypatch.delenv(ph.MIRROR_ENV, raising=False)
    monkeypatch.delenv(ph.OFFLINE_ENV, raising=False)
    yield from _serve(build_server_root(tmp_path / "server"), ranges=False)


@pytest.fixture
def served_with_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.delenv(ph.MIRROR_ENV, raising=False)
    yield from _serve(build_server_root(tmp_path / "server"), ranges=True)


def _serve(root: Path, ranges: bool) -> Iterator[Server]:
    server = Server(root, ranges)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _settings(server: Server, source: str, retries: int = 2) -> DownloadSettings:
    version = download_settings(source).version
    return DownloadSettings(server.base_url, version, workers=4, timeout_s=10.0, retries=retries)


def _raw_dir(out: Path, source: str) -> Path:
    spec = SPECS[source]
    return out / "raw" / spec.pn_project / download_settings(source).version


def _files_under(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------
# (a) a download converts to exactly what the mirror converts to
# --------------------------------------------------------------------------------------------


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), ph.MIRROR_ENV: ""}
    return subprocess.run(
        [sys.executable, "-m", "vitalstream", "physionet", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_cli_download_converts_to_what_the_mirror_converts_to(served, tmp_path):
    out = tmp_path / "downloaded" / "sepsis2019"
    fetch = _cli("sepsis2019", "--base-url", served.base_url, "--out", str(out), "--step", "fetch")
    assert fetch.returncode == 0, fetch.stderr
    assert json.loads(fetch.stdout) == {
        "source": "sepsis2019",
        "origin": "download",
        "files": SEPSIS_FILES,
        "seconds": json.loads(fetch.stdout)["seconds"],
    }
    progress = [
        json.loads(line.removeprefix("PROGRESS "))
        for line in fetch.stderr.splitlines()
        if line.startswith("PROGRESS ")
    ]
    last = {k: progress[-1][k] for k in ("task", "done", "total", "unit", "source")}
    assert last == {
        "task": "download",
        "done": SEPSIS_FILES,
        "total": SEPSIS_FILES,
        "unit": "files",
        "source": "sepsis2019",
    }
    assert f"{SEPSIS_FILES}/{SEPSIS_FILES} files" in fetch.stderr
    convert = _cli("sepsis2019", "--out", str(out), "--step", "convert")
    assert convert.returncode == 0, convert.stderr

    mirrored = tmp_path / "mirrored" / "sepsis2019"
    ph.fetch("sepsis2019", build_mirror(tmp_path / "mirror"), mirrored, offline=True)
    ph.convert("sepsis2019", mirrored / "fetched.json", mirrored)
    _assert_same_conversion(out, mirrored)
    # Only the selected files came (not training_setB, not RECORDS), none left as .part.
    raw = _raw_dir(out, "sepsis2019")
    served_psv = {_server_path("sepsis2019", p) for p in _subset()["sepsis2019"]}
    assert _files_under(raw) == served_psv | {"SHA256SUMS.txt"}


@pytest.mark.parametrize("source", ["mimic2_numerics", "bidmc"])
def test_fetch_downloads_each_source_like_its_mirror(served, tmp_path, source):
    out, mirrored = tmp_path / "downloaded", tmp_path / "mirrored"
    record = ph.fetch(source, None, out, offline=False, download=_settings(served, source))
    assert record["origin"] == "download" and record["files"] == len(_subset()[source])
    assert record["url"] == f"{served.base_url}{SPECS[source].pn_project}/" + (
        download_settings(source).version + "/"
    )
    ph.convert(source, out / "fetched.json", out)
    ph.fetch(source, build_mirror(tmp_path / "mirror"), mirrored, offline=True)
    ph.convert(source, mirrored / "fetched.json", mirrored)
    _assert_same_conversion(out, mirrored)


def _assert_same_conversion(downloaded: Path, mirrored: Path) -> None:
    tables = sorted(p.name for p in mirrored.glob("*.parquet"))
    assert tables and tables == sorted(p.name for p in downloaded.glob("*.parquet"))
    for name in tables:
        assert (downloaded / name).read_bytes() == (mirrored / name).read_bytes(), name
    a = json.loads((downloaded / "summary.json").read_text())
    b = json.loads((mirrored / "summary.json").read_text())
    assert (a.pop("origin"), b.pop("origin")) == ("download", "mirror")
    assert a == b and a["patients"] > 0


# --------------------------------------------------------------------------------------------
# (b) a corrupted file is refused and named
# --------------------------------------------------------------------------------------------


def test_a_file_changed_on_the_server_is_refused_naming_it(served, tmp_path):
    victim = sorted(_subset()["bidmc"])[1]
    on_server = (
        tmp_path / "server" / "files" / "bidmc" / download_settings("bidmc").version
    ) / _server_path("bidmc", victim)
    data = bytearray(on_server.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size: only the hash can tell
    on_server.write_bytes(bytes(data))
    out = tmp_path / "out"
    name = _server_path("bidmc", victim)
    with pytest.raises(ph.FetchError) as caught:
        ph.fetch("bidmc", None, out, offline=False, download=_settings(served, "bidmc"))
    message = str(caught.value)
    assert name in message and "sha256" in message and "refused" in message
    assert "physionet.base_url" in message and "physionet.versions.bidmc" in message
    target = _raw_dir(out, "bidmc") / name
    assert not target.exists() and not target.with_name(target.name + ".part").exists()
    assert not (out / "fetched.json").exists()


# --------------------------------------------------------------------------------------------
# (c) interrupted transfers end in verified files
# --------------------------------------------------------------------------------------------


def test_a_connection_dropped_mid_file_is_retried_to_a_verified_file(served, tmp_path):
    spec = SPECS["mimic2_numerics"]
    version = download_settings("mimic2_numerics").version
    dat = "matched/s00001/3975656n.dat"  # the largest record (1,936 samples)
    url_path = f"/files/{spec.pn_project}/{version}/{dat}"
    served.drop_once.add(url_path)
    out = tmp_path / "out"
    settings = _settings(served, "mimic2_numerics")
    record = ph.fetch("mimic2_numerics", None, out, offline=False, download=settings)
    assert record["files"] == 6
    assert [status for _, status in served.requested(url_path)] == [200, 200]
    raw = _raw_dir(out, "mimic2_numerics")
    assert not list(raw.rglob("*.part"))
    expected = ph.read_manifest(FIXTURE / ph.MANIFEST_NAME)
    mirror_path = spec.mirror_subpath + dat.removeprefix(spec.pn_subdir)
    assert hashlib.sha256((raw / dat).read_bytes()).hexdigest() == expected[mirror_path]


def _leave_part(out: Path, source: str, relpath: str, prefix: bytes) -> Path:
    """A ``.part`` as a killed run leaves it (the project's SHA256SUMS.txt already fetched)."""
    target = _raw_dir(out, source) / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.with_name(target.name + ".part")).write_bytes(prefix)
    return target


def test_a_part_left_by_a_killed_run_is_restarted_without_range_support(served, tmp_path):
    psv = _server_path("sepsis2019", _subset()["sepsis2019"][3])
    whole = (FIXTURE / _subset()["sepsis2019"][3]).read_bytes()
    out = tmp_path / "out"
    target = _leave_part(out, "sepsis2019", psv, whole[: len(whole) // 2])
    settings = _settings(served, "sepsis2019")
    ph.fetch("sepsis2019", None, out, offline=False, download=settings)
    assert target.read_bytes() == whole
    (ranged, status), = served.requested(psv)  # fmt: skip
    assert ranged == f"bytes={len(whole) // 2}-" and status == 200  # ignored: restarted
    # A second run finds every file verified: it asks the server for nothing.
    before = len(served.requests)
    ph.fetch("sepsis2019", None, out, offline=False, download=settings)
    assert len(served.requests) == before


def test_a_part_is_resumed_with_range_and_a_bad_prefix_is_restarted(served_with_ranges, tmp_path):
    server, out = served_with_ranges, tmp_path / "out"
    paths = _subset()["sepsis2019"]
    good, bad = _server_path("sepsis2019", paths[4]), _server_path("sepsis2019", paths[5])
    good_bytes, bad_bytes = (FIXTURE / paths[4]).read_bytes(), (FIXTURE / paths[5]).read_bytes()
    half = len(good_bytes) // 2
    _leave_part(out, "sepsis2019", good, good_bytes[:half])
    _leave_part(out, "sepsis2019", bad, b"X" * 100)  # wrong bytes: the resumed file fails
    ph.fetch("sepsis2019", None, out, offline=False, download=_settings(server, "sepsis2019"))
    raw = _raw_dir(out, "sepsis2019")
    assert (raw / good).read_bytes() == good_bytes and (raw / bad).read_bytes() == bad_bytes
    assert server.requested(good) == [(f"bytes={half}-", 206)]
    assert server.requested(bad) == [("bytes=100-", 206), (None, 200)]
    assert not list(raw.rglob("*.part"))
