"""Where the PhysioNet data comes from: the sources, the local mirror, its manifest, downloads.

What it is for: the catalogue of the three PhysioNet sources (:data:`SPECS`: where each lives in
the mirror and on physionet.org, and how its rows are tagged) and :func:`fetch`, the one place
that decides where a source's files come from: the local mirror (for offline machines;
``physionet.mirror`` in the config, null by default, overridden by
``$VITALSTREAM_PHYSIONET_MIRROR`` through :func:`resolve_mirror`) checked against its
``MANIFEST.sha256``, else a download of the source's pinned version (``physionet.versions``,
from ``physionet.base_url``; :mod:`vitalstream.data.download`) checked against the project's
``SHA256SUMS.txt``. What fetch decided is written to ``fetched.json`` for the converter to read.

Not for: reading the files (:mod:`vitalstream.data.readers`) or writing canonical tables
(:func:`vitalstream.data.physionet.convert`); nothing here parses a record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitalstream.data.download import (
    DownloadError,
    DownloadSettings,
    download_project,
    read_sums,
    sha256_file,
)

SOURCES: tuple[str, ...] = ("sepsis2019", "mimic2_numerics", "bidmc")
MANIFEST_NAME = "MANIFEST.sha256"
MIRROR_ENV = "VITALSTREAM_PHYSIONET_MIRROR"
OFFLINE_ENV = "VITALSTREAM_OFFLINE"
MIRROR_CONFIG_KEY = "physionet.mirror"
BASE_URL_CONFIG_KEY = "physionet.base_url"
VERSIONS_CONFIG_KEY = "physionet.versions"


class ManifestError(RuntimeError):
    """Files are missing from a mirror or differ from the hashes its manifest promises."""


class FetchError(RuntimeError):
    """A source is neither in the local mirror nor downloadable."""


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """Where one source lives in the mirror and on physionet.org, and how its rows are tagged.

    ``mirror_subpath`` is the directory the reader reads, relative to the mirror root (and the
    prefix of its files in ``MANIFEST.sha256``). Online, ``pn_project`` is the PhysioNet project
    and ``pn_subdir`` the same directory inside it; ``pn_files`` lists files explicitly when the
    project is too large to take whole folders, otherwise the project's ``SHA256SUMS.txt``
    entries under ``pn_subdir`` ending in one of ``pn_suffixes`` are downloaded.
    """

    name: str
    mirror_subpath: str
    device_id: str
    label_source: str
    pn_project: str
    pn_subdir: str
    pn_suffixes: tuple[str, ...] = ()
    pn_files: tuple[str, ...] = ()


SPECS: dict[str, SourceSpec] = {
    "sepsis2019": SourceSpec(
        "sepsis2019",
        "sepsis2019/training_setA",
        "physionet2019",
        "physionet2019",
        "challenge-2019",
        "training/training_setA",
        pn_suffixes=(".psv",),
    ),
    "mimic2_numerics": SourceSpec(
        "mimic2_numerics",
        "wfdb/mimic2wdb_matched",
        "mimic2wdb",
        "mimic2",
        "mimic2wdb",
        "matched",
        # The three numerics records of the mirror (the matched subset is far too big to take).
        pn_files=(
            "matched/s00001/s00001-2896-10-10-00-31n.hea",
            "matched/s00001/3975656n.dat",
            "matched/s00001/s00001-2896-10-09-01-56n.hea",
            "matched/s00001/3248903n.dat",
            "matched/s25047/s25047-2704-05-04-10-44n.hea",
            "matched/s25047/3234460n.dat",
        ),
    ),
    "bidmc": SourceSpec(
        "bidmc",
        "bidmc_csv/bidmc_csv",
        "bidmc",
        "bidmc",
        "bidmc",
        "bidmc_csv",
        pn_suffixes=("_Numerics.csv", "_Fix.txt"),
    ),
}
MIRROR_SUBPATHS: dict[str, str] = {name: spec.mirror_subpath for name, spec in SPECS.items()}


def source_spec(source: str) -> SourceSpec:
    """The spec of ``source``; a ValueError lists the known names (typos fail loudly)."""
    try:
        return SPECS[source]
    except KeyError:
        raise ValueError(
            f"unknown PhysioNet source {source!r}; known: {', '.join(SOURCES)}"
        ) from None


def resolve_mirror(configured: str | Path | None) -> Path | None:
    """The mirror to use: ``$VITALSTREAM_PHYSIONET_MIRROR`` if set, else ``configured``.

    The one place the override happens, so CI (which sets the variable) and the workflow agree.
    Relative paths are taken from the working directory (the repository root under Snakemake)
    and returned absolute, because ``fetched.json`` must still point there from anywhere.
    """
    value = os.environ.get(MIRROR_ENV) or configured
    if value is None or str(value) == "":
        return None
    return Path(value).expanduser().resolve()


def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, str]:
    """``relative path → sha256`` from a ``sha256sum`` file (``MANIFEST.sha256``, SHA256SUMS):
    the downloader's reader, its error as a :class:`ManifestError`."""
    try:
        return read_sums(Path(path))
    except DownloadError as exc:
        raise ManifestError(str(exc)) from None


