"""Results archives: the small result files the paper is built from, in one ``.tar.gz``.

``archive create`` packs the files the workflow names (the inputs of the rules that make the
paper's figures, tables and macros, see workflow/rules/archive.smk) with a checksum manifest
(``SHA256SUMS``, one sha256 per file, the format of ``sha256sum -c``) and ``ARCHIVE.json``: the
git commit, machine and date the results come from, the effective configuration, and each
file's role (``input``: read by a paper rule; ``product``: what the paper rules made from them,
kept so that a rebuild can be compared with it).

``archive unpack`` verifies every checksum before anything is used and refuses an archive
whose manifest names a missing file, whose file differs from its checksum, or that holds a file
the manifest does not name; it then lays out a work directory that looks like a checkout whose
``results/`` came from the archive (sources are symlinks to this checkout), so that the same
rules rebuild the paper there without Kafka, Spark or raw data. ``archive compare`` checks the
rebuilt text products (macros, tables, macro values) byte for byte against the archived ones;
``archive rules`` prints the rules that rebuild the paper (recorded by ``create``), for
``snakemake --allowed-rules``.
``archive origin`` writes the paper's ``origin.tex`` (where its results come from): a file of
its own, so that ``macros.tex`` stays byte-identical between a build and its rebuild.

Not for: deciding which files go in (the workflow derives that from its rules) or running the
rebuild (``make paper-from-archive`` calls Snakemake).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import socket
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from vitalstream.core.cliargs import (
    existing_dir,
    existing_file,
    json_argument,
    writable_dir,
    writable_file,
)
from vitalstream.core.paths import REPO_ROOT
from vitalstream.core.values import format_value
from vitalstream.experiments import provenance

MANIFEST_NAME = "SHA256SUMS"
ORIGIN_NAME = "ARCHIVE.json"
ARCHIVED_DIR = "archived"  # the verified archive, inside a rebuild's work directory
# Sources a rebuild uses from the checkout (symlinked into the work directory).
CHECKOUT_SOURCES = ("notebooks", "paper", "scripts", "envs", "workflow", "profiles")
# Products compared after a rebuild: text whose every byte is generated deterministically.
COMPARED_SUFFIXES = (".tex", ".json")
# A guard, not a policy: a file this large is raw data, not a summary the paper needs.
MAX_FILE_BYTES = 32 * 2**20
_CHUNK = 2**20


class ArchiveError(Exception):
    """An archive that cannot be trusted or used; the message names the file and the reason."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_relative(name: str) -> str:
    """A member path that stays inside the directory it is unpacked into."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ArchiveError(f"unsafe path in archive: {name!r}")
    return str(path)


# --------------------------------------------------------------------------- origin


def git_state(repo: Path) -> dict[str, Any]:
    """HEAD of the checkout and whether any tracked file differs from it."""
    return provenance.git_commit(repo, paths=None)


def machine() -> dict[str, Any]:
    """Host name, CPU model, logical cores, memory and OS of this machine."""
    return {"hostname": socket.gethostname(), **provenance.machine()}


def origin(repo: Path) -> dict[str, Any]:
    """Where results come from: this checkout's commit, this machine, now (UTC)."""
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_state(repo),
        "machine": machine(),
    }


# --------------------------------------------------------------------------- create


def _check_files(paths: Iterable[str], root: Path) -> list[str]:
    files = sorted({_safe_relative(str(p)) for p in paths})
    missing = [p for p in files if not (root / p).is_file()]
    if missing:
        raise ArchiveError(f"cannot archive missing files: {missing[:5]} ({len(missing)} in all)")
    large = [p for p in files if (root / p).stat().st_size > MAX_FILE_BYTES]
    if large:
        raise ArchiveError(
            f"files over {MAX_FILE_BYTES // 2**20} MiB are raw data, not summaries: {large}"
        )
    return files


_RUN_DIR = re.compile(r"(results/runs/[^/]+/[^/]+/rep\d+)/")
# Products that differ between a build and its rebuild by design (origin.tex says which it is).
NOT_COMPARED = ("results/paper/origin.tex",)


