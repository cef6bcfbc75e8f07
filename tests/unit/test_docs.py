"""The README and docs/*.md name only things that exist, so they cannot rot silently.

From every document's inline code, fenced code and links it extracts:

* ``make TARGET``: a target of the Makefile;
* ``python -m vitalstream CMD`` (and a code span ``vitalstream CMD``): a command of the lazy
  registry, ``COMMANDS`` in scripts/vitalstream/__main__.py;
* the targets of a ``snakemake`` command line, a code span after the word "rule" or "rules",
  and a code span in a table column headed "rule": a rule of the workflow (or a file it makes);
* repository paths (``config/profiles/quick.yaml``, ``scripts/vitalstream/stream/``, links such
  as ``[x](architecture.svg)``, with ``<placeholders>`` and ``*`` as wildcards): present in the
  checkout. Outputs under ``results/`` and ``data/`` are not in a checkout: their first two
  parts (``results/paper``) must be a place the workflow files or the Makefile write to;
* a link's ``#anchor`` into a Markdown file: a heading of that file;
* dotted names ``vitalstream.stage.module[.name[.attribute]]``: a module of the package, and
  the name defined in it; a code span ``name(...)``: a function the workflow or package defines.

Each problem names the document, the line and the missing thing. The README also stays under
``MAX_README_LINES`` lines, and it and docs/architecture.md name every subpackage. The tests at
the bottom plant each kind of mistake in a throw-away document and see it reported.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitalstream.__main__ import COMMANDS

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO / "scripts" / "vitalstream"
MAX_README_LINES = 250
# Local state `make` creates (the venv, the Maven jars, the archive's rebuild directory): not
# in a checkout and not made by a rule, so a document may name paths under them as they are.
LOCAL_STATE_DIRS = (".venv", ".cache", "results-from-archive")
# Outputs of the workflow: a path under these must start with a place the workflow writes to.
OUTPUT_DIRS = ("results", "data")
# Snakemake options followed by a value (which is not a target).
SNAKEMAKE_VALUE_OPTIONS = {
    "--cores",
    "-c",
    "--jobs",
    "-j",
    "--report",
    "--snakefile",
    "-s",
    "--directory",
    "-d",
    "--config",
    "--allowed-rules",
    "--profile",
}
# Functions Snakemake gives every rule file.
SNAKEMAKE_FUNCTIONS = frozenset({"report", "expand", "temp", "directory", "protected", "ancient"})
SHELL_BREAKS = {"#", "&&", "||", ";", "|", ">", ">>", "\\", "2>&1"}


@dataclass(frozen=True)
class Problem:
    """One broken reference, where it is: ``doc:line: message``."""

    doc: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Facts:
    """What the repository has, for the checks to compare a document with."""

    repo: Path
    make_targets: frozenset[str]
    commands: frozenset[str]
    rules: frozenset[str]
    rule_patterns: tuple[re.Pattern[str], ...]  # rules named in a loop: run_perf_{experiment}
    output_roots: frozenset[str]  # results/paper, data/cohorts, results/report.html, ...
    functions: frozenset[str]  # defined in the workflow files or the package


# --- what the repository has -------------------------------------------------------------------


def makefile_targets(makefile: Path) -> frozenset[str]:
    """Targets of plain ``name:`` rules and of ``.PHONY`` (not ``VAR := value``)."""
    text = makefile.read_text().replace("\\\n", " ")
    targets = set()
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z][\w.-]*(?:\s+[A-Za-z][\w.-]*)*)\s*:(?!=)", line)
        if match:
            targets.update(match.group(1).split())
        if line.startswith(".PHONY:"):
            targets.update(line.split(":", 1)[1].split())
    return frozenset(targets)


def workflow_texts(repo: Path) -> list[str]:
    return [p.read_text() for p in [repo / "Snakefile", *sorted(repo.glob("workflow/rules/*.smk"))]]


def workflow_rules(repo: Path) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]]:
    """Rule names (``rule x:``, ``use rule y as x``) and patterns of rules named in a loop
    (``name: f"run_perf_{_experiment}"``)."""
    names, patterns = set(), []
    for text in workflow_texts(repo):
        names.update(re.findall(r"^\s*rule\s+(\w+)\s*:", text, re.MULTILINE))
        names.update(re.findall(r"^\s*use rule \w+ as (\w+)", text, re.MULTILINE))
        for template in re.findall(r"^\s*name:\s*\n\s*f[\"']([\w{}]+)[\"']", text, re.MULTILINE):
            patterns.append(re.compile(re.sub(r"\{\w*\}", r"\\w+", template) + "$"))
    return frozenset(names), tuple(patterns)


# Options of the package's commands that name a file or folder the command writes.
WRITING_OPTIONS = ("--log", "--out", "--state-dir", "--work-dir")


def output_roots(repo: Path) -> frozenset[str]:
    """The first two parts of every ``results/...`` or ``data/...`` path the workflow files or
    the Makefile name (``results/paper``, ``results/paper.pdf``, ``data/cohorts``), and of
    every such path a documented ``python -m vitalstream`` command writes (``--log PATH``: the
    runbook's receiver log, which only that command makes)."""
    texts = [*workflow_texts(repo), (repo / "Makefile").read_text()]
    root = rf"((?:{'|'.join(OUTPUT_DIRS)})/[\w.-]+)"
    pattern = rf"(?<![\w/.-]){root}"
    written = rf"vitalstream [^\n]*?(?:{'|'.join(WRITING_OPTIONS)})[ =]{root}"
    roots = {r for text in texts for r in re.findall(pattern, text)}
    roots |= {r for doc in documents(repo) for r in re.findall(written, doc.read_text())}
    return frozenset(roots)


def defined_functions(repo: Path) -> frozenset[str]:
    """Functions the workflow files and the package define, and Snakemake's own helpers."""
    texts = workflow_texts(repo) + [p.read_text() for p in repo.glob("scripts/**/*.py")]
    names = {name for text in texts for name in re.findall(r"^\s*def (\w+)", text, re.MULTILINE)}
    return frozenset(names | SNAKEMAKE_FUNCTIONS)


def repository_facts(repo: Path = REPO) -> Facts:
    rules, patterns = workflow_rules(repo)
    return Facts(
        repo=repo,
        make_targets=makefile_targets(repo / "Makefile"),
        commands=frozenset(COMMANDS),
        rules=rules,
        rule_patterns=patterns,
        output_roots=output_roots(repo),
        functions=defined_functions(repo),
    )


def subpackages(package_dir: Path = PACKAGE_DIR) -> list[str]:
    return sorted(p.parent.name for p in package_dir.glob("*/__init__.py"))


# --- what a document says ----------------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    """A piece of a document, code (inline or fenced) or prose, and its line number."""

    line: int
    text: str
    code: bool
    before: str = ""  # for an inline code span: the prose just before it on its line
    column: str = ""  # for a code span in a table row: the header of its column


def snippets(text: str) -> Iterator[Snippet]:
    """Fenced blocks line by line, inline code spans, and each prose line."""
    fenced, header = False, []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            yield Snippet(number, line, code=True)
            continue
        cells = line.strip().strip("|").split("|") if line.lstrip().startswith("|") else []
        if not cells:
            header = []
        elif not header:
            header = [c.strip().lower() for c in cells]
        for match in re.finditer(r"`([^`]+)`", line):
            column = line[: match.start()].count("|") - 1 if cells else -1
            yield Snippet(
                number,
                match.group(1),
                code=True,
                before=line[: match.start()],
                column=header[column] if 0 <= column < len(header) else "",
            )
        yield Snippet(number, re.sub(r"`[^`]+`", " ", line), code=False)


def _clean(token: str) -> str:
    return token.strip("\"'(),;:`")


def _tokens(text: str) -> list[str]:
    """Shell-ish words of a code snippet, stripped of quotes and punctuation around them."""
    return [_clean(t) for t in text.split()]


def _words_after(text: str, command: str) -> Iterator[list[str]]:
    """For each word ``command`` (or a path ending in it) in ``text``: the words after it up to
    a comment, a parenthesis, a pipe or a command separator."""
    raw = text.split()
    for index, token in enumerate(raw):
        if _clean(token).split("/")[-1] != command:
            continue
        words = []
        for word in raw[index + 1 :]:
            if word in SHELL_BREAKS or word.startswith(("#", "(", "`", "→")):
                break
            words.append(_clean(word))
        yield words


def make_targets_in(snippet: Snippet) -> list[str]:
    """``make paper PROFILE=quick`` → ``paper``; variables and options are not targets."""
    found = []
    for words in _words_after(snippet.text, "make"):
        for word in words:
            if "=" in word or word.startswith("-"):
                continue
            if not re.fullmatch(r"[A-Za-z][\w.-]*", word):
                break
            found.append(word)
    return found


def commands_in(snippet: Snippet) -> list[str]:
    """``python -m vitalstream CMD`` anywhere in code; ``vitalstream CMD`` as a whole span."""
    return re.findall(r"-m[ \t]+vitalstream[ \t]+([a-z][a-z0-9-]*)", snippet.text) or re.findall(
        r"^vitalstream[ \t]+([a-z][a-z0-9-]*)", snippet.text
    )


def snakemake_targets_in(snippet: Snippet) -> list[str]:
    """Targets on a ``snakemake`` command line: words that are not options or their values."""
    found = []
    for words in _words_after(snippet.text, "snakemake"):
        skip_next, in_configfile = False, False
        for word in words:
            if skip_next:
                skip_next = False
            elif word.startswith("-"):
                in_configfile = word in {"--configfile", "--configfiles"}
                skip_next = word in SNAKEMAKE_VALUE_OPTIONS
            elif not (in_configfile or "=" in word or "<" in word):
                found.append(word)
    return found


def rules_named_in(snippet: Snippet) -> list[str]:
    """Code spans that name rules: after the word "rule" or "rules" (``rules `a`, `b` and
    `c```), or in a table column headed "rule" or "rules"."""
    after_rule = re.search(
        r"\brules?\s+(`[^`]+`(,\s*|\s+and\s+|\s+or\s+))*$", snippet.before, re.IGNORECASE
    )
    in_column = snippet.column in {"rule", "rules"}
    if (after_rule or in_column) and re.fullmatch(r"[\w<>*]+", snippet.text):
        return [snippet.text]
    return []


def calls_in(snippet: Snippet) -> list[str]:
    """``name(...)`` as a whole code span: a function the docs tell a reader to call."""
    match = re.fullmatch(r"(\w+)\(.*\)", snippet.text)
    return [match.group(1)] if match else []


def paths_in(snippet: Snippet, facts: Facts) -> list[str]:
    """Words of code that are repository paths: under a top-level entry of the checkout, an
    output or local-state directory, or with a slash and a file suffix or a trailing slash.
    Absolute paths, ``../`` paths (outside the repository) and URLs are not checked."""
    roots = {p.name for p in facts.repo.iterdir()} | set(OUTPUT_DIRS) | set(LOCAL_STATE_DIRS)
    found = []
    for token in _tokens(snippet.text):
        word = token.split("=")[-1].rstrip(".")
        if "/" not in word or "://" in word or word.startswith(("/", "../", "~", "$", "-")):
            continue
        inner = word.rstrip("/")
        looks_like_a_path = "/" in inner and (
            word.endswith("/") or re.search(r"\.[A-Za-z]\w*$", word)
        )
        if word.split("/")[0] in roots or looks_like_a_path:
            found.append(word)
    return found


def links_in(line: str) -> list[tuple[str, str]]:
    """(path, anchor) of Markdown links and images that point into the repository."""
    targets = re.findall(r"\]\(([^)\s]+)\)", line)
    return [tuple(t.partition("#")[::2]) for t in targets if not re.match(r"[a-z]+:", t)]


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces
    to hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def dotted_names_in(snippet: Snippet) -> list[str]:
    return re.findall(r"\bvitalstream(?:\.\w+)+", snippet.text)


# --- the checks --------------------------------------------------------------------------------


def _as_glob(path: str) -> str:
    """``results/runs/<experiment>/`` and ``{events,labels}.parquet`` with ``*`` for the
    placeholders, so that a pattern is checked by what it matches."""
    return re.sub(r"<[^>]*>|\{[^}]*\}", "*", path).rstrip("/")


def _matches(target: Path) -> bool:
    """Does the absolute path or glob pattern ``target`` match something on disk?"""
    parts = target.parts
    first_glob = next((i for i, part in enumerate(parts) if "*" in part), len(parts))
    if first_glob == len(parts):
        return target.exists()
    return any(Path(*parts[:first_glob]).glob("/".join(parts[first_glob:])))


def path_problem(path: str, base: Path, facts: Facts) -> str | None:
    """Why ``path`` (relative to ``base``) names nothing, or None. A pytest node id
    (``tests/x.py::test_y``) must name a file that defines that function."""
    path, _, node = path.partition("::")
    if node:
        file = Path(os.path.normpath(base / path))
        name = node.split("[")[0].split("::")[-1]
        if not file.is_file() or not re.search(
            rf"^\s*def {re.escape(name)}\(", file.read_text(), re.M
        ):
            return f"test {path}::{node} does not exist"
        return None
    target = os.path.normpath(base / _as_glob(path))
    if _matches(Path(target)):
        return None
    try:
        parts = Path(target).relative_to(facts.repo).parts
    except ValueError:
        return f"path {path!r} does not exist"
    if parts[0] in LOCAL_STATE_DIRS or (len(parts) == 1 and parts[0] in OUTPUT_DIRS):
        return None
    if parts[0] in OUTPUT_DIRS:
        root = "/".join(parts[:2])
        pattern = re.compile(re.escape(root).replace(r"\*", r"[\w.-]*"))
        if any(pattern.fullmatch(r) for r in facts.output_roots):
            return None
        return f"path {path!r}: neither the workflow nor the Makefile writes to {root}"
    return f"path {path!r} does not exist"


def link_problems(target: str, anchor: str, doc: Path, facts: Facts) -> list[str | None]:
    """Why a link ``target#anchor`` in ``doc`` leads nowhere (an empty target is ``doc``)."""
    problems = [path_problem(target, doc.parent, facts) if target else None]
    linked = doc.parent / target if target else doc
    known = (
        heading_anchors(linked.read_text()) if linked.suffix == ".md" and linked.is_file() else None
    )
    if anchor and known is not None and anchor not in known:
        problems.append(f"{target or doc.name} has no heading #{anchor}")
    return problems


def rule_problem(name: str, facts: Facts) -> str | None:
    """Why ``name`` is no rule of the workflow (placeholders ``<x>`` and ``*`` match a name)."""
    if name in facts.rules or any(p.match(name) for p in facts.rule_patterns):
        return None
    if re.search(r"[<*]", name):
        pattern = re.compile(re.sub(r"<[^>]*>|\*", r"\\w+", name) + "$")
        sample = re.sub(r"<[^>]*>|\*", "x1", name)
        if any(pattern.match(r) for r in facts.rules) or any(
            p.match(sample) for p in facts.rule_patterns
        ):
            return None
    return f"rule {name!r} is not a rule of the workflow (workflow/rules/*.smk)"


def dotted_name_problem(dotted: str, package_dir: Path) -> str | None:
    """Why ``vitalstream.a.b[.name[.attr]]`` names no module of the package or nothing in it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = package_dir.parent.joinpath(*parts[:cut])
        module = (
            base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        )
        if module.is_file():
            break
    else:
        return f"{dotted!r} is no module of the package"
    rest = parts[cut:]
    if not rest:
        return None
    if len(rest) > 2:
        return f"{dotted!r}: {'.'.join(parts[:cut])} has no {'.'.join(rest)}"
    body = ast.parse(module.read_text()).body
    for name in rest:
        found = _defined(body, name)
        if found is None:
            return f"{dotted!r}: {'.'.join(parts[:cut])} defines no {name!r}"
        body = found.body if isinstance(found, ast.ClassDef) else []
    return None


def _defined(body: Sequence[ast.stmt], name: str) -> ast.stmt | None:
    """The top-level statement of ``body`` that defines ``name`` (def, class, assignment)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node
    return None


def check_doc(doc: Path, facts: Facts, package_dir: Path = PACKAGE_DIR) -> list[Problem]:
    """Every reference in ``doc`` that names something the repository does not have."""
    label = str(doc.relative_to(facts.repo)) if doc.is_relative_to(facts.repo) else doc.name
    problems = []

    def report(line: int, message: str | None) -> None:
        if message and Problem(label, line, message) not in problems:
            problems.append(Problem(label, line, message))

    for snippet in snippets(doc.read_text()):
        if not snippet.code:
            for target, anchor in links_in(snippet.text):
                for message in link_problems(target, anchor, doc, facts):
                    report(snippet.line, message)
            continue
        for target in make_targets_in(snippet):
            if target not in facts.make_targets:
                report(snippet.line, f"make target {target!r} is not in the Makefile")
        for command in commands_in(snippet):
            if command not in facts.commands:
                report(
                    snippet.line,
                    f"command {command!r} is not in COMMANDS of scripts/vitalstream/__main__.py",
                )
        for target in snakemake_targets_in(snippet):
            if "/" in target or "." in target:
                report(snippet.line, path_problem(target, facts.repo, facts))
            else:
                report(snippet.line, rule_problem(target, facts))
        for name in rules_named_in(snippet):
            report(snippet.line, rule_problem(name, facts))
        for name in calls_in(snippet):
            if name not in facts.functions:
                report(
                    snippet.line,
                    f"function {name!r} is defined neither in the workflow nor in the package",
                )
        for path in paths_in(snippet, facts):
            report(snippet.line, path_problem(path, facts.repo, facts))
        for dotted in dotted_names_in(snippet):
            report(snippet.line, dotted_name_problem(dotted, package_dir))
    return problems


def readme_length_problem(doc: Path, max_lines: int = MAX_README_LINES) -> Problem | None:
    lines = len(doc.read_text().splitlines())
    if lines < max_lines:
        return None
    return Problem(
        doc.name, lines, f"{lines} lines; a README a stranger reads stays under {max_lines}"
    )


def missing_subpackages(doc: Path, names: Sequence[str]) -> list[Problem]:
    """Subpackages the document does not name as ``scripts/vitalstream/<name>/``."""
    text = doc.read_text()
    return [
        Problem(doc.name, 1, f"subpackage scripts/vitalstream/{name}/ is not named")
        for name in names
        if f"scripts/vitalstream/{name}/" not in text
    ]


def documents(repo: Path = REPO) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def _report(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


# --- the repository's documents ----------------------------------------------------------------


def test_there_are_documents_to_check() -> None:
    docs = documents()
    assert (REPO / "docs" / "architecture.md") in docs and len(docs) >= 3


def test_every_reference_in_the_docs_exists() -> None:
    facts = repository_facts()
    problems = [p for doc in documents() for p in check_doc(doc, facts)]
    assert not problems, _report(problems)


def test_the_readme_is_short() -> None:
    problem = readme_length_problem(REPO / "README.md")
    assert problem is None, str(problem)


def test_the_readme_and_the_architecture_name_every_subpackage() -> None:
    names = subpackages()
    assert len(names) >= 10  # guards the discovery itself
    problems = missing_subpackages(REPO / "README.md", names) + missing_subpackages(
        REPO / "docs" / "architecture.md", names
    )
    assert not problems, _report(problems)


def test_the_checker_reads_the_repository() -> None:
    """Guards the extraction: an empty set of facts would make every check vacuous."""
    facts = repository_facts()
    assert {"paper", "test", "test-fast", "archive"} <= facts.make_targets
    assert "setup" in facts.make_targets and "VENV" not in facts.make_targets
    assert {"cohort", "run", "macros"} <= facts.commands
    assert {"build_paper", "run_condition"} <= facts.rules
    assert any(p.match("run_perf_rq5") for p in facts.rule_patterns)
    assert {"results/paper", "results/runs", "data/cohorts"} <= facts.output_roots


# --- the checker on planted mistakes -----------------------------------------------------------

GOOD = """\
# A guide

Run `make paper PROFILE=quick` or `make test`, then `python -m vitalstream --help`.
See [the architecture](architecture.md#present) and `config/profiles/quick.yaml`, the code in
`scripts/vitalstream/stream/` (module `vitalstream.core.config.expand_runs`),
rule `build_paper`, rules `run_perf_<experiment>` and outputs `results/runs/<experiment>/`.

```bash
make archive                          # → results/archive/vitalstream-results.tar.gz
.venv/bin/snakemake --cores all results/paper.pdf --configfile config/profiles/quick.yaml
.venv/bin/snakemake --cores all run_perf_rq5 sepsis_model
PYTHONPATH=scripts python -m vitalstream cohort --out /tmp/cohort --config ../shared/x.yaml
```

| paper input | rule | made by |
|---|---|---|
| `macros.tex` | `write_macros` | `vitalstream macros` |

Rules `sepsis_model`, `compare_models` and `run_notebook_*`; `experiment_files(...)`.
[Up](#a-guide).
"""


def _doc(tmp_path: Path, text: str) -> Path:
    (tmp_path / "architecture.md").write_text("# Present\n")
    doc = tmp_path / "guide.md"
    doc.write_text(text)
    return doc


def test_a_correct_document_reports_nothing(tmp_path: Path) -> None:
    assert check_doc(_doc(tmp_path, GOOD), repository_facts()) == []


def test_planted_mistakes_are_reported_with_their_line(tmp_path: Path) -> None:
    bad = (
        GOOD.replace("`make test`", "`make tests`")
        .replace("vitalstream cohort", "vitalstream cohorts")
        .replace("config/profiles/quick.yaml`", "config/profiles/quik.yaml`")
        .replace("(architecture.md#present)", "(architectur.md) [a](architecture.md#absent)")
        .replace("scripts/vitalstream/stream/", "scripts/vitalstream/streaming/")
        .replace("config.expand_runs", "config.expand_run")
        .replace("`build_paper`", "`build_papers`")
        .replace("results/runs/<experiment>/", "results/rns/<experiment>/")
        .replace("all run_perf_rq5", "all run_perff_rq5")
        .replace("`write_macros`", "`write_macro`")
        .replace("vitalstream macros", "vitalstream macro")
        .replace("`compare_models`", "`compare_model`")
        .replace("experiment_files(", "experiments_files(")
        .replace("(#a-guide)", "(#the-guide)")
    )
    problems = [str(p) for p in check_doc(_doc(tmp_path, bad), repository_facts())]
    not_a_rule = "is not a rule of the workflow (workflow/rules/*.smk)"
    assert problems == [
        "guide.md:3: make target 'tests' is not in the Makefile",
        "guide.md:4: path 'config/profiles/quik.yaml' does not exist",
        "guide.md:4: path 'architectur.md' does not exist",
        "guide.md:4: architecture.md has no heading #absent",
        "guide.md:5: path 'scripts/vitalstream/streaming/' does not exist",
        "guide.md:5: 'vitalstream.core.config.expand_run': vitalstream.core.config defines no "
        "'expand_run'",
        f"guide.md:6: rule 'build_papers' {not_a_rule}",
        "guide.md:6: path 'results/rns/<experiment>/': neither the workflow nor the Makefile "
        "writes to results/rns",
        f"guide.md:11: rule 'run_perff_rq5' {not_a_rule}",
        "guide.md:12: command 'cohorts' is not in COMMANDS of scripts/vitalstream/__main__.py",
        f"guide.md:17: rule 'write_macro' {not_a_rule}",
        "guide.md:17: command 'macro' is not in COMMANDS of scripts/vitalstream/__main__.py",
        f"guide.md:19: rule 'compare_model' {not_a_rule}",
        "guide.md:19: function 'experiments_files' is defined neither in the workflow nor in "
        "the package",
        "guide.md:20: guide.md has no heading #the-guide",
    ]


def test_a_long_readme_and_a_missing_subpackage_are_reported(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("`scripts/vitalstream/core/`\n" * MAX_README_LINES)
    assert str(readme_length_problem(readme)) == (
        f"README.md:{MAX_README_LINES}: {MAX_README_LINES} lines; a README a stranger reads "
        f"stays under {MAX_README_LINES}"
    )
    assert readme_length_problem(readme, max_lines=MAX_README_LINES + 1) is None
    assert [str(p) for p in missing_subpackages(readme, ["core", "sinks"])] == [
        "README.md:1: subpackage scripts/vitalstream/sinks/ is not named"
    ]


def test_a_test_node_id_must_name_a_test_its_file_defines() -> None:
    facts = repository_facts()
    here = "tests/unit/test_docs.py"
    assert (
        path_problem(f"{here}::test_a_correct_document_reports_nothing", facts.repo, facts) is None
    )
    problem = path_problem(f"{here}::test_that_was_renamed", facts.repo, facts)
    assert problem == f"test {here}::test_that_was_renamed does not exist"