def _listing(kind: str, names: Sequence[str], shown: int = 5) -> str:
    more = f" … (+{len(names) - shown} more)" if len(names) > shown else ""
    return f"{kind} ({len(names)}): {', '.join(names[:shown])}{more}"


def verify_manifest(
    mirror: Path, relpaths: Iterable[str] | None = None, manifest: Path | None = None
) -> int:
    """Check files of ``mirror`` against its manifest; return how many were checked.

    ``relpaths`` (relative to the mirror) limits the check, e.g. to one source; by default
    every listed file is checked. A requested path the manifest does not list counts as a
    failure too, since nothing vouches for it. Hashing runs in a few threads (hashlib releases
    the GIL), which keeps 20k small files to a couple of seconds. Raises :class:`ManifestError`
    naming the first few missing, unlisted and mismatched files and their counts.
    """
    mirror = Path(mirror)
    manifest = Path(manifest) if manifest is not None else mirror / MANIFEST_NAME
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: manifest not found")
    entries = read_manifest(manifest)
    wanted = sorted(entries) if relpaths is None else sorted(set(relpaths))
    unlisted = [p for p in wanted if p not in entries]
    listed = [p for p in wanted if p in entries]
    with ThreadPoolExecutor(max_workers=4) as pool:
        digests = list(pool.map(sha256_file, (mirror / p for p in listed), chunksize=64))
    missing = [p for p, d in zip(listed, digests, strict=True) if d is None]
    mismatched = [
        p for p, d in zip(listed, digests, strict=True) if d is not None and d != entries[p]
    ]
    if missing or unlisted or mismatched:
        parts = [
            _listing(kind, names)
            for kind, names in (
                ("missing", missing),
                ("not in the manifest", unlisted),
                ("sha256 mismatch", mismatched),
            )
            if names
        ]
        bad = len(missing) + len(unlisted) + len(mismatched)
        raise ManifestError(
            f"{mirror}: {bad} of {len(wanted)} files fail {manifest.name}: " + "; ".join(parts)
        )
    return len(wanted)


# --------------------------------------------------------------------------------------------
# Fetch
# --------------------------------------------------------------------------------------------


def download_settings(source: str, physionet: Any = None) -> DownloadSettings:
    """The download settings of ``source`` from a ``physionet`` block, by default the one of
    config/config.yaml (a caller without the workflow's settings file gets the pinned versions
    and the base URL the paper uses)."""
    if physionet is None:
        from vitalstream.core.config import load_config  # lazy: jsonschema, only when needed

        physionet = load_config().get("physionet", {})
    return DownloadSettings.from_config(physionet, source)