def archive_files(paper_rules: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """What to archive, from the paper rules (vitalstream.paper.papermap.rule_records): their inputs
    under results/ or data/ that no paper rule makes (``inputs``), the run directories those
    come from (``runs``, for companion files) and what the paper rules made (``products``)."""
    dynamic = [rule["name"] for rule in paper_rules if rule.get("dynamic_inputs")]
    if dynamic:
        raise ArchiveError(
            f"rules {dynamic} have input functions: give them static inputs to archive them"
        )
    made = {f for rule in paper_rules for f in rule["outputs"]}
    inputs = sorted(
        {
            f
            for rule in paper_rules
            for f in rule["inputs"]["_all"]
            if f.startswith(("results/", "data/")) and f not in made
        }
    )
    runs = sorted({m.group(1) for f in inputs if (m := _RUN_DIR.match(f))})
    products = sorted(f for f in made if f not in NOT_COMPARED and not f.endswith(".ipynb"))
    return {"inputs": inputs, "runs": runs, "products": products}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
    tar.addfile(info, io.BytesIO(data))


def create(
    inputs: Iterable[str],
    products: Iterable[str],
    out: Path,
    *,
    root: Path = Path(),
    config: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Pack ``inputs`` and ``products`` (paths relative to ``root``) into ``out``; returns the
    ARCHIVE.json record. Members keep their paths, so the archive unpacks into a results tree."""
    input_files = _check_files(inputs, root)
    product_files = [p for p in _check_files(products, root) if p not in set(input_files)]
    roles = {p: "input" for p in input_files} | {p: "product" for p in product_files}
    files = sorted(roles)
    sums = {p: sha256_file(root / p) for p in files}
    record = {
        "format": 1,
        "name": out.name,
        "origin": origin(root.resolve()),
        "config": dict(config or {}),
        "files": {
            p: {"role": roles[p], "bytes": (root / p).stat().st_size, "sha256": sums[p]}
            for p in files
        },
    } | dict(extra or {})
    # Not sorted: the configuration keeps its order (the order of conditions in tables).
    meta = (json.dumps(record, indent=2) + "\n").encode()
    sums[ORIGIN_NAME] = hashlib.sha256(meta).hexdigest()
    manifest = "".join(f"{sums[p]}  {p}\n" for p in sorted(sums)).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    now = dt.datetime.now(dt.UTC).timestamp()
    with tarfile.open(partial, "w:gz") as tar:
        _add_bytes(tar, MANIFEST_NAME, manifest, now)
        _add_bytes(tar, ORIGIN_NAME, meta, now)
        for path in files:
            tar.add(root / path, arcname=path, recursive=False)
    partial.replace(out)
    return record


# --------------------------------------------------------------------------- verify


def parse_manifest(text: str) -> dict[str, str]:
    """``SHA256SUMS`` lines (``<hex>  <path>``) as {path: hex}."""
    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ArchiveError(f"{MANIFEST_NAME} line {number} is not '<sha256>  <path>': {line!r}")
        sums[_safe_relative(name)] = digest
    return sums


def verify_tree(root: Path) -> dict[str, Any]:
    """Check an unpacked archive: every file of the manifest present with its checksum, no file
    the manifest does not name, and ARCHIVE.json consistent with it. Returns ARCHIVE.json."""
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        raise ArchiveError(f"no {MANIFEST_NAME} in the archive: not a VitalStream results archive")
    sums = parse_manifest(manifest.read_text())
    problems = []
    for name, digest in sorted(sums.items()):
        path = root / name
        if not path.is_file():
            problems.append(f"missing: {name}")
        elif sha256_file(path) != digest:
            problems.append(f"checksum mismatch: {name}")
    present = {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    } - {MANIFEST_NAME}
    problems += [f"not in the manifest: {name}" for name in sorted(present - set(sums))]
    if not problems and ORIGIN_NAME not in sums:
        problems.append(f"{ORIGIN_NAME} is not in the manifest")
    if problems:
        raise ArchiveError(
            f"archive failed verification ({len(problems)} problems): " + "; ".join(problems[:10])
        )
    record = json.loads((root / ORIGIN_NAME).read_text())
    listed = set(record.get("files", {}))
    if listed != set(sums) - {ORIGIN_NAME}:
        raise ArchiveError(f"{ORIGIN_NAME} and {MANIFEST_NAME} list different files")
    return record


def extract(archive: Path, dest: Path) -> dict[str, Any]:
    """Unpack ``archive`` into the empty directory ``dest`` and verify it (see verify_tree)."""
    if not archive.is_file():
        raise ArchiveError(f"no such archive: {archive}")
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ArchiveError(f"{dest} is not empty")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                _safe_relative(member.name)
                if not (member.isfile() or member.isdir()):
                    raise ArchiveError(f"archive member is not a regular file: {member.name}")
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"cannot read {archive}: {exc}") from exc
    return verify_tree(dest)


def unpack(archive: Path, work: Path, checkout: Path) -> dict[str, Any]:
    """Verify ``archive`` and lay out ``work`` for a rebuild: ``archived/`` (the verified
    archive, untouched), ``results/`` (the archive's inputs), ``config/config.yaml`` (the
    configuration the results were made with) and symlinks to the checkout's sources."""
    if work.exists() and any(work.iterdir()):
        raise ArchiveError(f"work directory {work} is not empty; remove it or choose another")
    try:
        record = extract(archive, work / ARCHIVED_DIR)
    except ArchiveError:
        shutil.rmtree(work, ignore_errors=True)  # nothing unverified stays behind
        raise
    archived = work / ARCHIVED_DIR
    for name, spec in record["files"].items():
        if spec["role"] == "input":
            target = work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(archived / name, target)
    (work / "config").mkdir(exist_ok=True)
    (work / "config" / "config.yaml").write_text(json.dumps(record["config"], indent=2) + "\n")
    (work / "config" / "schema.yaml").symlink_to(checkout.resolve() / "config" / "schema.yaml")
    for name in CHECKOUT_SOURCES:
        if (checkout / name).exists():
            (work / name).symlink_to(checkout.resolve() / name)
    return record


def compare(work: Path) -> list[str]:
    """Archived text products that the rebuild in ``work`` did not reproduce byte for byte."""
    record = json.loads((work / ARCHIVED_DIR / ORIGIN_NAME).read_text())
    differing = []
    for name, spec in sorted(record["files"].items()):
        if spec["role"] != "product" or not name.endswith(COMPARED_SUFFIXES):
            continue
        rebuilt = work / name
        if not rebuilt.is_file():
            differing.append(f"{name} (not rebuilt)")
        elif sha256_file(rebuilt) != spec["sha256"]:
            differing.append(name)
    return differing


# --------------------------------------------------------------------------- paper


ORIGIN_MACROS: tuple[tuple[str, str, int | None], ...] = (
    ("OriginCommit", "origin.git.short", None),
    ("OriginHost", "origin.machine.hostname", None),
    ("OriginCpu", "origin.machine.cpu", None),
    ("OriginCores", "origin.machine.cores", 0),
    ("OriginMemoryGiB", "origin.machine.memory_gib", 0),
    ("OriginDate", "origin.date_utc", None),
)


def _lookup(record: Mapping[str, Any], key: str) -> Any:
    value: Any = record
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def origin_tex(record: Mapping[str, Any], archive_name: str | None) -> str:
    """``origin.tex``: where the results of this build come from (an archive, or this
    checkout's own workflow run) as macros; ``\\BuiltFromArchive`` selects the wording."""
    lines = [
        "% Generated by `python -m vitalstream archive origin` (rule write_origin_macros).",
        "% Kept out of macros.tex so that a rebuild from an archive reproduces that file exactly.",
    ]
    for name, key, decimals in ORIGIN_MACROS:
        lines.append(f"\\newcommand{{\\{name}}}{{{format_value(_lookup(record, key), decimals)}}}")
    dirty = _lookup(record, "origin.git.dirty")
    lines.append(f"\\newcommand{{\\OriginDirty}}{{{'yes' if dirty else 'no'}}}")
    name = format_value(archive_name, None) if archive_name else ""
    lines.append(f"\\newcommand{{\\OriginArchive}}{{{name}}}")
    sha = (record.get("sha256") or "")[:16]
    lines.append(f"\\newcommand{{\\OriginArchiveSha}}{{{sha}}}")
    lines.append(f"\\newcommand{{\\BuiltFromArchive}}{{{'true' if archive_name else 'false'}}}")
    return "\n".join(lines) + "\n"


def write_origin(out: Path, repo: Path, archive_dir: Path | None) -> dict[str, Any]:
    """From an unpacked archive's ARCHIVE.json, else this checkout and machine now."""
    if archive_dir is not None:
        record = json.loads((archive_dir / ORIGIN_NAME).read_text())
        record["sha256"] = hashlib.sha256((archive_dir / MANIFEST_NAME).read_bytes()).hexdigest()
        name = record.get("name", "archive")
    else:
        record, name = {"origin": origin(repo)}, None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(origin_tex(record, name))
    return record


# --------------------------------------------------------------------------- CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "archive", help="results archive: create, unpack (verified), compare, origin macros"
    )
    commands = parser.add_subparsers(dest="archive_command", required=True, metavar="STEP")

    make = commands.add_parser("create", help="pack result files with a sha256 manifest")
    make.add_argument("--inputs", nargs="*", default=[], help="files the paper rules read")
    make.add_argument("--products", nargs="*", default=[], help="files the paper rules made")
    make.add_argument("--run-dirs", nargs="*", default=[], help="runs the inputs come from")
    make.add_argument(
        "--companions", nargs="*", default=[], help="files of each run to add when present"
    )
    make.add_argument(
        "--config",
        type=json_argument,
        default="{}",
        help="the effective configuration: JSON, or @FILE",
    )
    make.add_argument("--rules", nargs="*", default=[], help="the rules that rebuild the paper")
    make.add_argument("--out", type=writable_file, required=True)
    make.set_defaults(func=_cli_create)

    unpacked = commands.add_parser("unpack", help="verify an archive and lay out a work dir")
    unpacked.add_argument("archive", type=existing_file)
    unpacked.add_argument("--work", type=writable_dir, required=True)
    unpacked.add_argument("--checkout", type=Path, default=Path())
    unpacked.set_defaults(func=_cli_unpack)

    check = commands.add_parser("verify", help="verify an archive's checksums (no rebuild)")
    check.add_argument("archive", type=existing_file)
    check.set_defaults(func=_cli_verify)

    same = commands.add_parser("compare", help="rebuilt text products vs the archived ones")
    same.add_argument("--work", type=_cli_unpacked_work, required=True)
    same.set_defaults(func=_cli_compare)

    allowed = commands.add_parser(
        "rules", help="the rules that rebuild the paper (for snakemake --allowed-rules)"
    )
    allowed.add_argument("--work", type=_cli_unpacked_work, required=True)
    allowed.set_defaults(func=_cli_rules)

    where = commands.add_parser("origin", help="write origin.tex (where the results come from)")
    where.add_argument("--out", type=writable_file, required=True)
    where.add_argument(
        "--archive-dir", type=existing_dir, help="an unpacked archive (default: none)"
    )
    where.set_defaults(func=_cli_origin)


def with_companions(
    inputs: Iterable[str], run_dirs: Iterable[str], companions: Iterable[str], root: Path
) -> list[str]:
    """``inputs`` plus each run directory's ``companions`` that exist (files a run writes
    that its rule does not declare)."""
    extra = [f"{d}/{name}" for d in run_dirs for name in companions]
    return sorted(set(inputs) | {p for p in extra if (root / p).is_file()})


def _cli_unpacked_work(text: str) -> Path:
    """A work directory ``archive unpack`` made: it holds the archived origin record."""
    work = existing_dir(text)
    if not (work / ARCHIVED_DIR / ORIGIN_NAME).is_file():
        raise argparse.ArgumentTypeError(
            f"must be a directory made by `archive unpack`, {text} holds no "
            f"{ARCHIVED_DIR}/{ORIGIN_NAME}"
        )
    return work


def _cli_create(args: argparse.Namespace) -> int:
    root = Path()
    inputs = with_companions(args.inputs, args.run_dirs, args.companions, root)
    try:
        record = create(
            inputs,
            args.products,
            args.out,
            root=root,
            config=args.config,
            extra={"rules": sorted(args.rules)},
        )
    except ArchiveError as exc:
        return _fail(exc)
    roles = [spec["role"] for spec in record["files"].values()]
    size = sum(spec["bytes"] for spec in record["files"].values())
    summary = {
        "out": str(args.out),
        "inputs": roles.count("input"),
        "products": roles.count("product"),
        "bytes": size,
        "commit": record["origin"]["git"]["short"],
    }
    print(json.dumps(summary))
    return 0


def _fail(exc: ArchiveError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def _cli_unpack(args: argparse.Namespace) -> int:
    try:
        record = unpack(args.archive, args.work, args.checkout)
    except ArchiveError as exc:
        return _fail(exc)
    made = record["origin"]
    print(
        f"verified {len(record['files'])} files of {args.archive} (commit {made['git']['short']},"
        f" {made['machine']['hostname']}, {made['date_utc']}); work directory: {args.work}"
    )
    return 0


def _cli_verify(args: argparse.Namespace) -> int:
    try:
        with tempfile.TemporaryDirectory(prefix="archive-verify-") as tmp:
            record = extract(args.archive, Path(tmp))
    except ArchiveError as exc:
        return _fail(exc)
    print(f"verified {len(record['files'])} files of {args.archive}")
    return 0


def _cli_compare(args: argparse.Namespace) -> int:
    differing = compare(args.work)
    if differing:
        record = json.loads((args.work / ARCHIVED_DIR / ORIGIN_NAME).read_text())
        print(
            "error: the rebuild differs from the archive in: " + ", ".join(differing) + "."
            f" The archive was made at commit {record['origin']['git']['short']}; a change of"
            " code or configuration since then, or a step that is not deterministic, explains"
            " a difference.",
            file=sys.stderr,
        )
        return 1
    print(f"rebuilt macros, tables and values are byte-identical to the archive's ({args.work})")
    return 0


def _cli_rules(args: argparse.Namespace) -> int:
    record = json.loads((args.work / ARCHIVED_DIR / ORIGIN_NAME).read_text())
    if not record.get("rules"):
        print(f"error: {args.work}: the archive names no rules to rebuild", file=sys.stderr)
        return 2
    print(" ".join(record["rules"]))
    return 0


def _cli_origin(args: argparse.Namespace) -> int:
    repo = REPO_ROOT
    write_origin(args.out, repo, args.archive_dir)
    print(json.dumps({"out": str(args.out), "archive": str(args.archive_dir or "")}))
    return 0
