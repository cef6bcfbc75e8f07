"""Downloads of pinned PhysioNet project versions: parallel, verified, resumable.

What it is for: :func:`download_project`, which fetches the files of one PhysioNet project
version from a file server laid out like physionet.org's (``<base>/<project>/<version>/<path>``,
with ``<base>/<project>/<version>/SHA256SUMS.txt``) into a local folder of the same layout, and
:class:`DownloadSettings`, the ``physionet`` configuration a download needs, parsed once. Every
file is checked against ``SHA256SUMS.txt`` before it gets its name: it is written to
``<name>.part`` and renamed only when its sha256 matches, so an interrupted run leaves verified
files and ``.part`` files only, and the next run skips the former and resumes (HTTP ``Range``)
or restarts the latter. Transient failures (refused or dropped connections, timeouts, HTTP
5xx/429) are retried with bounded exponential backoff; a file whose bytes do not match is
refused, named, and not kept. Progress goes to stderr, for people and as ``PROGRESS {json}``
lines for machines.

Not for: deciding between the local mirror and a download (:func:`vitalstream.data.mirror.fetch`),
or knowing which files a source needs (its :class:`~vitalstream.data.mirror.SourceSpec`).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TextIO, TypeVar

from vitalstream.core import progress
from vitalstream.core.settings import (
    SettingsError,
    build,
    parse_integer,
    parse_mapping,
    parse_seconds,
    parse_string,
    schema_node,
)

SUMS_NAME = "SHA256SUMS.txt"
PART_SUFFIX = ".part"
CHUNK_BYTES = 1 << 16
# Human progress and PROGRESS lines at most this often (plus one at the end): 20k small files
# must not flood a Snakemake log.
PROGRESS_INTERVAL_S = 2.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
USER_AGENT = "vitalstream-physionet/1 (+urllib)"
# HTTP answers worth another try: the server or a proxy is busy, not the request wrong.
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
# Errors of a connection rather than of the request: refused, reset, dropped, timed out.
TRANSIENT_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError)


T = TypeVar("T")


class DownloadError(RuntimeError):
    """A file could not be downloaded (HTTP error, or still failing after the retries)."""


class CorruptFileError(DownloadError):
    """A downloaded file's sha256 differs from the project's SHA256SUMS.txt."""


class _TransientError(Exception):
    """A failure another attempt may not have (the message says what happened)."""


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadSettings:
    """Where and how to download one source (config ``physionet``: ``base_url``,
    ``versions/<source>``, ``download/{workers,timeout_s,retries}``)."""

    base_url: str
    version: str
    workers: int
    timeout_s: float
    retries: int

    @classmethod
    def from_config(cls, physionet: Any, source: str) -> DownloadSettings:
        """The settings of ``source`` from the ``physionet`` block (validated by the schema);
        a missing version is a SettingsError naming ``physionet/versions/<source>``."""
        block = parse_mapping(physionet, "physionet")
        versions = parse_mapping(block.get("versions", {}), "physionet/versions")
        if source not in versions:
            raise SettingsError(f"physionet/versions/{source}: missing (a pinned version)")
        tunables = {"workers": parse_integer, "timeout_s": parse_seconds, "retries": parse_integer}
        return build(
            cls,
            block.get("download", {}),
            "physionet/download",
            tunables,
            base_url=parse_string(block.get("base_url"), "physionet/base_url"),
            version=parse_string(versions[source], f"physionet/versions/{source}"),
        )

    def project_url(self, project: str) -> str:
        """``<base>/<project>/<version>/``, the folder SHA256SUMS.txt and the files are in."""
        return f"{self.base_url.rstrip('/')}/{project}/{self.version}/"


def read_settings_file(path: Path, source: str) -> DownloadSettings:
    """The settings of ``source`` from a JSON file holding (part of) the ``physionet`` block,
    checked against the schema's ``physionet`` node: how the workflow hands them over."""
    import jsonschema  # lazy: only a command given a settings file needs it

    try:
        block = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"argument --config-file: cannot read {path}: {exc}") from None
    validator = jsonschema.Draft202012Validator(schema_node("physionet"))
    errors = sorted(validator.iter_errors(block), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path))
        raise SettingsError(
            f"argument --config-file: {path}: physionet/{where}: {errors[0].message}"
        )
    return DownloadSettings.from_config(block, source)


def http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (argparse type of ``--base-url``)."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"must be an http(s):// URL with a host, got {text}")
    return text


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------