def _download(spec: SourceSpec, raw_dir: Path, settings: DownloadSettings) -> tuple[Path, int]:
    """Download one source's files of its pinned version into ``raw_dir/<project>/<version>/``
    (the server's own layout), each verified against the project's SHA256SUMS.txt."""

    def select(sums: Mapping[str, str]) -> list[str]:
        if spec.pn_files:
            return list(spec.pn_files)
        prefix = spec.pn_subdir + "/"
        return [n for n in sums if n.startswith(prefix) and n.endswith(spec.pn_suffixes)]

    dest = raw_dir / spec.pn_project / settings.version
    files = download_project(spec.pn_project, settings, dest, select, label=spec.name)
    return dest / spec.pn_subdir, len(files)


def _fetch_error(spec: SourceSpec, mirror: Path | None, why: str) -> FetchError:
    where = f"the mirror {mirror} does not exist" if mirror else "no mirror is configured"
    return FetchError(
        f"no data for PhysioNet source {spec.name!r}: {where}, and {why}. Point the config key "
        f"{MIRROR_CONFIG_KEY} (or ${MIRROR_ENV}) at a local mirror laid out as "
        f"<mirror>/{spec.mirror_subpath}/… with <mirror>/{MANIFEST_NAME} listing its files "
        "(sha256sum format, paths relative to the mirror); see PROVENANCE.md of the shared copy."
    )


def _download_error(spec: SourceSpec, settings: DownloadSettings, exc: Exception) -> FetchError:
    return FetchError(
        f"PhysioNet source {spec.name!r}: the download of {spec.pn_project} "
        f"{settings.version} from {settings.project_url(spec.pn_project)} failed: {exc}. "
        f"Check the config keys {BASE_URL_CONFIG_KEY} and {VERSIONS_CONFIG_KEY}.{spec.name} "
        f"(or --base-url), or point {MIRROR_CONFIG_KEY} (or ${MIRROR_ENV}) at a local mirror."
    )


def fetch(
    source: str,
    mirror: Path | None,
    out_dir: Path,
    offline: bool | None = None,
    download: DownloadSettings | None = None,
) -> dict[str, Any]:
    """Decide where ``source`` comes from, check it, and record it in ``out_dir/fetched.json``.

    An existing ``mirror`` wins (offline machines); its files for the source are verified
    against ``MANIFEST.sha256``. Otherwise the source's pinned version is downloaded (``download``,
    default: config/config.yaml's) into ``out_dir/raw/<project>/<version>/`` unless ``offline``
    (default: ``$VITALSTREAM_OFFLINE``) forbids it; a rerun skips files already verified and
    resumes partial ones. If neither works, :class:`FetchError` names the config keys to check.
    """
    spec = source_spec(source)
    out_dir = Path(out_dir)
    if mirror is not None and Path(mirror).is_dir():
        mirror = Path(mirror).resolve()
        manifest = mirror / MANIFEST_NAME
        if not manifest.is_file():
            raise ManifestError(f"{manifest}: not found; a mirror must list its files in it")
        prefix = spec.mirror_subpath + "/"
        relpaths = [p for p in read_manifest(manifest) if p.startswith(prefix)]
        if not relpaths:
            raise FetchError(
                f"the mirror {mirror} does not hold PhysioNet source {source!r}: its "
                f"{MANIFEST_NAME} lists nothing under {prefix}. Point the config key "
                f"{MIRROR_CONFIG_KEY} (or ${MIRROR_ENV}) at a mirror that does."
            )
        record = {
            "origin": "mirror",
            "path": str(mirror / spec.mirror_subpath),
            "files": verify_manifest(mirror, relpaths),
        }
    elif _offline(offline):
        raise _fetch_error(spec, mirror, f"downloads are disabled ({OFFLINE_ENV}=1)")
    else:
        settings = download or download_settings(source)
        try:
            path, files = _download(spec, out_dir / "raw", settings)
        except DownloadError as exc:
            raise _download_error(spec, settings, exc) from exc
        record = {
            "origin": "download",
            "url": settings.project_url(spec.pn_project),
            "path": str(path.absolute()),
            "files": files,
        }
    record = {"source": source, **record, "verified": True}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fetched.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