class DownloadProgress:
    """Files and bytes done, shared by the download threads. Reported on stderr at most every
    PROGRESS_INTERVAL_S (and at the end) twice: a ``PROGRESS {json}`` line for machines
    (:mod:`vitalstream.core.progress`) and a sentence for people."""

    def __init__(self, label: str, total_files: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.files = 0
        self.skipped = 0
        self.bytes = 0
        self._stream = stream
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._lines = progress.Progress(
            "download", total_files, "files", every_s=PROGRESS_INTERVAL_S, stream=stream
        )

    def file_done(self, size: int, skipped: bool = False) -> None:
        with self._lock:
            self.files += 1
            self.skipped += skipped
            self.bytes += 0 if skipped else size
            if self._lines.update(self.files, source=self.label, bytes=self.bytes):
                self._say()

    def finish(self) -> None:
        """Report the last state if the rate limit held it back (a run that failed part-way)."""
        with self._lock:
            if self._lines.finish():
                self._say()

    def _say(self) -> None:
        kept = f", {self.skipped} already verified" if self.skipped else ""
        print(
            f"{self.label}: {self.files}/{self._lines.total} files{kept}, "
            f"{self.bytes / 1e6:.1f} MB downloaded in {time.monotonic() - self._t0:.0f} s",
            file=self._stream or sys.stderr,
            flush=True,
        )


# --------------------------------------------------------------------------------------------
# One file
# --------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str | None:
    """The file's sha256 (None if it does not exist), read in chunks: some files are large."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK_BYTES):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _copy(response: Any, fh: BinaryIO) -> int:
    received = 0
    while chunk := response.read(CHUNK_BYTES):
        fh.write(chunk)
        received += len(chunk)
    return received


def _open(url: str, offset: int, timeout_s: float) -> Any:
    """The response for ``url`` from byte ``offset`` (a Range request when resuming); HTTP
    errors worth retrying become :class:`_TransientError`, the others a DownloadError."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout_s
        )
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416:  # the .part is not a prefix the server knows: start again
            raise _TransientError(f"HTTP 416 for a resume from byte {offset}") from exc
        if exc.code in TRANSIENT_HTTP:
            raise _TransientError(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}") from exc
    except TRANSIENT_ERRORS as exc:
        raise _TransientError(f"{type(exc).__name__}: {exc}") from exc


def transfer(url: str, part: Path, timeout_s: float) -> bool:
    """Write ``url`` into ``part``, resuming after its current bytes when the server honours
    Range (206 from that offset), else from the start; return whether it resumed. A body shorter
    than its Content-Length (a dropped connection) is :class:`_TransientError`, the bytes kept."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset, timeout_s)
    with response:
        content_range = response.headers.get("Content-Range", "")
        resumed = bool(offset) and response.status == 206
        resumed = resumed and content_range.startswith(f"bytes {offset}-")
        length = response.headers.get("Content-Length")
        try:
            with part.open("ab" if resumed else "wb") as fh:
                received = _copy(response, fh)
        except TRANSIENT_ERRORS as exc:
            raise _TransientError(f"{type(exc).__name__} after a partial body: {exc}") from exc
    if length is not None and received < int(length):
        raise _TransientError(f"connection closed after {received} of {length} bytes")
    return resumed


@dataclass(frozen=True)
class FileJob:
    """One file of a project: where it comes from, where it goes, what it must hash to."""

    relpath: str
    url: str
    target: Path
    sha256: str


def retrying(url: str, retries: int, attempt: Callable[[], T]) -> T:
    """``attempt()``, tried again after a transient failure up to ``retries`` times with
    exponential backoff (bounded: a dead server costs seconds, not hours)."""
    for number in range(retries + 1):
        try:
            return attempt()
        except _TransientError as exc:
            if number == retries:
                raise DownloadError(
                    f"{url}: still failing after {retries + 1} attempts: {exc}"
                ) from exc
            time.sleep(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**number))
    raise AssertionError("unreachable: the last attempt returns or raises")


def fetch_file(job: FileJob, timeout_s: float, retries: int) -> bool:
    """Make ``job.target`` a verified copy; return False if it already was one (skipped).

    ``<target>.part`` is resumed or restarted; the rename happens only after the sha256 check.
    A mismatch after a resume starts the file once more from zero (the kept prefix may have
    been bad); a mismatch of a whole fresh copy is :class:`CorruptFileError`, and its bytes
    are deleted.
    """
    if job.target.exists():
        if sha256_file(job.target) == job.sha256:
            return False
        job.target.unlink()  # a named file that fails its hash is not trusted, nor kept
    part = job.target.with_name(job.target.name + PART_SUFFIX)
    part.parent.mkdir(parents=True, exist_ok=True)
    while True:
        resumed = retrying(job.url, retries, lambda: transfer(job.url, part, timeout_s))
        digest = sha256_file(part)
        if digest == job.sha256:
            part.replace(job.target)
            return True
        part.unlink()
        if not resumed:
            raise CorruptFileError(
                f"{job.relpath}: sha256 {digest} differs from {SUMS_NAME} ({job.sha256}) "
                f"for {job.url}; the file was refused and not kept"
            )


# --------------------------------------------------------------------------------------------
# A project
# --------------------------------------------------------------------------------------------


def read_sums(path: Path) -> dict[str, str]:
    """``path → sha256`` of a SHA256SUMS.txt (a ``./`` prefix dropped); a line that is not
    ``<64 hex>  <path>`` is a DownloadError naming the line."""
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.lstrip(" *").removeprefix("./")
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest) or not name:
            raise DownloadError(f"{path}:{number}: not a 'sha256  path' line: {line!r}")
        entries[name] = digest
    return entries


def _safe_relpath(name: str, where: str) -> str:
    """``name`` if it stays inside the download folder (a listing is remote input)."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        raise DownloadError(f"{where}: refusing the path {name!r} (outside the project)")
    return name


def fetch_sums(project_url: str, dest: Path, settings: DownloadSettings) -> dict[str, str]:
    """The project's SHA256SUMS.txt, kept in ``dest`` (a pinned version never changes, so a
    previous run's copy is reused) and parsed."""
    sums = dest / SUMS_NAME
    if not sums.is_file():
        part = sums.with_name(SUMS_NAME + PART_SUFFIX)
        dest.mkdir(parents=True, exist_ok=True)
        url = project_url + SUMS_NAME
        retrying(url, settings.retries, lambda: transfer(url, part, settings.timeout_s))
        part.replace(sums)
    return read_sums(sums)


def _run_jobs(jobs: list[FileJob], settings: DownloadSettings, tracker: DownloadProgress) -> None:
    """Fetch ``jobs`` in a thread pool; after the first failure the files not yet started are
    left alone (a dead server is not asked 20,000 times). Raises every failure, corrupt files
    first and named; the verified files stay for the next run."""
    failed: list[DownloadError] = []
    stop = threading.Event()

    def one(job: FileJob) -> None:
        if stop.is_set():
            return
        try:
            fresh = fetch_file(job, settings.timeout_s, settings.retries)
        except DownloadError as exc:
            failed.append(exc)
            stop.set()
            return
        tracker.file_done(job.target.stat().st_size, skipped=not fresh)

    with ThreadPoolExecutor(max_workers=settings.workers) as pool:
        list(pool.map(one, jobs))
    tracker.finish()
    if failed:
        failed.sort(key=lambda exc: not isinstance(exc, CorruptFileError))
        more = f" (and {len(failed) - 1} more failures)" if len(failed) > 1 else ""
        error = CorruptFileError if isinstance(failed[0], CorruptFileError) else DownloadError
        raise error(f"{failed[0]}{more}") from failed[0]


def download_project(
    project: str,
    settings: DownloadSettings,
    dest: Path,
    select: Callable[[Mapping[str, str]], list[str]],
    label: str = "download",
) -> list[str]:
    """Download the files ``select`` picks from the project's SHA256SUMS.txt into ``dest``.

    ``dest`` mirrors ``<base>/<project>/<version>/``; returns the relative paths, all verified.
    A picked path the listing does not have is a DownloadError (nothing would vouch for it).
    """
    project_url = settings.project_url(project)
    sums = fetch_sums(project_url, dest, settings)
    wanted = sorted(select(sums))
    unlisted = [name for name in wanted if name not in sums]
    if unlisted:
        raise DownloadError(f"{project_url}{SUMS_NAME} does not list {', '.join(unlisted[:5])}")
    if not wanted:
        raise DownloadError(f"{project_url}{SUMS_NAME} lists none of the files this source needs")
    jobs = [
        FileJob(
            relpath=_safe_relpath(name, project_url + SUMS_NAME),
            url=project_url + urllib.parse.quote(name),
            target=dest / name,
            sha256=sums[name],
        )
        for name in wanted
    ]
    _run_jobs(jobs, settings, DownloadProgress(label, len(jobs)))
    return wanted
